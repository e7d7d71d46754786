// Small UI helpers shared by every page: messages, confirmation, templates, progress bars.

const TOAST_MS = { success: 4000, info: 5000 };
const MAX_TOASTS = 5;

// Show a message. Errors stay until the user closes them; others fade after a few seconds.
export function toast(message, kind = "info") {
  const box = document.querySelector(".toasts");
  const node = cloneTemplate("toast-template");
  node.classList.add(`toast-${kind}`);
  node.dataset.kind = kind;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  node.querySelector("[data-role=text]").textContent = message;
  const close = () => node.remove();
  node.querySelector("[data-action=close]").addEventListener("click", close);
  box.append(node);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  if (TOAST_MS[kind]) setTimeout(close, TOAST_MS[kind]);
  return node;
}

export function showError(err, prefix = "") {
  if (err && err.name === "AbortError") return;
  const text = (err && err.message) || String(err);
  console.error(err);
  toast(prefix ? `${prefix}: ${text}` : capitalize(text), "error");
}

// Resolves true when the user confirms. Uses the page's <dialog>, so it is keyboard- and screen-reader-friendly.
export function confirmDialog({ title, text = "", ok = "Delete" }) {
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector("[data-role=title]").textContent = title;
  dialog.querySelector("[data-role=text]").textContent = text;
  dialog.querySelector("[data-role=ok]").textContent = ok;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

export function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function cloneTemplate(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function percent(fraction, digits = 1) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function setProgress(bar, fraction) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  bar.setAttribute("aria-valuenow", String(pct));
  bar.querySelector(".progress-bar").style.width = `${pct}%`;
}

// Disable a button while a promise runs, so a double click sends one request.
export async function whileBusy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// Files (recursing into dropped folders where the browser allows) from a drop event.
export async function droppedFiles(dataTransfer) {
  const items = [...(dataTransfer.items || [])].filter((item) => item.kind === "file");
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (!entries.length || entries.some((entry) => !entry)) return [...dataTransfer.files];
  const files = [];
  for (const entry of entries) await collectEntry(entry, files);
  return files;
}

async function collectEntry(entry, files) {
  if (entry.isFile) {
    files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await collectEntry(child, files);
    }
  }
}

// Dropping a file outside a drop zone would make the browser navigate away from the page.
export function guardWindowDrops() {
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
    });
  }
}

// Highlight `zone` while files are dragged over it; call onFiles with the dropped files.
export function makeDropZone(zone, onFiles, { enabled = () => true } = {}) {
  let depth = 0;
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  zone.addEventListener("dragenter", (event) => {
    if (!hasFiles(event) || !enabled()) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add("is-dragover");
  });
  zone.addEventListener("dragover", (event) => {
    if (!hasFiles(event) || !enabled()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("is-dragover");
  });
  zone.addEventListener("drop", async (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    depth = 0;
    zone.classList.remove("is-dragover");
    if (!enabled()) return;
    try {
      onFiles(await droppedFiles(event.dataTransfer));
    } catch (err) {
      showError(err, "Could not read the dropped files");
    }
  });
}

// Tiny pub/sub so page modules stay independent (classes → training → try-it → download).
const bus = new EventTarget();
export const events = {
  emit: (name, detail) => bus.dispatchEvent(new CustomEvent(name, { detail })),
  on: (name, fn) => bus.addEventListener(name, (event) => fn(event.detail)),
};
