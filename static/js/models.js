// The models page: versions of a project's model, the evaluation of one, two side by side, and the
// "none of these" threshold. Everything comes from the JSON API; nothing here computes a metric.
import { api } from "./api.js";
import { mountLineChart, niceTicks } from "./charts.js";
import { capitalize, cloneTemplate, confirmDialog, percent, plural, showError, toast, whileBusy } from "./ui.js";

const project = JSON.parse(document.getElementById("project-data").textContent);
const root = document.getElementById("models");
const dialog = document.getElementById("image-dialog");
const $ = (role, scope = root) => scope.querySelector(`[data-role="${role}"]`);

const state = {
  models: [], // newest first, metrics without the per-image rows
  selected: null, // the full model shown in the report
  wanted: null, // the id being loaded
  compare: [], // ids ticked for comparison, at most two
};
const cache = new Map(); // id -> full model (GET /api/models/{id})

// ---------- formatting ----------

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const missing = (v) => v === null || v === undefined || Number.isNaN(v);
const pct = (v, digits = 1) => (missing(v) ? "–" : percent(v, digits));
const loss = (v) => (missing(v) ? "–" : v.toFixed(3));

// Stored in UTC; SQLite drops the zone, so a bare timestamp is read as UTC.
function parseDate(text) {
  return new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : `${text}Z`);
}

