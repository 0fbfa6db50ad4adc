// The search page: query by upload or by any gallery image, at the budget the slider sets.
"use strict";

const FEATURES_SHOWN = 8;
const EXAMPLES_PER_END = 6;

const page = {
  info: null,
  query: null, // {file: File} or {id: "folder/item.png"}
  latest: 0, // number of the newest search, so slower older answers are dropped
  timer: null,
};

const $ = (id) => document.getElementById(id);
const itemPath = (id) => id.split("/").map(encodeURIComponent).join("/");
const thumbnail = (id, size) => `/items/${itemPath(id)}?size=${size}`;

// The page's frame and controls are in the HTML, drawn before any answer; /info fills in the
// summary, the budget slider and the chart. The controls listen from the first moment, so a
// file chosen while /info is still on its way is not lost: whatever needs the index's
// description waits for it (`ready`).
const ready = describeIndex();
listen();

async function describeIndex() {
  const response = await fetch("/info");
  const body = await response.json();
  if (!response.ok) {
    $("summary").textContent = `The index could not be described: ${body.detail}`;
    throw new Error(body.detail);
  }
  page.info = body;
  const { keep, count, model } = page.info;
  $("item-count").textContent = count.toLocaleString();
  $("keep-count").textContent = keep;
  $("model-id").textContent = model.id;
  const slider = $("k-slider");
  slider.max = keep;
  slider.value = Math.min(16, keep);
  slider.disabled = false;
  showBudget();
  drawImportance();
  for (const filled of [$("summary"), $("importance-chart")]) filled.removeAttribute("aria-busy");
  loadFeatures();
}

function listen() {
  $("k-slider").addEventListener("input", async () => {
    await ready;
    showBudget();
    drawImportance();
    searchSoon();
  });
  $("top-k").addEventListener("change", () => search());
  $("min-score").addEventListener("input", searchSoon);
  $("find-duplicates").addEventListener("click", loadDuplicates);
  $("file-input").addEventListener("change", (event) => {
    if (event.target.files.length) queryFile(event.target.files[0]);
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer.files.length) queryFile(event.dataTransfer.files[0]);
  });
  $("importance-chart").addEventListener("click", async (event) => {
    await ready;
    const { keep } = page.info;
    const box = event.currentTarget.getBoundingClientRect();
    const k = Math.ceil(((event.clientX - box.left) / box.width) * keep);
    $("k-slider").value = Math.max(1, Math.min(keep, k));
    showBudget();
    drawImportance();
    search();
  });
}

function budget() {
  return Number($("k-slider").value);
}

function showBudget() {
  $("k-value").textContent = `${budget()} of ${page.info.keep}`;
}

function queryFile(file) {
  page.query = { file };
  const preview = $("query-image");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-hint").hidden = true;
  $("query-label").textContent = `Query: ${file.name} (uploaded)`;
  search();
}

