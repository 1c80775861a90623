// The evaluation browser: GET /v1/evaluation, predictions with errors first (least confident
// first within each group), filtered by text as you type.
"use strict";

const SHOWN = 500;  // rows drawn at once; the filter narrows the rest down
let predictions = [];

function metric(label, value) {
  const div = document.createElement("div");
  div.append(label);
  const b = document.createElement("b");
  b.textContent = value;
  div.prepend(b);
  return div;
}

// The prediction with the characters that differ from the gold text (position by position) marked.
function markedPrediction(gold, prediction) {
  const cell = document.createElement("td");
  cell.className = "prediction";
  [...prediction].forEach((c, i) => {
    if (c === [...gold][i]) cell.append(c);
    else { const m = document.createElement("mark"); m.textContent = c; cell.append(m); }
  });
  return cell;
}

function row(p) {
  const tr = document.createElement("tr");
  tr.className = p.correct ? "right" : "wrong";
  const image = document.createElement("td");
  const img = document.createElement("img");
  img.loading = "lazy";
  img.alt = p.name;
  img.src = `/v1/evaluation/images/${p.index}`;
  image.append(img);
  const cells = [image];
  const gold = document.createElement("td");
  gold.className = "gold";
  gold.textContent = p.gold;
  cells.push(gold, markedPrediction(p.gold, p.prediction));
  for (const text of [`${(100 * p.confidence).toFixed(1)}%`, p.name]) {
    const td = document.createElement("td");
    td.textContent = text;
    cells.push(td);
  }
  tr.append(...cells);
  return tr;
}

function render() {
  const needle = document.getElementById("filter").value.toLowerCase();
  const errorsOnly = document.getElementById("errors-only").checked;
  const shown = predictions.filter((p) => (!errorsOnly || !p.correct) &&
    (!needle || p.gold.toLowerCase().includes(needle) || p.prediction.toLowerCase().includes(needle)));
  document.getElementById("rows").replaceChildren(...shown.slice(0, SHOWN).map(row));
  const errors = shown.filter((p) => !p.correct).length;
  document.getElementById("count").textContent =
    `${shown.length} of ${predictions.length} (${errors} errors)` + (shown.length > SHOWN ? `, first ${SHOWN} shown` : "");
}

async function load() {
  const response = await fetch("/v1/evaluation");
  if (!response.ok) {
    document.getElementById("count").textContent = "this service browses no evaluation (serve --browse DIR)";
    return;
  }
  const evaluation = await response.json();
  document.getElementById("folder").textContent = evaluation.folder;
  const m = evaluation.metrics;
  const pct = (x) => (x === undefined ? "-" : `${(100 * x).toFixed(2)}%`);
  document.getElementById("metrics").append(metric("images", m.n ?? evaluation.predictions.length),
    metric("word accuracy", pct(m.word_accuracy)), metric("CER", pct(m.cer)), metric("WER", pct(m.wer)),
    metric("char BLEU", m.bleu === undefined ? "-" : m.bleu.toFixed(2)));
  predictions = evaluation.predictions.sort((a, b) => (a.correct - b.correct) || (a.confidence - b.confidence));
  render();
}

document.getElementById("filter").addEventListener("input", render);
document.getElementById("errors-only").addEventListener("change", render);
load();
