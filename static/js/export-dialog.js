// The "Export model" dialog: one tab per download format (the server renders them from its own list, so a new
// format needs nothing here), then the REST API. Opening it asks the server to build and check every format
// (POST /api/models/{id}/exports); each tab then shows "checking…" until its report arrives by polling
// GET /api/models/{id}, then the file's size and how it agreed with the server, or why it is not offered.
import { request } from "./api.js";
import { downloadFile } from "./download.js";
import { events, toast } from "./ui.js";

const POLL_MS = 1500;
const SETTLED = new Set(["built", "failed"]);

export function sizeText(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

// "Agrees with the server on 153 of 153 held-out photos, largest difference 0.0004."
export function agreementText(report) {
  if (report.agreement === null) return "Not checked: there were no photos to check it on.";
  const agreed = Math.round(report.agreement * report.photos);
  const diff = report.max_prob_diff;
  const largest = diff === null ? "" : `, largest difference ${diff < 1e-4 ? "under 0.0001" : diff.toFixed(4)}`;
  const only = report.offered ? "" : "only ";
  return `Agrees with the server on ${only}${agreed} of ${report.photos} ${report.checked_on}${largest}.`;
}

// Copy a snippet. The Clipboard API needs a secure page (https or localhost); elsewhere the old way still works,
// from a textarea inside the dialog (outside it, a modal dialog makes the page inert).
async function copyCode(pre, host) {
  const text = pre.textContent;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = Object.assign(document.createElement("textarea"), { value: text, readOnly: true });
    area.className = "sr-only";
    host.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

function spinner() {
  return Object.assign(document.createElement("span"), { className: "spinner", ariaHidden: "true" });
}

export function initExportDialog(project) {
  const dialog = document.getElementById("export-dialog");
  const opener = document.querySelector("[data-action=open-export]");
  const tabs = [...dialog.querySelectorAll("[role=tab]")];
  const panels = [...dialog.querySelectorAll("[role=tabpanel]")];
  const error = dialog.querySelector("[data-role=error]");
  let model = project.model;
  let timer = null;
  let generation = 0; // a poll that answers after the model changed or the dialog closed is dropped

  function select(tab, focus = false) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
    }
    for (const panel of panels) panel.hidden = panel.id !== tab.getAttribute("aria-controls");
    if (focus) tab.focus();
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  function fill(exports) {
    const names = Object.fromEntries(exports.map((e) => [e.format, e.file_name]));
    for (const span of dialog.querySelectorAll("[data-fill]")) {
      const what = span.dataset.fill;
      if (what === "file_name" && names[span.dataset.format]) span.textContent = names[span.dataset.format];
      else if (what === "labels") span.textContent = JSON.stringify(model.labels);
      else if (what === "origin") span.textContent = window.location.origin;
    }
    dialog.querySelector("[data-role=model-line]").textContent = `v${model.version} · ${model.labels.join(", ")}`;
  }

  function render(report) {
    const panel = dialog.querySelector(`[role=tabpanel][data-format="${CSS.escape(report.format)}"]`);
    if (!panel) return; // a format this page was rendered without: the next page load has its tab
    const tab = dialog.querySelector(`[role=tab][data-format="${CSS.escape(report.format)}"]`);
    const built = report.status === "built";
    const refused = report.status === "failed" || (built && !report.offered);
    panel.dataset.status = report.status;
    panel.dataset.offered = String(built && report.offered);
    panel.querySelector("[data-role=size]").textContent = built ? sizeText(report.size_bytes) : "…";
    const parity = panel.querySelector("[data-role=parity]");
    if (built) parity.textContent = agreementText(report);
    else if (report.status === "failed") parity.textContent = "The build failed.";
    else parity.replaceChildren(spinner(), " checking…");
    const reason = panel.querySelector("[data-role=refused]");
    reason.hidden = !refused;
    reason.textContent = refused ? report.reason : "";
    panel.querySelector("[data-role=download-row]").hidden = refused;
    tab.dataset.status = refused ? "refused" : report.status;
    tab.querySelector("[data-role=tab-note]").textContent = refused ? "not offered"
      : built ? sizeText(report.size_bytes) : "checking…";
  }

  function show(exports) {
    fill(exports);
    for (const report of exports) render(report);
    events.emit("exports-changed", { modelId: model.id, exports });
    return exports.every((e) => SETTLED.has(e.status));
  }

  async function poll(mine) {
    timer = null;
    let exports;
    try {
      exports = (await request("GET", `/api/models/${model.id}`)).exports;
      showError("");
    } catch (err) {
      if (mine !== generation) return;
      showError(`Could not ask how the builds are going: ${err.message}`);
      timer = setTimeout(() => poll(mine), POLL_MS * 2);
      return;
    }
    if (mine !== generation) return;
    if (!show(exports)) timer = setTimeout(() => poll(mine), POLL_MS);
  }

  async function start() {
    clearTimeout(timer);
    const mine = ++generation;
    if (!model) return;
    try {
      const exports = await request("POST", `/api/models/${model.id}/exports`);
      if (mine !== generation) return;
      showError("");
      if (!show(exports)) timer = setTimeout(() => poll(mine), POLL_MS);
    } catch (err) {
      if (mine === generation) showError(`Could not have the files built: ${err.message}`);
    }
  }

  dialog.querySelector("[role=tablist]").addEventListener("keydown", (event) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0,
      End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    select(tabs[(next + tabs.length) % tabs.length], true);
  });
  for (const tab of tabs) tab.addEventListener("click", () => select(tab));

  dialog.addEventListener("click", async (event) => {
    const copy = event.target.closest("[data-action=copy]");
    if (copy) {
      const label = copy.querySelector("[data-role=label]");
      const ok = await copyCode(copy.closest(".snippet").querySelector("pre"), copy.parentElement);
      label.textContent = ok ? "Copied" : "Select and copy it yourself";
      copy.dataset.copied = String(ok);
      setTimeout(() => {
        label.textContent = "Copy";
        delete copy.dataset.copied;
      }, 2500);
      return;
    }
    const link = event.target.closest("[data-role=download]");
    if (link && !(event.ctrlKey || event.metaKey || event.shiftKey)) {
      event.preventDefault();
      if (link.dataset.busy) return;
      showError("");
      try {
        await downloadFile(link);
      } catch (err) {
        showError(`Download failed: ${err.message}`);
      }
      if (dialog.open) poll(generation); // a refused file now has its report
      return;
    }
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  dialog.querySelector("[data-action=close]").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    clearTimeout(timer);
    generation += 1;
    opener.focus(); // back where the user was
  });

  opener.addEventListener("click", () => {
    if (opener.getAttribute("aria-disabled") === "true") {
      toast("Train a model first: there is nothing to export yet.", "info");
      return;
    }
    dialog.showModal();
    dialog.querySelector("[role=tab][aria-selected=true]").focus();
    start();
  });
  events.on("model-changed", (changed) => {
    model = changed;
    if (dialog.open && model) start();
    else if (dialog.open) dialog.close();
  });
}
