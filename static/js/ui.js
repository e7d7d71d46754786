// Small UI helpers shared by every page: messages, confirmation, templates, progress bars.

// How long a message stays (ms); hovering or focusing it pauses the count. Errors stay longer: they say
// what to do. Older messages than the newest MAX_TOASTS fold into a "+N more" line, so the stack keeps to
// its corner however many come at once (a failing upload of many photos).
const TOAST_MS = { success: 5000, info: 5000, error: 8000 };
const MAX_TOASTS = 3;
const RESUME_MIN_MS = 2000; // after a pause, time left to read again
// The stack moves out of the way of these when it would cover one (the Train button at the bottom of a phone).
const TOAST_AVOID = "[data-toast-avoid], #train-panel [data-role=train]";

// Show a message: toast(text, kind = "info" | "success" | "error", {action: {label, onClick}, timeout}).
// An action is a button in the message ("Undo"): a click runs onClick and closes it. timeout: ms, 0 = stays
// until closed. Returns the message's element; dismissToast(node) closes it early.
export function toast(message, kind = "info", { action = null, timeout = TOAST_MS[kind] ?? TOAST_MS.info } = {}) {
  const box = document.querySelector(".toasts");
  const node = cloneTemplate("toast-template");
  node.classList.add(`toast-${kind}`);
  node.dataset.kind = kind;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  node.querySelector("[data-role=text]").textContent = message;
  node.querySelector("[data-action=close]").addEventListener("click", () => dismissToast(node));
  node.addEventListener("keydown", (event) => {
    if (event.key === "Escape") dismissToast(node);
  });
  if (action) {
    const button = node.querySelector("[data-action=toast-action]");
    button.textContent = action.label;
    button.hidden = false;
    button.addEventListener("click", () => {
      dismissToast(node);
      action.onClick();
    });
  }
  expireLater(node, timeout);
  box.querySelector("[data-role=toast-list]").append(node);
  layoutToasts(box);
  return node;
}

export function dismissToast(node) {
  const box = node.closest(".toasts");
  clearTimeout(node._toastTimer);
  if (node.contains(document.activeElement)) document.querySelector("#main")?.focus({ preventScroll: true });
  node.remove();
  if (box) layoutToasts(box);
}

// The countdown stops while the pointer is over the message or focus is in it (reading, reaching Undo).
function expireLater(node, ms) {
  if (!ms) return;
  let left = ms;
  let started = 0;
  let held = 0; // pointer and focus: either one holds it
  const run = () => {
    started = performance.now();
    node._toastTimer = setTimeout(() => dismissToast(node), left);
  };
  const hold = () => {
    if (held++ === 0) {
      clearTimeout(node._toastTimer);
      left = Math.max(RESUME_MIN_MS, left - (performance.now() - started));
      node.dataset.paused = "true";
    }
  };
  const release = () => {
    if (held > 0 && --held === 0) {
      delete node.dataset.paused;
      run();
    }
  };
  node.addEventListener("pointerenter", hold);
  node.addEventListener("pointerleave", release);
  node.addEventListener("focusin", hold);
  node.addEventListener("focusout", (event) => {
    if (!node.contains(event.relatedTarget)) release();
  });
  run();
}

// The newest MAX_TOASTS show; the rest fold into "+N more" until those are gone. Then the corner is chosen.
function layoutToasts(box) {
  const nodes = [...box.querySelectorAll("[data-testid=toast]")];
  const folded = Math.max(0, nodes.length - MAX_TOASTS);
  nodes.forEach((node, i) => {
    node.hidden = i < folded;
  });
  const more = box.querySelector("[data-role=toast-more]");
  more.hidden = !folded;
  more.textContent = folded ? `+${folded} earlier ${folded === 1 ? "message" : "messages"}` : "";
  placeToasts(box);
}

const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

// In its corner, unless it would cover a control that must stay reachable: then the other side (top on a
// phone, where the stack is full width; left on a wide screen).
function placeToasts(box) {
  box.classList.remove("toasts-moved");
  if (!box.querySelector("[data-testid=toast]")) return;
  const avoid = [...document.querySelectorAll(TOAST_AVOID)].map(shownRect).filter(Boolean);
  const covers = () => avoid.some((r) => overlaps(r, box.getBoundingClientRect()));
  if (!covers()) return;
  box.classList.add("toasts-moved");
  if (covers()) box.classList.remove("toasts-moved"); // both places cover it: stay where people look
}

// The part of an element on screen: clipped by the boxes it scrolls in (the side column), null if none.
function shownRect(el) {
  const r = el.getBoundingClientRect();
  let { left, right, top, bottom } = r;
  for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
    if (getComputedStyle(box).overflowY === "visible") continue;
    const b = box.getBoundingClientRect();
    left = Math.max(left, b.left);
    right = Math.min(right, b.right);
    top = Math.max(top, b.top);
    bottom = Math.min(bottom, b.bottom);
  }
  return right > left && bottom > top ? { left, right, top, bottom } : null;
}

let placing = 0;
function replaceToastsSoon() {
  if (placing) return;
  placing = requestAnimationFrame(() => {
    placing = 0;
    const box = document.querySelector(".toasts");
    if (box) placeToasts(box);
  });
}
// Capture: a scroll inside the side column does not bubble, and moves Train just the same.
document.addEventListener("scroll", replaceToastsSoon, { capture: true, passive: true });
window.addEventListener("resize", replaceToastsSoon);

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
