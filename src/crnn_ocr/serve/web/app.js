// The recognition page: images in (picked, dropped or pasted), POST /v1/recognize?details=true,
// each image shown with its text, its confidence and a strip of the x-range of every character.
// In page mode (page.js) a page image goes to POST /v1/page instead.
"use strict";

const modelSelect = document.getElementById("model");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const template = document.getElementById("result-template");
let servedModels = [];  // as /v1/models lists them
let pageMode = false;  // set by page.js

async function loadModels() {
  const response = await fetch("/v1/models");
  const models = await response.json();
  servedModels = models;
  for (const m of models) {
    const size = m.width ? `${m.height}x${m.width}` : `${m.height} x any width`;
    const option = new Option(`${m.name} (${size}, ${m.backend})`, m.name, m.default, m.default);
    modelSelect.add(option);
  }
  if (!models.length) statusLine.textContent = "This service serves no model.";
  const evaluation = await fetch("/v1/evaluation", {method: "GET"});
  document.getElementById("browse-link").hidden = !evaluation.ok;
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

// One cell per character under the image: the dark bar is the x-range whose output columns
// emitted the character (CTC emits most characters from one or two columns); the cell reaches
// halfway to its neighbours so that the character can be read.
function drawStrip(strip, chars, imageWidth) {
  strip.replaceChildren();
  chars = chars.filter((c) => c.x);
  const between = chars.slice(1).map((c, i) => (chars[i].x[1] + c.x[0]) / 2);
  const pct = (x) => `${(100 * x) / imageWidth}%`;
  chars.forEach((c, i) => {
    const left = i ? between[i - 1] : Math.max(0, c.x[0] - (chars.length > 1 ? between[0] - c.x[1] : 8));
    const right = i < between.length ? between[i] : Math.min(imageWidth, c.x[1] + (i ? c.x[0] - between[i - 1] : 8));
    const cell = document.createElement("span");
    cell.className = "char" + (i % 2 ? " odd" : "");
    cell.style.left = pct(left);
    cell.style.width = pct(Math.max(right - left, 1));
    cell.style.setProperty("--hue", `${Math.round(120 * c.confidence)}`);
    cell.textContent = c.char;
    cell.title = `'${c.char}' ${percent(c.confidence)}, from x ${c.x[0]} to ${c.x[1]}`;
    const bar = document.createElement("i");
    bar.style.left = `${(100 * (c.x[0] - left)) / Math.max(right - left, 1)}%`;
    bar.style.width = `${(100 * Math.max(c.x[1] - c.x[0], 1)) / Math.max(right - left, 1)}%`;
    cell.append(bar);
    strip.append(cell);
  });
}

function addCard(file, group) {
  const card = template.content.firstElementChild.cloneNode(true);
  const img = card.querySelector("img");
  img.src = URL.createObjectURL(file);
  card.querySelector(".name").textContent = file.name || "pasted image";
  card.querySelector(".text").textContent = "…";
  group.append(card);
  return card;
}

function showResult(card, result) {
  card.querySelector(".text").textContent = result.text || "(nothing read)";
  card.querySelector(".confidence").textContent = percent(result.confidence);
  card.classList.add("done");
  const img = card.querySelector("img");
  const draw = () => drawStrip(card.querySelector(".strip"), result.chars || [], img.naturalWidth);
  if (img.complete && img.naturalWidth) draw(); else img.addEventListener("load", draw, {once: true});
}

function showError(cards, message) {
  for (const card of cards) {
    card.querySelector(".text").textContent = "";
    card.querySelector(".confidence").textContent = message;
    card.classList.add("failed");
  }
}

async function recognize(files) {
  files = files.filter((f) => f.type.startsWith("image/") || f.type === "");
  if (!files.length) return;
  const group = document.createElement("div");  // newest images first, each batch in its own order
  group.className = "batch";
  results.prepend(group);
  const cards = files.map((f) => addCard(f, group));
  const form = new FormData();
  for (const f of files) form.append("images", f, f.name || "pasted.png");
  const query = new URLSearchParams({model: modelSelect.value, details: "true"});
  statusLine.textContent = `reading ${files.length} image${files.length > 1 ? "s" : ""}…`;
  const started = performance.now();
  try {
    const response = await fetch(`/v1/recognize?${query}`, {method: "POST", body: form});
    const answer = await response.json();
    if (!response.ok) {
      showError(cards, answer.error ? answer.error.message : `HTTP ${response.status}`);
      statusLine.textContent = `refused: HTTP ${response.status}`;
      return;
    }
    answer.results.forEach((r, i) => showResult(cards[i], r));
    statusLine.textContent = `${answer.model}: ${files.length} read in ${Math.round(performance.now() - started)} ms`;
  } catch (e) {
    showError(cards, String(e));
    statusLine.textContent = "the service did not answer";
  }
}

// Picked, dropped or pasted images: read as words, or as one page in page mode.
function readFiles(files) {
  if (pageMode) readPage(files); else recognize(files);
}

const drop = document.getElementById("drop");
document.getElementById("file").addEventListener("change", (e) => {
  readFiles([...e.target.files]);
  e.target.value = "";
});
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  readFiles([...e.dataTransfer.files]);
});
document.addEventListener("paste", (e) => {
  const files = [...e.clipboardData.items].filter((i) => i.kind === "file").map((i) => i.getAsFile());
  readFiles(files);
});

loadModels().catch((e) => { statusLine.textContent = `could not list the models: ${e}`; });
