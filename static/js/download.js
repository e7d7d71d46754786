// The Download panel. The links work on their own; with JS the button shows that the file is being built
// (tracing takes a few seconds) and an error arrives as a message instead of a JSON file.
import { ApiError, dispositionFilename, errorText } from "./api.js";
import { events, showError, toast } from "./ui.js";

// Only for a response without a file name; the server's Content-Disposition normally names the file.
const EXTENSIONS = { onnx: "onnx", pt2: "pt2", torchscript: "pt" };

export function initDownloads(project) {
  const panel = document.getElementById("download-panel");
  const links = [...panel.querySelectorAll("[data-role=download]")];

  function setModel(model) {
    panel.querySelector("[data-role=no-model]").hidden = Boolean(model);
    for (const link of links) {
      if (model) link.removeAttribute("aria-disabled");
      else link.setAttribute("aria-disabled", "true");
    }
  }

  async function fetchFile(link) {
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
      const name = dispositionFilename(response.headers.get("Content-Disposition")) ||
        `model.${EXTENSIONS[link.dataset.format] || link.dataset.format}`;
      const url = URL.createObjectURL(blob);
      const a = Object.assign(document.createElement("a"), { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } finally {
      text.textContent = label;
      link.removeAttribute("aria-busy");
      delete link.dataset.busy;
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
      await fetchFile(link);
    } catch (err) {
      showError(err, "Download failed");
    }
  });

  events.on("model-changed", setModel);
  setModel(project.model);
}
