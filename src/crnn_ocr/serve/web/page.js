// Page mode of the recognition page: one page image -> POST /v1/page -> the page shown with
// its line boxes drawn over it (positioned in percent of the page, so they follow the image's
// displayed size) and its lines listed beside it in reading order; clicking a line, in the list
// or on the page, highlights both. All text goes in through textContent.
"use strict";

const pageResults = document.getElementById("page-results");
const pageTemplate = document.getElementById("page-template");
const fileInput = document.getElementById("file");

// Words or Page: which endpoint the images go to, and which models suit it.
function setMode(page) {
  pageMode = page;
  document.getElementById("mode-words").setAttribute("aria-pressed", String(!page));
  document.getElementById("mode-page").setAttribute("aria-pressed", String(page));
  document.getElementById("drop-words").hidden = page;
  document.getElementById("drop-page").hidden = !page;
  results.hidden = page;
  pageResults.hidden = !page;
  fileInput.multiple = !page;
  const chosen = servedModels.find((m) => m.name === modelSelect.value);
  if (page && chosen && chosen.width) {  // a word model reads no lines: the first line model instead
    const line = servedModels.find((m) => !m.width);
    if (line) modelSelect.value = line.name;
    else statusLine.textContent = "This service has no line model to read pages with.";
  }
}

function selectLine(view, index) {
  for (const el of view.querySelectorAll(".selected")) el.classList.remove("selected");
  for (const el of view.querySelectorAll(`[data-line="${index}"]`)) el.classList.add("selected");
}

function addLine(view, page, line, index) {
  const [x0, y0, x1, y1] = line.box;
  const box = document.createElement("div");
  box.className = "line-box";
  box.dataset.line = String(index);
  box.style.left = `${(100 * x0) / page.width}%`;
  box.style.top = `${(100 * y0) / page.height}%`;
  box.style.width = `${(100 * (x1 - x0)) / page.width}%`;
  box.style.height = `${(100 * (y1 - y0)) / page.height}%`;
  box.title = line.text;
  const item = document.createElement("li");
  item.className = "page-line";
  item.dataset.line = String(index);
  const text = document.createElement("span");
  text.className = "line-text";
  text.textContent = line.text;
  const confidence = document.createElement("span");
  confidence.className = "confidence";
  confidence.textContent = percent(line.confidence);
  confidence.title = "the probability of the line's whole reading; its words': " +
    line.words.map((w) => `${w.text} ${percent(w.confidence)}`).join(", ");
  item.append(text, confidence);
  box.addEventListener("click", () => {
    selectLine(view, index);
    item.scrollIntoView({block: "nearest"});
  });
  item.addEventListener("click", () => selectLine(view, index));
  view.querySelector(".boxes").append(box);
  view.querySelector(".page-lines").append(item);
}

function showPage(view, answer) {
  const page = answer.page;
  page.lines.forEach((line, i) => addLine(view, page, line, i));
  if (!page.lines.length) view.querySelector(".page-name").textContent += " — no text found";
  for (const flag of page.flags) {
    const note = document.createElement("p");
    note.className = "flag";
    note.textContent = flag;
    view.querySelector(".page-side").append(note);
  }
  view.classList.add("done");
}

async function readPage(files) {
  const file = files.find((f) => f.type.startsWith("image/") || f.type === "");
  if (!file) return;
  const view = pageTemplate.content.firstElementChild.cloneNode(true);
  view.querySelector("img").src = URL.createObjectURL(file);
  view.querySelector(".page-name").textContent = file.name || "pasted page";
  pageResults.prepend(view);
  const form = new FormData();
  form.append("image", file, file.name || "pasted.png");
  const query = new URLSearchParams({model: modelSelect.value});
  statusLine.textContent = "reading the page…";
  const started = performance.now();
  try {
    const response = await fetch(`/v1/page?${query}`, {method: "POST", body: form});
    const answer = await response.json();
    if (!response.ok) {
      view.querySelector(".page-name").textContent += ` — ${answer.error ? answer.error.message : response.status}`;
      view.classList.add("failed");
      statusLine.textContent = `refused: HTTP ${response.status}`;
      return;
    }
    showPage(view, answer);
    const n = answer.page.lines.length;
    statusLine.textContent = `${answer.model}: ${n} line${n === 1 ? "" : "s"} read in ` +
      `${Math.round(performance.now() - started)} ms`;
  } catch (e) {
    view.classList.add("failed");
    statusLine.textContent = `the service did not answer: ${e}`;
  }
}

document.getElementById("mode-words").addEventListener("click", () => setMode(false));
document.getElementById("mode-page").addEventListener("click", () => setMode(true));
