// The Download panel. The links work on their own; with JS the button shows that the file is being built
// (tracing takes a few seconds) and an error arrives as a message instead of a JSON file. Next to each button:
// the file's size and how it agreed with the server on the held-out photos, once it has been built (by its
// first download, or by the Export dialog, which has them all built and says so with "exports-changed").
import { ApiError, dispositionFilename, errorText, request } from "./api.js";
import { events, showError, toast } from "./ui.js";

// "15.3 MB · agrees on 153/153 held-out photos", or why the file is not offered; "" until it is built.
export function parityText(report) {
  if (report.status === "failed" || (report.status === "built" && !report.offered)) return report.reason;
  if (report.status !== "built") return "";
  const size = `${(report.size_bytes / 1e6).toFixed(1)} MB`;
  if (report.agreement === null) return `${size} · not checked (no photos to check it on)`;
  const agreed = Math.round(report.agreement * report.photos);
  return `${size} · agrees on ${agreed}/${report.photos} ${report.checked_on}`;
}

// Fetch one download link's file and hand it to the browser; throws an ApiError in words.
export async function downloadFile(link) {
  const text = link.querySelector("[data-role=label]");
  const label = text.textContent;
  link.setAttribute("aria-busy", "true");
  link.dataset.busy = "true";
  text.textContent = "Preparing…";
  try {
    let response;
    try {
      response = await fetch(link.href);
    } catch {
      throw new ApiError("Cannot reach the snapclass server. Is it still running?");
    }
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch {
        // not JSON
      }
      throw new ApiError(errorText(response.status, body, response.statusText), response.status, body);
    }
    const blob = await response.blob();
    // The server's Content-Disposition names the file; a proxy that drops it leaves the format's name.
    const name = dispositionFilename(response.headers.get("Content-Disposition")) || `model-${link.dataset.format}`;
    const url = URL.createObjectURL(blob);
    const a = Object.assign(document.createElement("a"), { href: url, download: name, hidden: true });
    link.parentElement.append(a); // beside the link: inside an open modal dialog, the rest of the page is inert
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } finally {
    text.textContent = label;
    link.removeAttribute("aria-busy");
    delete link.dataset.busy;
  }
}

export function initDownloads(project) {
  const panel = document.getElementById("download-panel");
  const links = [...panel.querySelectorAll("[data-role=download]")];
  const openExport = panel.querySelector("[data-action=open-export]");
  let modelId = null;

  function showReports(exports) {
    const reports = Object.fromEntries(exports.map((e) => [e.format, e]));
    for (const span of panel.querySelectorAll("[data-role=parity]")) {
      const report = reports[span.dataset.format];
      span.textContent = report ? parityText(report) : "";
      span.classList.toggle("parity-refused", Boolean(report && report.offered === false));
    }
  }

  async function showParity() {
    const id = modelId;
    if (id === null) return;
    let model;
    try {
      model = await request("GET", `/api/models/${id}`);
    } catch {
      return; // the buttons work without it
    }
    if (id === modelId) showReports(model.exports || []); // unless a newer model arrived meanwhile
  }

  function setModel(model) {
    modelId = model ? model.id : null;
    for (const span of panel.querySelectorAll("[data-role=parity]")) span.textContent = "";
    showParity();
    panel.querySelector("[data-role=no-model]").hidden = Boolean(model);
    for (const link of [...links, openExport]) {
      if (model) link.removeAttribute("aria-disabled");
      else link.setAttribute("aria-disabled", "true");
    }
  }

  panel.addEventListener("click", async (event) => {
    const link = event.target.closest("[data-role=download]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (link.getAttribute("aria-disabled") === "true") {
      toast("Train a model first: there is nothing to download yet.", "info");
      return;
    }
    if (link.dataset.busy) return;
    try {
      await downloadFile(link);
    } catch (err) {
      showError(err, "Download failed");
    } finally {
      showParity(); // built (or refused) now: its size and agreement are known
    }
  });

  events.on("model-changed", setModel);
  events.on("exports-changed", ({ modelId: id, exports }) => {
    if (id === modelId) showReports(exports);
  });
  setModel(project.model);
}