function queryItem(id) {
  page.query = { id };
  const preview = $("query-image");
  preview.src = thumbnail(id, 128);
  preview.hidden = false;
  $("drop-hint").hidden = true;
  $("query-label").textContent = `Query: ${id} (from the gallery)`;
  search();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function searchSoon() {
  clearTimeout(page.timer);
  page.timer = setTimeout(search, 80);
}

async function search() {
  if (!page.query) return;
  await ready;
  const number = ++page.latest;
  let params = `k_features=${budget()}&top_k=${$("top-k").value}`;
  const floor = $("min-score").value.trim();
  if (floor !== "") params += `&min_score=${encodeURIComponent(floor)}`;
  const started = performance.now();
  let response;
  if (page.query.file) {
    const form = new FormData();
    form.append("file", page.query.file);
    response = await fetch(`/search?${params}`, { method: "POST", body: form });
  } else {
    response = await fetch(`/items/${itemPath(page.query.id)}/similar?${params}`);
  }
  const body = await response.json();
  const milliseconds = performance.now() - started;
  if (number !== page.latest) return;
  const error = $("error");
  if (!response.ok) {
    error.textContent = body.detail;
    error.hidden = false;
    return;
  }
  error.hidden = true;
  showResults(body);
  const exactness = body.exact ? "exact" : "approximate";
  const floorNote = body.min_score === null ? "" : `, cosine ≥ ${body.min_score}`;
  $("search-time").textContent =
    `${body.results.length} results at ${body.k_features} features (${exactness}${floorNote}) ` +
    `in ${milliseconds.toFixed(0)} ms`;
}

function showResults(body) {
  const grid = $("results");
  grid.dataset.kFeatures = body.k_features;
  grid.replaceChildren(
    ...body.results.map((result) => {
      const card = document.createElement("figure");
      card.className = "card result";
      card.dataset.id = result.id;
      card.title = `search by ${result.id}`;
      const image = document.createElement("img");
      image.src = thumbnail(result.id, 96);
      image.alt = result.id;
      const id = document.createElement("div");
      id.className = "id";
      id.textContent = `${result.rank}. ${result.id}`;
      const score = document.createElement("div");
      score.className = "score";
      score.textContent = `cosine ${result.score.toFixed(3)}`;
      card.append(image, id, score);
      card.addEventListener("click", () => queryItem(result.id));
      return card;
    }),
  );
}

// The chart's frame (300 x 120 user units, axis and grid) is in the HTML; this draws the bars
// and moves the budget marker.
function drawImportance() {
  const values = page.info.importance;
  const width = 300;
  const height = 120;
  const top = Math.max(...values, 1e-9);
  const step = width / values.length;
  const used = budget();
  const bars = values.map((value, j) => {
    const barHeight = (value / top) * (height - 6);
    return `<rect class="${j < used ? "used" : "unused"}" x="${j * step}" ` +
      `y="${height - barHeight}" width="${Math.max(step - 0.5, 0.5)}" height="${barHeight}">` +
      `<title>feature ${j + 1}: ${value.toFixed(3)}</title></rect>`;
  });
  $("importance-bars").innerHTML = bars.join("");
  const marker = $("budget-marker");
  marker.setAttribute("x1", used * step);
  marker.setAttribute("x2", used * step);
  marker.setAttribute("visibility", "visible");
}

async function loadDuplicates() {
  const threshold = $("duplicate-threshold").value;
  $("duplicate-summary").textContent = "searching the whole gallery…";
  const response = await fetch(`/duplicates?threshold=${encodeURIComponent(threshold)}`);
  const body = await response.json();
  if (!response.ok) {
    $("duplicate-summary").textContent = body.detail;
    $("duplicate-groups").replaceChildren();
    return;
  }
  const images = body.groups.reduce((sum, group) => sum + group.items.length, 0);
  $("duplicate-summary").textContent =
    `${body.groups.length} groups (${images} images) at cosine ≥ ${body.threshold} on ` +
    `${body.verify_features} features`;
  $("duplicate-groups").replaceChildren(
    ...body.groups.map((group) => {
      const row = document.createElement("div");
      row.className = "duplicate-group";
      row.append(
        ...group.items.map((item) => {
          const image = document.createElement("img");
          image.src = thumbnail(item.id, 56);
          image.alt = item.id;
          image.dataset.id = item.id;
          image.title = `${item.id}: cosine ${item.score.toFixed(3)} (click to search by it)`;
          image.addEventListener("click", () => queryItem(item.id));
          return image;
        }),
      );
      return row;
    }),
  );
}

async function loadFeatures() {
  const shown = Math.min(FEATURES_SHOWN, page.info.keep);
  const rows = await Promise.all(
    Array.from({ length: shown }, (_, j) =>
      fetch(`/features/${j + 1}/examples?n=${EXAMPLES_PER_END}`).then((r) => r.json()),
    ),
  );
  $("features").replaceChildren(
    ...rows.map((row) => {
      const line = document.createElement("div");
      line.className = "feature";
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = `Feature ${row.feature} · importance ${row.importance.toFixed(2)}`;
      line.append(name, strip(row.highest, "highest"), strip(row.lowest, "lowest"));
      return line;
    }),
  );
  $("features").removeAttribute("aria-busy");
}

function strip(items, end) {
  const box = document.createElement("div");
  box.className = `strip ${end}`;
  const label = document.createElement("span");
  label.className = "end";
  label.textContent = end;
  box.append(label);
  box.append(
    ...items.map((item) => {
      const image = document.createElement("img");
      image.src = thumbnail(item.id, 56);
      image.alt = item.id;
      image.title = `${item.id}: ${item.value.toFixed(3)} (click to search by it)`;
      image.addEventListener("click", () => queryItem(item.id));
      return image;
    }),
  );
  return box;
}