function duration(seconds) {
  if (missing(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

// Plain names shown; the technical account in the title (hover) and in Details.
const MODES = {
  head: { text: "quick", title: "only the last step learned: a new head on the frozen backbone's embeddings" },
  finetune: { text: "fine-tuned", title: "the head, then the backbone's last blocks retrained too" },
  imported: { text: "opened from a file", title: "a model downloaded from snapclass, opened as a project" },
};
const RECIPES = { "teachable-machine": "Teachable Machine recipe", snapclass: "snapclass recipe" };

function setMode(node, mode) {
  const info = MODES[mode] || { text: mode, title: "" };
  node.textContent = info.text;
  node.title = info.title;
  node.dataset.mode = mode;
}

function recipeText(metrics) {
  const parts = [RECIPES[metrics.recipe] || metrics.recipe].filter(Boolean);
  if (metrics.augment_views) parts.push(plural(metrics.augment_views, "augmented view"));
  return parts.join(" · ");
}

const label = (m) => `v${m.version}`;

// Each class's colour (ClassOut color), by name: a model's labels are the class names it was trained with.
const colorOf = new Map((project.classes || []).map((c) => [c.name, c.color]));

function swatch(name) {
  const dot = document.createElement("span");
  dot.className = "class-swatch";
  dot.setAttribute("aria-hidden", "true");
  const color = colorOf.get(name);
  if (color) dot.style.setProperty("--swatch", color);
  else dot.classList.add("is-unknown");
  return dot;
}

// The headline, computed once on the server (app/training.py judgement): balanced accuracy, the mean of
// the per-class accuracies. Models trained before it existed fall back to plain accuracy.
const headline = (metrics) => metrics.balanced_accuracy ?? metrics.val_accuracy;
const photosUsed = (metrics) => (metrics.class_photos ? Object.values(metrics.class_photos).reduce((a, b) => a + b, 0)
  : metrics.n_train);

// ---------- loading ----------

async function loadList() {
  state.models = await api.get(`/api/projects/${project.id}/models`);
  const current = state.models.find((m) => m.is_current);
  for (const full of cache.values()) full.is_current = Boolean(current && full.id === current.id);
}

async function init() {
  try {
    await loadList();
  } catch (err) {
    root.dataset.state = "error";
    root.removeAttribute("aria-busy");
    $("loading").textContent = "The model versions could not be loaded.";
    showError(err, "Could not load the model versions");
    return;
  }
  $("loading").hidden = true;
  root.removeAttribute("aria-busy");
  renderVersions();
  const asked = Number(new URLSearchParams(window.location.search).get("model"));
  const first = state.models.find((m) => m.id === asked) || state.models.find((m) => m.is_current) || state.models[0];
  if (first) await select(first.id);
}

// A change is applied from its own answer; no list is fetched again.
function setCurrent(id) {
  for (const m of [...state.models, ...cache.values()]) m.is_current = m.id === id;
  renderVersions();
  if (state.selected) renderTitle(state.selected);
}

async function forget(id) {
  state.models = state.models.filter((m) => m.id !== id);
  state.compare = state.compare.filter((x) => x !== id);
  cache.delete(id);
  renderVersions();
  if (state.selected?.id === id) {
    state.selected = null;
    const next = state.models.find((m) => m.is_current) || state.models[0];
    if (next) await select(next.id);
  }
}

// ---------- versions ----------

function renderVersions() {
  const empty = state.models.length === 0;
  root.dataset.state = empty ? "empty" : "ready";
  $("empty").hidden = !empty;
  $("versions").hidden = empty;
  if (empty) $("report").hidden = true;
  $("rows").replaceChildren(...state.models.map(versionRow));
  renderCompare();
}

function versionRow(m) {
  const row = cloneTemplate("version-row-template");
  const metrics = m.metrics || {};
  const name = label(m);
  row.dataset.modelId = String(m.id);
  row.dataset.version = String(m.version);
  row.classList.toggle("is-current", m.is_current);
  row.classList.toggle("is-selected", state.wanted === m.id);
  const select = row.querySelector("[data-action=select]");
  select.setAttribute("aria-label", `Show the evaluation of ${name}`);
  select.setAttribute("aria-pressed", String(state.wanted === m.id));
  $("version", row).textContent = name;
  $("current", row).hidden = !m.is_current;
  const created = parseDate(m.created_at);
  const time = $("created", row);
  time.dateTime = created.toISOString();
  time.textContent = dateFormat.format(created);
  setMode($("mode", row), m.mode);
  $("recipe", row).textContent = recipeText(metrics);
  $("val", row).textContent = pct(headline(metrics));
  const weakest = metrics.weakest_class;
  $("weakest", row).textContent = weakest ? `${pct(weakest.accuracy, 0)} · ${weakest.label}` : "–";
  $("weakest", row).title = weakest ? weakest.label : "";
  $("counts", row).textContent = String(photosUsed(metrics) ?? "–");
  $("seconds", row).textContent = duration(metrics.total_seconds);
  const box = $("compare", row);
  box.checked = state.compare.includes(m.id);
  box.setAttribute("aria-label", `Compare ${name}`);
  const activate = row.querySelector("[data-action=activate]");
  activate.hidden = m.is_current;
  activate.setAttribute("aria-label", `Make ${name} current`);
  const del = row.querySelector("[data-action=delete]");
  del.setAttribute("aria-label", `Delete ${name}`);
  return row;
}

function markSelected() {
  for (const row of $("rows").children) {
    const on = Number(row.dataset.modelId) === state.wanted;
    row.classList.toggle("is-selected", on);
    row.querySelector("[data-action=select]").setAttribute("aria-pressed", String(on));
  }
}

async function activate(model) {
  let out;
  try {
    out = await api.post(`/api/projects/${project.id}/models/${model.id}/activate`);
  } catch (err) {
    showError(err, `Could not make ${label(model)} current`);
    return;
  }
  setCurrent(out.id);
  toast(`${label(model)} is now the current model: predictions, the live test and downloads use it.`, "success");
}

async function remove(model, button) {
  const ok = await confirmDialog({
    title: `Delete model ${label(model)}?`,
    text: "Its evaluation goes with it, and it can no longer be made current or downloaded. This cannot be undone.",
    ok: "Delete",
  });
  if (!ok) return;
  try {
    await whileBusy(button, () => api.del(`/api/models/${model.id}`));
  } catch (err) {
    showError(err, `Could not delete ${label(model)}`);
    return;
  }
  toast(`Model ${label(model)} was deleted.`, "success");
  document.getElementById("versions-heading").focus();
  await forget(model.id);
}

// ---------- comparison ----------

function toggleCompare(id, on) {
  state.compare = state.compare.filter((x) => x !== id);
  if (on) state.compare.push(id);
  if (state.compare.length > 2) state.compare.shift();
  for (const box of root.querySelectorAll("[data-role=compare]")) {
    box.checked = state.compare.includes(Number(box.closest("tr").dataset.modelId));
  }
  renderCompare();
}

function renderCompare() {
  const chosen = state.compare.map((id) => state.models.find((m) => m.id === id)).filter(Boolean);
  state.compare = chosen.map((m) => m.id);
  const hint = $("compare-hint");
  const panel = $("compare-panel");
  if (chosen.length === 0) hint.textContent = state.models.length > 1 ? "Tick two versions to compare them." : "";
  else if (chosen.length === 1) hint.textContent = `Tick one more version to compare it with ${label(chosen[0])}.`;
  else hint.textContent = `Comparing ${label(chosen[0])} and ${label(chosen[1])}.`;
  panel.hidden = chosen.length !== 2;
  if (chosen.length !== 2) return;
  const [a, b] = chosen.sort((x, y) => y.version - x.version);
  $("compare-title").textContent = `${label(a)} and ${label(b)} side by side`;
  $("col-a").textContent = label(a);
  $("col-b").textContent = label(b);
  const ma = a.metrics || {};
  const mb = b.metrics || {};
  const perClass = (metrics, name) => (metrics.per_class || []).find((c) => c.label === name)?.accuracy;
  const rows = [
    ["Right, each class counted equally", headline, pct, 1],
    ["Weakest class", (m) => m.weakest_class?.accuracy, pct, 1],
    ["Plain accuracy", (m) => m.val_accuracy, pct, 1],
    ["Training accuracy", (m) => m.train_accuracy, pct, 1],
    ["Validation loss", (m) => m.val_loss, loss, -1],
    ["Training images", (m) => m.n_train, String, 0],
    ["Validation images", (m) => m.n_val, String, 0],
    ["Mode", (m) => m.mode, (v) => MODES[v]?.text || v, 0],
    ["Recipe", (m) => recipeText(m) || null, String, 0, "is-wrap"],
    ["Best epoch", (m) => m.best_epoch, String, 0],
    ["Training time", (m) => m.total_seconds, duration, 0],
  ];
  const body = $("compare-rows");
  body.replaceChildren();
  const addRow = (name, va, vb, format, better, extraClass = "") => {
    const tr = document.createElement("tr");
    if (extraClass) tr.className = extraClass;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    tr.append(th);
    const winner = !better || missing(va) || missing(vb) || va === vb ? null : (va - vb) * better > 0 ? 0 : 1;
    [va, vb].forEach((value, i) => {
      const td = document.createElement("td");
      td.className = "num";
      td.textContent = missing(value) ? "–" : format(value);
      if (winner === i) {
        td.classList.add("is-better");
        td.dataset.better = "true";
        const note = document.createElement("span");
        note.className = "sr-only";
        note.textContent = " (better)";
        td.append(note);
      }
      tr.append(td);
    });
    body.append(tr);
  };
  for (const [name, get, format, better, cls] of rows) addRow(name, get(ma), get(mb), format, better, cls);
  const labels = [...new Set([...(ma.labels || a.labels), ...(mb.labels || b.labels)])];
  if (labels.length) {
    const tr = document.createElement("tr");
    tr.className = "compare-group";
    const th = document.createElement("th");
    th.scope = "colgroup";
    th.colSpan = 3;
    th.textContent = "Accuracy per class";
    tr.append(th);
    body.append(tr);
  }
  for (const name of labels) addRow(name, perClass(ma, name), perClass(mb, name), pct, 1, "compare-class");
}

// ---------- the report of one version ----------

async function select(id, { scroll = false } = {}) {
  state.wanted = id;
  markSelected();
  const report = $("report");
  let model = cache.get(id);
  if (!model) {
    report.classList.add("is-loading");
    try {
      model = await api.get(`/api/models/${id}`);
    } catch (err) {
      report.classList.remove("is-loading");
      showError(err, "Could not load that model's evaluation");
      return;
    }
    cache.set(id, model);
  }
  if (state.wanted !== id) return; // another version was chosen meanwhile
  report.classList.remove("is-loading");
  const listed = state.models.find((m) => m.id === id);
  if (listed) model.is_current = listed.is_current;
  state.selected = model;
  const url = new URL(window.location.href);
  url.searchParams.set("model", String(id));
  window.history.replaceState(null, "", url);
  renderReport(model);
  if (scroll) {
    report.scrollIntoView({ behavior: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
    document.getElementById("eval-heading").focus({ preventScroll: true });
  }
}

function renderTitle(m) {
  $("eval-version").textContent = label(m);
  $("eval-current").hidden = !m.is_current;
  setMode($("eval-mode"), m.mode);
}

function epochRange(epochs) {
  const lo = Math.min(...epochs);
  const hi = Math.max(...epochs);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

// How the numbers above were measured, in words: the split, or the cross-validation.
function validationText(metrics) {
  const v = metrics.validation || {};
  if (v.method === "cross-validation") {
    return `Judged by ${v.folds}-fold cross-validation: each of the ${plural(metrics.n_val, "photo")} was checked `
      + `by a head trained without it. The model you use averages the ${v.folds} heads, so it learned from all `
      + `${plural(metrics.n_train, "photo")}.`;
  }
  if (v.method === "split" && metrics.n_val) {
    return `Judged on ${plural(metrics.n_val, "photo")} (about ${Math.round(v.fraction * 100)} %) set aside `
      + `before training; the model learned from the other ${metrics.n_train}.`;
  }
  return "";
}

// Why the headline and the plain accuracy differ, in words (Details).
function headlineNote(metrics) {
  if (missing(metrics.balanced_accuracy)) return "";
  return `The figure at the top is the balanced accuracy: each class's share of photos answered right, averaged, `
    + `so a class with few photos counts as much as a big one (plain accuracy over all checked photos: `
    + `${pct(metrics.val_accuracy)}). The Train panel and the API (metrics.balanced_accuracy) give the same figure. `
    + `Training accuracy is the final model on the photos it learned from, so it is usually higher.`;
}

function renderReport(m) {
  const metrics = m.metrics || {};
  const labels = metrics.labels || m.labels;
  const report = $("report");
  report.hidden = false;
  report.dataset.modelId = String(m.id);
  renderTitle(m);
  $("val-accuracy", report).textContent = pct(headline(metrics));
  $("headline-label", report).textContent = !missing(metrics.balanced_accuracy) && labels.length > 1
    ? "right on photos it had not seen (each class counted equally)" : "right on photos it had not seen";
  const weakest = metrics.weakest_class;
  $("weakest-stat", report).hidden = !weakest;
  if (weakest) {
    $("weakest-accuracy", report).textContent = pct(weakest.accuracy, 0);
    $("weakest", report).textContent = weakest.label;
    $("weakest-stat", report).title = `Weakest class: ${weakest.label}, right ${pct(weakest.accuracy, 0)} of the time`;
  }
  $("photos", report).textContent = String(photosUsed(metrics) ?? "–");
  const warnings = metrics.warnings || [];
  $("warnings", report).hidden = !warnings.length;
  $("warnings", report).replaceChildren(...warnings.map((w) => {
    const li = document.createElement("li");
    li.className = "hint-warn small";
    li.dataset.label = w.label;
    li.append(swatch(w.label), document.createTextNode(w.text));
    return li;
  }));
  const outcome = metrics.outcome;
  $("outcome-badge", report).hidden = !outcome;
  $("outcome-badge", report).textContent = outcome ? (outcome.badge === "Quick" ? "quick model" : "fine-tuned") : "";
  $("outcome", report).textContent = outcome ? outcome.text : "";
  $("plain-accuracy", report).textContent = pct(metrics.val_accuracy);
  $("headline-note", report).textContent = headlineNote(metrics);
  $("train-accuracy", report).textContent = pct(metrics.train_accuracy);
  $("val-loss", report).textContent = loss(metrics.val_loss);
  $("counts", report).textContent = `${metrics.n_train ?? "–"} / ${metrics.n_val ?? "–"}`;
  const folds = metrics.best_epochs && metrics.best_epochs.length > 1 ? metrics.best_epochs : null;
  $("best-epoch", report).textContent = folds ? epochRange(folds)
    : metrics.best_epoch ? String(metrics.best_epoch) : "–";
  $("best-epoch-label", report).textContent = folds ? "best epochs (each fold's, kept)" : "best epoch (kept)";
  $("validation-method", report).textContent = validationText(metrics);
  $("seconds", report).textContent = duration(metrics.total_seconds);
  const reason = metrics.mode_reason ? capitalize(metrics.mode_reason) : `Trained in ${MODES[m.mode]?.text || m.mode} mode`;
  let how = metrics.device ? `Trained on ${metrics.device}` : "";
  if (metrics.recipe) how += `${how ? " with" : "With"} the ${RECIPES[metrics.recipe] || metrics.recipe}`;
  if (metrics.augment_views) how += ` and ${plural(metrics.augment_views, "augmented view")} of each training photo`;
  $("mode-reason").textContent = `${reason.replace(/\.$/, "")}.${how ? ` ${how}.` : ""}`;
  $("no-val").hidden = Boolean(metrics.n_val);
  renderPerClass(metrics);
  $("threshold-status").textContent = "";
  renderThreshold(m);
  renderConfusion(metrics, labels);
  renderHistory(metrics);
  renderMistakes(m);
  renderCurves(m, metrics, labels);
}

function renderPerClass(metrics) {
  const list = $("per-class");
  list.replaceChildren();
  for (const c of metrics.per_class || []) {
    const li = document.createElement("li");
    li.className = "bar";
    li.setAttribute("data-testid", "class-accuracy");
    li.dataset.label = c.label;
    if (!missing(c.accuracy) && c.accuracy < 0.8) li.classList.add("is-low");
    const name = document.createElement("span");
    name.className = "bar-label";
    const text = document.createElement("span");
    text.className = "bar-name";
    text.textContent = c.label;
    name.append(swatch(c.label), text);
    name.title = `${c.label}: ${plural(c.count, "validation photo")}`
      + (c.photos === undefined ? "" : ` of ${plural(c.photos, "photo")}`);
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.width = `${Math.round((c.accuracy || 0) * 100)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = pct(c.accuracy, 0);
    const count = document.createElement("span");
    count.className = "sr-only";
    count.textContent = ` of ${plural(c.count, "photo")}`;
    value.append(count);
    li.append(name, track, value);
    list.append(li);
  }
  if (!list.children.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = "No validation photos, so no accuracy per class.";
    list.append(li);
  }
}

// ---------- "none of these" ----------

let saveTimer = 0;
let saveSeq = 0;
let pendingChange = false; // the slider moved again and its save has not started yet
const slider = $("threshold");
const thresholdValue = $("threshold-value");

function renderThreshold(m) {
  const has = !missing(m.unknown_threshold);
  $("threshold-controls").hidden = !has;
  $("threshold-missing").hidden = has;
  const reset = root.querySelector("[data-action=reset-threshold]");
  reset.hidden = !has || missing(m.unknown_threshold_calibrated);
  if (!has) {
    $("threshold-calibrated").textContent = "";
    return;
  }
  const calibrated = m.unknown_threshold_calibrated;
  const floor2 = (v) => Math.floor(v * 100) / 100;
  slider.min = String(Math.min(0, floor2(m.unknown_threshold), missing(calibrated) ? 0 : floor2(calibrated)));
  slider.value = String(m.unknown_threshold);
  showThresholdValue(m.unknown_threshold);
  const marks = $("threshold-marks");
  marks.replaceChildren();
  if (!missing(calibrated)) {
    const option = document.createElement("option");
    option.value = String(calibrated);
    option.label = "calibrated";
    marks.append(option);
  }
  $("threshold-calibrated").textContent = missing(calibrated) ? ""
    : `Calibrated on this model's photos: ${calibrated.toFixed(2)}.`;
  reset.disabled = missing(calibrated) || Math.abs(calibrated - m.unknown_threshold) < 1e-9;
}

function showThresholdValue(value) {
  const text = Number(value).toFixed(2);
  thresholdValue.textContent = text;
  slider.setAttribute("aria-valuetext", `${text} similarity`);
}

async function saveThreshold(model, body) {
  if (!model) return;
  const seq = ++saveSeq;
  const status = $("threshold-status");
  status.textContent = "Saving…";
  status.dataset.state = "saving";
  try {
    const out = await api.patch(`/api/models/${model.id}`, body);
    model.unknown_threshold = out.unknown_threshold;
    model.unknown_threshold_calibrated = out.unknown_threshold_calibrated;
    const listed = state.models.find((m) => m.id === model.id);
    if (listed) listed.unknown_threshold = out.unknown_threshold;
    if (seq !== saveSeq || pendingChange || state.selected !== model) return; // a newer change is on its way
    renderThreshold(model);
    status.textContent = `Saved: ${label(model)} answers “unknown” below ${out.unknown_threshold.toFixed(2)}.`
      + (model.is_current ? " Downloads made from now on carry it." : "");
    status.dataset.state = "saved";
  } catch (err) {
    showError(err, `Could not save the threshold of ${label(model)}`);
    if (seq !== saveSeq || pendingChange || state.selected !== model) return;
    status.textContent = "";
    delete status.dataset.state;
    renderThreshold(model); // back to what the server has
  }
}

slider.addEventListener("input", () => {
  showThresholdValue(slider.value);
  $("threshold-status").textContent = "";
});
slider.addEventListener("change", () => {
  clearTimeout(saveTimer);
  pendingChange = true;
  const status = $("threshold-status");
  status.textContent = "Saving…";
  status.dataset.state = "saving";
  const value = Number(slider.value);
  const model = state.selected;
  saveTimer = setTimeout(() => {
    pendingChange = false;
    saveThreshold(model, { unknown_threshold: value });
  }, 250);
});
root.querySelector("[data-action=reset-threshold]").addEventListener("click", (event) => {
  clearTimeout(saveTimer);
  pendingChange = false;
  event.currentTarget.disabled = true; // renderThreshold enables it again where it still applies
  saveThreshold(state.selected, { reset_unknown_threshold: true });
});

// ---------- confusion matrix and the photos behind a cell ----------

function renderConfusion(metrics, labels) {
  const box = $("confusion");
  resetCell();
  const cm = metrics.confusion;
  // Many classes: the matrix takes the whole width and the photos go below it.
  root.querySelector(".eval-grid").classList.toggle("is-wide-cm", (cm?.length || 0) > 4);
  if (!cm || !cm.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "No validation photos, so no confusion matrix.";
    box.replaceChildren(p);
    return;
  }
  const table = document.createElement("table");
  table.className = "cm";
  table.setAttribute("data-testid", "confusion-matrix");
  const caption = document.createElement("caption");
  caption.className = "sr-only";
  caption.textContent = "Confusion matrix: rows are the true classes, columns the classes the model answered.";
  table.append(caption);

  const thead = document.createElement("thead");
  const axis = document.createElement("tr");
  axis.append(cellNode("td", "", "cm-corner"));
  const predicted = cellNode("th", "Answered →", "cm-axis cm-axis-col");
  predicted.scope = "colgroup";
  predicted.colSpan = labels.length;
  axis.append(predicted, cellNode("td", "", "cm-corner"));
  const head = document.createElement("tr");
  head.append(cellNode("th", "True class", "cm-axis cm-axis-row"));
  head.lastChild.scope = "col";
  for (const name of labels) {
    const th = classHeader("th", name, "cm-col");
    th.scope = "col";
    head.append(th);
  }
  const totalHead = cellNode("th", "Total", "cm-total-head");
  totalHead.scope = "col";
  head.append(totalHead);
  thead.append(axis, head);
  table.append(thead);

  const tbody = document.createElement("tbody");
  let total = 0;
  cm.forEach((row, t) => {
    const tr = document.createElement("tr");
    const th = classHeader("th", labels[t], "cm-row");
    th.scope = "row";
    tr.append(th);
    const rowTotal = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      const td = document.createElement("td");
      const share = rowTotal ? count / rowTotal : 0;
      td.className = `cm-td ${t === p ? "is-diag" : "is-off"}${share > 0.55 ? " is-strong" : ""}`;
      td.style.setProperty("--i", share.toFixed(3));
      const words = t === p ? `${labels[t]} answered right` : `${labels[t]} answered as ${labels[p]}`;
      let node;
      if (count > 0) {
        node = document.createElement("button");
        node.type = "button";
        node.dataset.action = "cell";
        node.setAttribute("aria-pressed", "false");
        node.setAttribute("aria-label", `${words}: ${plural(count, "photo")}, ${pct(share, 0)} of ${labels[t]}. Show them`);
      } else {
        node = document.createElement("span");
        node.setAttribute("aria-label", `${words}: none`);
      }
      node.className = "cm-cell";
      node.dataset.true = String(t);
      node.dataset.predicted = String(p);
      node.dataset.count = String(count);
      node.setAttribute("data-testid", "cm-cell");
      const n = document.createElement("span");
      n.className = "cm-count";
      n.textContent = String(count);
      const share_ = document.createElement("span");
      share_.className = "cm-share";
      share_.setAttribute("aria-hidden", "true");
      share_.textContent = rowTotal ? pct(share, 0) : "";
      node.append(n, share_);
      td.append(node);
      tr.append(td);
    });
    total += rowTotal;
    tr.append(cellNode("td", String(rowTotal), "cm-total"));
    tbody.append(tr);
  });
  table.append(tbody);
  const foot = document.createElement("p");
  foot.className = "hint cm-foot";
  foot.setAttribute("data-testid", "cm-total");
  foot.dataset.total = String(total);
  foot.textContent = `${plural(total, "validation photo")} in all.`;
  box.replaceChildren(table, foot);
}

// A class name as a matrix header: swatch and name, cut with an ellipsis when long, the whole name in
// its title and for screen readers, so the answered class stays readable under any name length.
function classHeader(tag, name, className) {
  const node = document.createElement(tag);
  node.className = className;
  node.title = name;
  node.setAttribute("aria-label", name);
  node.dataset.label = name;
  const text = document.createElement("span");
  text.className = "cm-name";
  text.textContent = name;
  text.setAttribute("aria-hidden", "true");
  const wrap = document.createElement("span");
  wrap.className = "cm-head";
  wrap.append(swatch(name), text);
  node.append(wrap);
  return node;
}

function cellNode(tag, text, className) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

// ---------- validation photos, a page at a time (GET /api/models/{id}/predictions) ----------

// A cell or the mistakes of a big project are thousands of photos: a page of them, and "Show more". The cell's
// column beside the matrix is narrow, so its page is smaller (rows of 2, 3, 4 or 6 come out even either way).
const PHOTO_PAGE = { cell: 24, mistakes: 48 };
const galleries = { cell: null, mistakes: null }; // what each gallery shows now; a newer one makes older answers moot

function openGallery(kind, model, params) {
  const labels = model.metrics?.labels || model.labels;
  galleries[kind] = { model, params, labels, offset: 0, total: 0, photos: 0, loading: null };
  $(`${kind}-more`).hidden = true;
  return galleries[kind];
}

// The gallery's next page, appended; null when another gallery (cell, version) replaced it meanwhile.
function morePhotos(kind) {
  const g = galleries[kind];
  g.loading ||= (async () => {
    const query = new URLSearchParams({ ...g.params, limit: String(PHOTO_PAGE[kind]), offset: String(g.offset) });
    const page = await api.get(`/api/models/${g.model.id}/predictions?${query}`);
    if (galleries[kind] !== g) return null;
    Object.assign(g, { offset: g.offset + page.rows.length, total: page.total, photos: page.photos });
    $(kind === "cell" ? "cell-images" : "mistakes").append(...page.rows.map((r) => thumb(r, g.labels)));
    const more = $(`${kind}-more`);
    more.hidden = g.offset >= g.total;
    more.textContent = `Show more (${g.offset} of ${g.total} shown)`;
    return page;
  })().finally(() => {
    g.loading = null;
  });
  return g.loading;
}

async function showMore(kind, button) {
  button.setAttribute("aria-busy", "true"); // not disabled: that would drop the keyboard focus
  const first = galleries[kind]?.offset;
  try {
    await morePhotos(kind);
  } catch (err) {
    showError(err, "Could not load more photos");
  } finally {
    button.removeAttribute("aria-busy");
  }
  if (button.hidden) { // all shown: focus goes to the first photo it brought, not to the top of the page
    $(kind === "cell" ? "cell-images" : "mistakes").children[first]?.querySelector("button")?.focus();
  }
}

function resetCell() {
  galleries.cell = null;
  $("cell-more").hidden = true;
  $("cell-title").textContent = "Photos behind a cell";
  $("cell-hint").textContent = "Click a number in the confusion matrix to see the validation photos it counts.";
  $("cell-images").replaceChildren();
}

async function showCell(t, p) {
  const model = state.selected;
  const labels = model.metrics?.labels || model.labels;
  for (const button of $("confusion").querySelectorAll("button[data-action=cell]")) {
    const on = Number(button.dataset.true) === t && Number(button.dataset.predicted) === p;
    button.setAttribute("aria-pressed", String(on));
  }
  const g = openGallery("cell", model, { true: String(t), predicted: String(p) });
  $("cell-title").textContent = t === p ? `${labels[t]}, answered right` : `${labels[t]} answered as ${labels[p]}`;
  $("cell-hint").textContent = "Loading its photos…";
  $("cell-images").replaceChildren();
  const panel = root.querySelector("[data-testid=cell-panel]");
  if (panel.getBoundingClientRect().top > window.innerHeight) panel.scrollIntoView({ block: "nearest" });
  let page;
  try {
    page = await morePhotos("cell");
  } catch (err) {
    if (galleries.cell === g) $("cell-hint").textContent = "The photos could not be loaded.";
    showError(err, "Could not load the photos of that cell");
    return;
  }
  if (!page) return;
  $("cell-hint").textContent = `${plural(page.photos, "validation photo")}${t === p ? ", least sure first" : ", worst first"}. `
    + "Click one to see it larger.";
}

function thumb(row, labels) {
  const li = cloneTemplate("eval-thumb-template");
  const right = row.true === row.predicted;
  li.dataset.sampleId = String(row.sample_id);
  li.classList.toggle("is-wrong", !right);
  const img = li.querySelector("img");
  img.src = `/api/samples/${row.sample_id}/thumbnail`;
  img.alt = right ? `A ${labels[row.true]} photo, answered right`
    : `A ${labels[row.true]} photo, answered ${labels[row.predicted]}`;
  img.addEventListener("error", () => li.classList.add("is-missing"), { once: true });
  const caption = $("labels", li);
  const trueName = document.createElement("span");
  trueName.className = "thumb-true";
  trueName.textContent = labels[row.true];
  caption.replaceChildren(trueName);
  if (!right) {
    const answered = document.createElement("span");
    answered.className = "thumb-answered";
    answered.textContent = `→ ${labels[row.predicted]}`;
    caption.append(answered);
  }
  caption.title = right ? labels[row.true] : `${labels[row.true]} answered as ${labels[row.predicted]}`;
  if (row.similar > 1) {
    const more = document.createElement("span");
    more.className = "thumb-similar";
    more.setAttribute("data-testid", "similar-count");
    more.textContent = `×${row.similar} similar frames`;
    li.querySelector(".eval-thumb-btn").append(more);
    li.dataset.similar = String(row.similar);
  }
  $("score", li).textContent = `${pct(row.score, 0)} sure`;
  const button = li.querySelector("button");
  const similar = row.similar > 1 ? `, one of ${row.similar} similar frames from one recording` : "";
  button.setAttribute("aria-label", `${img.alt}, ${pct(row.score, 0)} sure${similar}. Open it larger`);
  button.addEventListener("click", () => openImage(row, labels));
  return li;
}

function openImage(row, labels) {
  const right = row.true === row.predicted;
  $("title", dialog).textContent = right ? `${labels[row.true]}, answered right`
    : `${labels[row.true]}, answered ${labels[row.predicted]}`;
  const img = $("image", dialog);
  img.src = `/api/samples/${row.sample_id}/image`;
  img.alt = `Validation photo of class ${labels[row.true]}`;
  $("text", dialog).textContent = `True class: ${labels[row.true]} · the model answered ${labels[row.predicted]}, `
    + `${pct(row.score)} sure · loss ${row.loss.toFixed(3)}`;
  dialog.showModal();
}

dialog.addEventListener("click", (event) => {
  if (event.target === dialog) dialog.close(); // a click on the backdrop
});

// ---------- history, mistakes, learning curves ----------

function renderHistory(metrics) {
  const history = metrics.history || [];
  const foldCount = metrics.validation && metrics.validation.method === "cross-validation" ? metrics.validation.folds : 0;
  $("history-folds").hidden = !foldCount;
  $("history-folds").textContent = foldCount
    ? `Each line is the mean of the ${foldCount} cross-validation heads; "validation" is each head's held-out fold.`
    : "";
  const balanced = history.some((r) => !missing(r.val_balanced_accuracy));
  $("history-why").textContent = historyWhy(metrics, foldCount, balanced);
  $("history").hidden = history.length === 0;
  $("history-empty").hidden = history.length > 0;
  if (!history.length) return;
  const first = history[0].epoch;
  const last = history[history.length - 1].epoch;
  const markers = [];
  const finetune = history.find((r) => r.phase === "finetune");
  if (finetune && finetune.epoch > first) {
    markers.push({ x: finetune.epoch - 0.5, kind: "phase", short: "fine-tuning",
      label: `fine-tuning from epoch ${finetune.epoch}` });
  }
  const folds = metrics.best_epochs && metrics.best_epochs.length > 1 ? metrics.best_epochs : null;
  if (folds) {
    markers.push({ x: metrics.best_epoch, kind: "best", short: `best: ${epochRange(folds)}`,
      label: `each fold kept its best epoch (${epochRange(folds)}, median ${metrics.best_epoch})`,
      row: markers.length });
  } else if (metrics.best_epoch) {
    markers.push({ x: metrics.best_epoch, kind: "best", short: `best: ${metrics.best_epoch}`,
      label: `best epoch ${metrics.best_epoch}, kept`, row: markers.length });
  }
  const hasVal = history.some((r) => !missing(r.val_loss));
  const series = (key) => [
    { name: "training", values: history.map((r) => ({ x: r.epoch, y: r[`train_${key}`] ?? null })), color: 1,
      dashed: true },
    ...(hasVal ? [{ name: "validation", values: history.map((r) => ({ x: r.epoch,
      // Accuracy as the headline measures it: each class counted equally, where the epoch recorded it.
      y: (key === "accuracy" ? r.val_balanced_accuracy ?? r.val_accuracy : r[`val_${key}`]) ?? null })),
    color: 0 }] : []),
  ];
  const xDomain = [first, Math.max(last, first + 1)];
  mountLineChart($("loss-chart"), {
    title: "Loss per epoch", series: series("loss"), markers, xDomain, xLabel: "epoch", xName: "epoch",
    yTickCount: 5, yFormat: (v) => (v >= 1 ? v.toFixed(1) : v.toFixed(2)), yTooltip: (v) => v.toFixed(3),
  });
  const accs = history.flatMap((r) => [r.train_accuracy, r.val_balanced_accuracy ?? r.val_accuracy])
    .filter((v) => !missing(v));
  const low = Math.min(0.5, Math.floor(Math.min(...accs, 1) * 10) / 10);
  mountLineChart($("accuracy-chart"), {
    title: "Accuracy per epoch", series: series("accuracy"), markers, xDomain, xLabel: "epoch", xName: "epoch",
    yDomain: [low, 1], yTicks: niceTicks(low, 1, 5), yFormat: (v) => `${Math.round(v * 100)}%`,
    yTooltip: (v) => pct(v),
  });
}

// The training line is a running measure with augmentation and dropout; the headline is each photo
// judged once at its model's best epoch. Said in a sentence, so the two never look contradictory.
function historyWhy(metrics, folds, balanced) {
  const parts = [];
  parts.push("The training line is measured while the model learns, on varied copies of the photos and with "
    + "part of it switched off at random (dropout), so it can sit below the validation line.");
  if (balanced) parts.push("The validation line counts each class equally, as the figure at the top does.");
  if (folds) {
    parts.push(`The lines average ${folds} models epoch by epoch; the figure at the top judges each photo once, by `
      + "the model that never saw it, at that model's best epoch, so it can sit above the top of the line.");
  } else if (metrics.validation?.method === "split") {
    parts.push("The figure at the top is the kept epoch's validation result on the same photos.");
  }
  return parts.join(" ");
}

// Worst first. A webcam recording's frames are near-identical, so the server sends one tile per recording (the
// worst frame) with a count, instead of a row of the same picture.
async function renderMistakes(model) {
  const metrics = model.metrics || {};
  const g = openGallery("mistakes", model, { wrong: "true", group: "burst" });
  $("mistakes").replaceChildren();
  $("mistakes-none").hidden = true;
  if (!metrics.n_val) {
    $("mistakes-count").textContent = "no validation photos";
    return;
  }
  $("mistakes-count").textContent = "loading…";
  let page;
  try {
    page = await morePhotos("mistakes");
  } catch (err) {
    if (galleries.mistakes === g) $("mistakes-count").textContent = "could not be loaded";
    showError(err, "Could not load the misclassified photos");
    return;
  }
  if (!page) return;
  $("mistakes-none").hidden = page.photos > 0;
  $("mistakes-count").textContent = `${page.photos} of ${plural(metrics.n_val, "photo")}`
    + (page.total < page.photos ? "; similar frames of one recording shown once" : "");
}

function renderCurves(model, metrics, labels) {
  const curves = metrics.learning_curves;
  const points = curves?.points || [];
  const has = points.length > 0;
  $("curves").hidden = !has;
  const note = $("curves-missing");
  note.hidden = has;
  if (!has) {
    // Worked out after the model is ready; the change feed re-renders this view when they arrive.
    note.classList.toggle("working", curves?.status === "pending");
    if (curves?.status === "pending") {
      note.textContent = "Working out how more photos would help each class… this takes a few seconds; "
        + "the model is ready to use meanwhile.";
      return;
    }
    if (curves?.status === "skipped" || curves?.status === "interrupted") {
      note.textContent = `Learning curves were not worked out for this version: ${curves.reason}.`;
      return;
    }
    note.textContent = model.mode === "head" && !metrics.n_val
      ? "Learning curves need validation photos: add more photos to each class and train again."
      : "Learning curves are made for quick models only: they retrain the model on a quarter, half and three "
        + "quarters of the photos, which takes seconds for a quick model but would mean repeating the whole "
        + "fine-tuning. Choose Quick in Advanced settings on the project page to see them.";
    return;
  }
  const series = labels.map((name, i) => ({
    name, color: i % 8, hex: colorOf.get(name),
    values: points.map((p) => ({ x: p.fraction, y: p.per_class?.[name] ?? null })),
  }));
  if (labels.length > 1) {
    series.push({ name: "all classes", color: "all", dashed: true,
      values: points.map((p) => ({ x: p.fraction, y: p.accuracy ?? null })) });
  }
  const counts = new Map(points.map((p) => [p.fraction, p.train_count]));
  const ys = points.flatMap((p) => Object.values(p.per_class || {})).filter((v) => !missing(v));
  const low = Math.min(0.5, Math.floor(Math.min(...ys, 1) * 10) / 10);
  mountLineChart($("curves-chart"), {
    title: "Validation accuracy per class against the share of training photos used", series,
    xTicks: points.map((p) => p.fraction), xDomain: [points[0].fraction, points[points.length - 1].fraction],
    xFormat: (f) => `${Math.round(f * 100)}%`, xName: "share",
    xLabel: `share of the training photos used (100% = ${counts.get(points[points.length - 1].fraction) ?? "all"})`,
    yDomain: [low, 1], yTicks: niceTicks(low, 1, 5), yFormat: (v) => `${Math.round(v * 100)}%`,
    yTooltip: (v) => pct(v), pad: { right: 22 },
    ariaLabel: `Learning curves: validation accuracy per class when training on ${points
      .map((p) => `${Math.round(p.fraction * 100)}% (${counts.get(p.fraction)} photos)`).join(", ")} of the training photos. `
      + labels.map((name) => `${name}: ${points.map((p) => pct(p.per_class?.[name], 0)).join(", ")}`).join("; "),
  });
  const list = $("advice");
  list.replaceChildren();
  for (const item of curves.advice || []) {
    const li = document.createElement("li");
    const i = labels.indexOf(item.label);
    li.className = `series-${i >= 0 ? i % 8 : "all"}`;
    const swatch = document.createElement("span");
    swatch.className = "advice-swatch";
    swatch.setAttribute("aria-hidden", "true");
    const text = document.createElement("p");
    const prefix = `${item.label}: `;
    if (item.label && item.text.startsWith(prefix)) {
      const strong = document.createElement("strong");
      strong.textContent = item.label;
      text.append(strong, document.createTextNode(`: ${item.text.slice(prefix.length)}`));
    } else {
      text.textContent = item.text;
    }
    li.append(swatch, text);
    list.append(li);
  }
}

// ---------- events ----------

$("rows").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = Number(button.closest("tr").dataset.modelId);
  const model = state.models.find((m) => m.id === id);
  if (!model) return;
  if (button.dataset.action === "select") select(id, { scroll: true });
  else if (button.dataset.action === "activate") whileBusy(button, () => activate(model));
  else if (button.dataset.action === "delete") remove(model, button);
});
$("rows").addEventListener("change", (event) => {
  if (event.target.dataset.role !== "compare") return;
  toggleCompare(Number(event.target.closest("tr").dataset.modelId), event.target.checked);
});
root.querySelector("[data-action=clear-compare]").addEventListener("click", () => {
  state.compare = [];
  for (const box of root.querySelectorAll("[data-role=compare]")) box.checked = false;
  renderCompare();
});
for (const kind of ["cell", "mistakes"]) {
  $(`${kind}-more`).addEventListener("click", (event) => showMore(kind, event.currentTarget));
}
$("confusion").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action=cell]");
  if (button) showCell(Number(button.dataset.true), Number(button.dataset.predicted));
});

init();

// ---------- live updates (static/js/feed.js): versions trained, made current or deleted elsewhere ----------
// (An import may stand anywhere at a module's top level: this block stays apart from the rest of the file.)
import { follow as followChanges } from "./feed.js";

const liveModels = followChanges({
  project: project.id,
  onChange: async (changes) => {
    if (!changes.some((c) => c.topic === "models" || c.topic === "all")) return;
    try {
      await loadList();
    } catch (err) {
      if (err.gone?.kind === "project") liveModels.stop();
      showError(err, "Could not load the model versions");
      return;
    }
    const listed = new Set(state.models.map((m) => m.id));
    state.compare = state.compare.filter((id) => listed.has(id));
    for (const id of cache.keys()) if (!listed.has(id)) cache.delete(id);
    const selected = state.selected;
    if (selected && !listed.has(selected.id)) await forget(selected.id); // renders, and shows another one
    else {
      renderVersions();
      if (selected) renderTitle(selected);
      else if (state.models.length) await select((state.models.find((m) => m.is_current) || state.models[0]).id);
    }
  },
});
