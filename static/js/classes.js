// Class cards: add, rename, delete (with undo) a class, switch it in or out of training, download its photos;
// its gallery (one focus stop, arrow keys inside); upload (button or drag and drop) and delete images (with undo).
import { api, ApiError, nextLink, uploadForm } from "./api.js";
import {
  cloneTemplate, confirmDialog, dismissToast, events, makeDropZone, plural, setProgress, showError, toast, whileBusy,
} from "./ui.js";

// Thumbnails a card loads on open, and each "Show more" adds: a class of 2,000 photos costs one page, not 2,000.
const PAGE = 48;
const BATCH_FILES = 20; // files per request: progress moves, and no request gets huge
const BATCH_BYTES = 16 * 1024 * 1024;
let canEdit = true; // a viewer sees the photos, and may not add any (the page hides the buttons too)
const UNDO_MS = 10_000; // the toast's Undo (and Ctrl+Z) lasts this long; the server keeps a delete for minutes
const page = { list: null, cards: [], adopt: null }; // the page's cards, for the functions exported below

class ClassCard {
  constructor(el, cls, onChange) {
    this.el = el;
    this.id = cls.id;
    this.name = cls.name;
    this.count = cls.sample_count; // the server's count (as the project says, then kept up by our own changes)
    this.color = cls.color;
    this.enabled = cls.enabled !== false;
    this.samples = null; // the loaded photos, newest first: the first pages of the class
    this.next = null; // the path of the next page (the Link header's rel="next"), null once all are loaded
    this.before = null; // that page's cursor: every photo with a lower id is not loaded yet
    this.loadingMore = null;
    this.current = null; // the sample id whose thumbnail is the gallery's one tab stop
    this.selecting = false; // "Select": taps and Space choose photos, one Delete removes them (one undo)
    this.selected = new Set();
    this.onChange = onChange;
    this.queue = Promise.resolve();
    this.$ = (role) => el.querySelector(`[data-role=${role}]`);
    this.bind();
  }

  bind() {
    const input = this.$("file-input");
    this.el.addEventListener("click", (event) => this.onClick(event));
    input.addEventListener("change", () => {
      const files = [...input.files];
      input.value = "";
      if (files.length) this.upload(files);
    });
    const form = this.$("rename-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rename(form.elements.name.value);
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggleRename(false);
    });
    makeDropZone(this.el, (files) => this.upload(files), { enabled: () => canEdit });
    const gallery = this.$("gallery");
    gallery.addEventListener("keydown", (event) => this.onGalleryKey(event));
    gallery.addEventListener("focusin", (event) => {
      const li = event.target.closest("[data-sample-id]");
      if (li) this.setCurrent(li);
    });
    this.$("enabled").addEventListener("change", (event) => this.switchTraining(event.target));
    this.setId(this.id);
    this.setColor(this.color);
  }

  setId(id) {
    this.id = id;
    this.el.dataset.classId = id;
    this.$("download").href = `/api/classes/${id}/photos.zip`;
  }

  setColor(color) {
    this.color = color;
    if (color) this.el.style.setProperty("--class-color", color);
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    this.el.classList.toggle("is-off", !enabled);
    this.el.dataset.enabled = String(enabled);
    this.$("enabled").checked = enabled;
    this.$("off-note").hidden = enabled;
    this.onChange();
  }

  async switchTraining(input) {
    const enabled = input.checked;
    input.disabled = true;
    try {
      const cls = await api.patch(`/api/classes/${this.id}`, { enabled });
      this.setEnabled(cls.enabled);
      toast(cls.enabled ? `“${this.name}” is used in training again.`
        : `“${this.name}” is left out of training; its photos stay here.`, "success");
    } catch (err) {
      input.checked = !enabled;
      showError(err, "Could not change the class");
    } finally {
      input.disabled = false;
    }
  }

  // ---- "Select": choose several photos, delete them at once (one trash entry on the server, one undo) ----

  toggleSelecting(on) {
    this.selecting = on;
    this.selected.clear();
    this.el.classList.toggle("is-selecting", on);
    this.$("select-mode").setAttribute("aria-pressed", String(on));
    this.$("select-mode").lastChild.textContent = on ? " Done" : " Select";
    this.$("select-tools").hidden = !on;
    this.renderSelection();
  }

  toggleSelected(li) {
    const id = Number(li.dataset.sampleId);
    if (!this.selected.delete(id)) this.selected.add(id);
    this.setCurrent(li);
    this.renderSelection();
  }

  renderSelection() {
    const present = new Set((this.samples || []).map((s) => s.id));
    for (const id of [...this.selected]) if (!present.has(id)) this.selected.delete(id);
    for (const li of this.thumbs()) {
      const on = this.selected.has(Number(li.dataset.sampleId));
      li.classList.toggle("is-selected", on);
      li.setAttribute("aria-label", on ? `${li.dataset.label}, selected` : li.dataset.label);
    }
    this.$("select-count").textContent = `${this.selected.size} selected`;
    this.$("select-delete").disabled = this.selected.size === 0;
  }

  async deleteSelected(button) {
    const ids = [...this.selected];
    if (!ids.length) return;
    await whileBusy(button, async () => {
      let undo;
      try {
        undo = await deleteForUndo(`/api/samples?${ids.map((id) => `id=${id}`).join("&")}`);
      } catch (err) {
        showError(err, "Could not delete the images");
        return;
      }
      const gone = new Set(ids);
      this.samples = this.samples.filter((s) => !gone.has(s.id));
      this.count = Math.max(0, this.count - ids.length);
      this.toggleSelecting(false);
      this.renderGallery();
      this.topUp();
      events.emit("samples-changed");
      offerUndo(`Deleted ${plural(ids.length, "image")} from “${this.name}”.`, undo);
    });
    if (!this.samples.length && !this.next) this.el.querySelector("[data-action=upload]").focus();
  }

  // ---- the gallery: one tab stop (roving tabindex); arrows, Home/End move; Delete/Backspace deletes ----

  thumbs() {
    return [...this.$("gallery").querySelectorAll("[data-sample-id]")];
  }

  setCurrent(li) {
    for (const other of this.thumbs()) other.tabIndex = other === li ? 0 : -1;
    this.current = li ? Number(li.dataset.sampleId) : null;
  }

  columns(items) {
    const top = items[0].offsetTop;
    const n = items.findIndex((li) => li.offsetTop !== top);
    return n === -1 ? items.length : n;
  }

  onGalleryKey(event) {
    const li = event.target.closest("[data-sample-id]");
    if (!li || event.target !== li || event.altKey || event.ctrlKey || event.metaKey) return;
    const items = this.thumbs();
    const i = items.indexOf(li);
    const cols = this.columns(items);
    const moves = {
      ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + cols, ArrowUp: i - cols, Home: 0, End: items.length - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      const next = items[Math.max(0, Math.min(items.length - 1, moves[event.key]))];
      this.setCurrent(next);
      next.focus();
    } else if ((event.key === " " || event.key === "Enter") && this.selecting) {
      event.preventDefault();
      this.toggleSelected(li);
    } else if (event.key === "Escape" && this.selecting) {
      this.toggleSelecting(false);
    } else if ((event.key === "Delete" || event.key === "Backspace") && canEdit && this.selecting
               && this.selected.size) {
      event.preventDefault();
      this.deleteSelected(this.$("select-delete"));
    } else if ((event.key === "Delete" || event.key === "Backspace") && canEdit) {
      event.preventDefault();
      this.deleteSample(li.querySelector("[data-action=delete-sample]"));
    }
  }

  onClick(event) {
    const thumb = event.target.closest("[data-sample-id]");
    if (this.selecting && thumb && !event.target.closest("[data-action]")) {
      this.toggleSelected(thumb);
      return;
    }
    const target = event.target.closest("[data-action]");
    if (!target || !this.el.contains(target)) return;
    const action = target.dataset.action;
    if (action === "upload") this.$("file-input").click();
    else if (action === "webcam") events.emit("open-recorder", this);
    else if (action === "rename-class") this.toggleRename(true);
    else if (action === "cancel-rename") this.toggleRename(false);
    else if (action === "delete-class") this.remove(target);
    else if (action === "delete-sample") this.deleteSample(target);
    else if (action === "select-mode") this.toggleSelecting(!this.selecting);
    else if (action === "select-delete") this.deleteSelected(target);
    else if (action === "dismiss-rejected") this.$("rejected").hidden = true;
    else if (action === "show-more") this.showMore(target);
  }

  // The newest photos again, as many as are loaded now (at least a page): after a change made elsewhere.
  async load() {
    const limit = Math.min(500, Math.max(PAGE, this.samples?.length || 0));
    try {
      const { body, headers } = await api.get(`/api/classes/${this.id}/samples?limit=${limit}`, { withHeaders: true });
      this.samples = body;
      this.setNext(nextLink(headers.get("Link")));
      this.renderGallery();
    } catch (err) {
      showError(err, `Could not load the images of “${this.name}”`);
    }
  }

  setNext(path) {
    this.next = path;
    this.before = path ? Number(new URL(path, window.location.href).searchParams.get("before")) : null;
  }

  // The next page, once (a second press while it is on its way waits for the same one).
  loadMore() {
    if (!this.next) return Promise.resolve([]);
    this.loadingMore ||= (async () => {
      const { body, headers } = await api.get(this.next, { withHeaders: true });
      const have = new Set((this.samples || []).map((s) => s.id));
      const added = body.filter((s) => !have.has(s.id));
      this.samples = [...(this.samples || []), ...added];
      this.setNext(nextLink(headers.get("Link")));
      this.renderGallery();
      return added;
    })().finally(() => {
      this.loadingMore = null;
    });
    return this.loadingMore;
  }

  async showMore(button) {
    // Not disabled meanwhile: a disabled button drops the keyboard focus to the page (loadMore runs once anyway).
    button.setAttribute("aria-busy", "true");
    let added = [];
    try {
      added = await this.loadMore();
    } catch (err) {
      showError(err, `Could not load more images of “${this.name}”`);
    } finally {
      button.removeAttribute("aria-busy");
    }
    // The button stays where it was, under the photos it brought; once all are loaded it goes, and focus
    // goes to the first photo it brought rather than to the top of the page.
    if (button.hidden && added.length) this.thumbs().find((li) => Number(li.dataset.sampleId) === added[0].id)?.focus();
  }

  // After deletes: a page's worth shown again while more are on the server.
  topUp() {
    if (this.next && (this.samples || []).length < PAGE) {
      this.loadMore().catch((err) => showError(err, `Could not load more images of “${this.name}”`));
    }
  }

  renderGallery() {
    const gallery = this.$("gallery");
    const samples = this.samples || [];
    const hadFocus = gallery.contains(document.activeElement);
    gallery.replaceChildren(...samples.map((sample, i) => this.thumb(sample, i)));
    const items = this.thumbs();
    const current = items.find((li) => Number(li.dataset.sampleId) === this.current) || items[0] || null;
    this.setCurrent(current);
    if (hadFocus && current) current.focus();
    const any = samples.length > 0 || this.count > 0;
    this.$("empty").hidden = any;
    this.$("download").hidden = !any;
    this.$("select-bar").hidden = !any && !this.selecting;
    this.renderSelection();
    const more = this.el.querySelector("[data-action=show-more]");
    more.hidden = !this.next;
    more.textContent = `Show more (${samples.length} of ${this.count} shown)`;
    this.renderCount();
  }

  thumb(sample, i) {
    const li = cloneTemplate("thumb-template");
    li.dataset.sampleId = sample.id;
    li.dataset.label = `${sample.filename}, photo ${i + 1} of ${Math.max(this.count, i + 1)}`;
    li.setAttribute("aria-label", li.dataset.label);
    const img = li.querySelector("img");
    img.src = sample.thumbnail_url;
    img.alt = "";
    img.title = `${sample.filename} (${sample.width}×${sample.height})`;
    li.querySelector("button").setAttribute("aria-label", `Delete image ${sample.filename}`);
    return li;
  }

  renderCount() {
    this.$("count").textContent = plural(this.count, "image");
    this.onChange();
  }

  toggleRename(open) {
    const form = this.$("rename-form");
    form.hidden = !open;
    this.$("title").hidden = open;
    this.$("actions").hidden = open;
    if (open) {
      form.elements.name.value = this.name;
      form.elements.name.select();
      form.elements.name.focus();
    } else {
      this.el.querySelector("[data-action=rename-class]").focus();
    }
  }

  async rename(value) {
    const name = value.trim();
    if (!name) {
      toast("A class needs a name.", "error");
      return;
    }
    if (name === this.name) {
      this.toggleRename(false);
      return;
    }
    try {
      const cls = await api.patch(`/api/classes/${this.id}`, { name });
      this.setName(cls.name);
      this.toggleRename(false);
    } catch (err) {
      showError(err, "Could not rename the class");
    }
  }

  setName(name) {
    this.name = name;
    this.$("name").textContent = name;
    this.$("overlay-name").textContent = name;
    this.el.setAttribute("aria-label", `Class ${name}`);
    this.$("gallery").setAttribute("aria-label", `Images of ${name}`);
    this.$("file-input").setAttribute("aria-label", `Upload images to ${name}`);
    this.el.querySelector("[data-action=rename-class]").setAttribute("aria-label", `Rename class ${name}`);
    this.el.querySelector("[data-action=delete-class]").setAttribute("aria-label", `Delete class ${name}`);
    this.el.querySelector("[data-action=webcam]").setAttribute("aria-label", `Record ${name} with the webcam`);
    this.$("enabled").setAttribute("aria-label", `Use ${name} in training`);
    this.$("download").setAttribute("aria-label", `Download the photos of ${name}`);
    this.onChange();
  }

  async remove(button) {
    const ok = await confirmDialog({
      title: `Delete class “${this.name}”?`,
      text: this.count ? `Its ${plural(this.count, "image")} are deleted too.` : "It has no images.",
      ok: "Delete class",
    });
    if (!ok) return;
    await whileBusy(button, async () => {
      try {
        const undo = await deleteForUndo(`/api/classes/${this.id}`);
        // Focus goes to the next card (or the form to add one), not to the top of the page.
        const next = this.el.nextElementSibling?.querySelector("[data-action=rename-class]")
          || document.getElementById("new-class-name");
        this.drop();
        next?.focus();
        offerUndo(`Deleted class “${this.name}”.`, undo);
      } catch (err) {
        showError(err, "Could not delete the class");
      }
    });
  }

  drop() {
    this.el.remove();
    this.onRemoved?.();
  }

  // Photos an undo brought back, where they were (the gallery is newest first). One older than the pages loaded
  // comes with its page; one the change feed has put back already is not counted twice.
  restoreSamples(samples, { focus = false } = {}) {
    const have = new Set((this.samples || []).map((s) => s.id));
    this.count += samples.filter((s) => !have.has(s.id)).length;
    const shown = samples.filter((s) => !have.has(s.id) && (this.before === null || s.id >= this.before));
    this.samples = [...(this.samples || []), ...shown].sort((a, b) => b.id - a.id);
    this.current = Math.max(...samples.map((s) => s.id));
    this.renderGallery();
    events.emit("samples-changed");
    if (focus) this.thumbs().find((li) => Number(li.dataset.sampleId) === this.current)?.focus();
  }

  async deleteSample(button) {
    const li = button.closest("[data-sample-id]");
    if (li.dataset.deleting) return; // a second press of Delete while the first is on its way
    const id = Number(li.dataset.sampleId);
    li.dataset.deleting = "true";
    button.disabled = true;
    let undo;
    try {
      undo = await deleteForUndo(`/api/samples/${id}`);
    } catch (err) {
      delete li.dataset.deleting;
      button.disabled = false;
      showError(err, "Could not delete the image");
      return;
    }
    const hadFocus = li.contains(document.activeElement);
    const next = li.nextElementSibling || li.previousElementSibling;
    this.current = next ? Number(next.dataset.sampleId) : null;
    this.samples = this.samples.filter((s) => s.id !== id);
    this.count = Math.max(0, this.count - 1);
    this.renderGallery();
    this.topUp();
    events.emit("samples-changed");
    // Keep keyboard users in the gallery instead of dropping focus to the page.
    if (hadFocus || document.activeElement === document.body) {
      (this.thumbs().find((t) => Number(t.dataset.sampleId) === this.current)
        || this.el.querySelector("[data-action=upload]")).focus();
    }
    offerUndo(`Deleted an image from “${this.name}”.`, undo);
  }

  upload(files) {
    this.queue = this.queue.then(() => this.uploadNow(files));
    return this.queue;
  }

  async uploadNow(files) {
    const progress = this.$("progress");
    const bar = progress.querySelector(".progress");
    const text = this.$("progress-text");
    const totalBytes = files.reduce((sum, f) => sum + f.size, 0) || 1;
    const rejected = [];
    let added = 0;
    let sentBytes = 0;
    let sentFiles = 0;
    this.$("rejected").hidden = true;
    progress.hidden = false;
    setProgress(bar, 0);
    try {
      for (const batch of batches(files)) {
        const batchBytes = batch.reduce((sum, f) => sum + f.size, 0);
        const label = files.length === 1 ? "Uploading 1 file" : `Uploading ${files.length} files`;
        text.textContent = `${label}…`;
        const form = new FormData();
        for (const file of batch) form.append("files", file, file.name);
        try {
          const result = await uploadForm(`/api/classes/${this.id}/samples`, form, (fraction) => {
            setProgress(bar, (sentBytes + fraction * batchBytes) / totalBytes);
            text.textContent = fraction >= 1 ? "Processing images…" : `${label}…`;
          });
          added += result.added.length;
          rejected.push(...result.rejected);
          this.prepend(result.added);
          this.renderGallery();
        } catch (err) {
          if (err instanceof ApiError && err.body && Array.isArray(err.body.rejected)) {
            rejected.push(...err.body.rejected);
          } else if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
            rejected.push(...batch.map((f) => ({ filename: f.name, error: err.message })));
          } else {
            throw err; // the server is down or broken: further batches would fail the same way
          }
        }
        sentBytes += batchBytes;
        sentFiles += batch.length;
        setProgress(bar, sentBytes / totalBytes);
      }
    } catch (err) {
      showError(err, `Upload to “${this.name}” stopped after ${plural(sentFiles, "file")}`);
    } finally {
      progress.hidden = true;
    }
    this.showRejected(rejected);
    if (added) {
      events.emit("samples-changed");
      toast(`Added ${plural(added, "image")} to “${this.name}”.`, "success");
    }
  }

  // Photos just stored, newest last as the server returns them, on top of the gallery. One a reload (the change
  // feed's) brought already is neither shown nor counted twice.
  prepend(added) {
    const have = new Set((this.samples || []).map((s) => s.id));
    const fresh = added.filter((s) => !have.has(s.id)).reverse();
    this.samples = [...fresh, ...(this.samples || [])];
    this.count += fresh.length;
  }

  // Samples stored elsewhere (the webcam recorder).
  addSamples(added) {
    if (!added.length) return;
    this.prepend(added);
    this.renderGallery();
    events.emit("samples-changed");
  }

  showRejected(rejected) {
    const box = this.$("rejected");
    if (!rejected.length) {
      box.hidden = true;
      return;
    }
    this.$("rejected-title").textContent =
      rejected.length === 1 ? "1 file was not added:" : `${rejected.length} files were not added:`;
    this.$("rejected-list").replaceChildren(...rejected.map((r) => {
      const li = document.createElement("li");
      const name = document.createElement("b");
      name.textContent = r.filename;
      li.append(name, `: ${r.error}`);
      return li;
    }));
    box.hidden = false;
  }
}

function* batches(files) {
  let batch = [];
  let bytes = 0;
  for (const file of files) {
    if (batch.length && (batch.length >= BATCH_FILES || bytes + file.size > BATCH_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(file);
    bytes += file.size;
  }
  if (batch.length) yield batch;
}

// ---- undo: a delete answers with the path that restores it (X-Undo); the toast and Ctrl+Z use it ----

// DELETE `url`; resolves to its undo path (null from a server without undo). Through api.js, so a photo or class
// deleted meanwhile elsewhere is said in words and the page refreshes, as for every other action.
const deleteForUndo = (url) => api.del(url, { header: "X-Undo" });

// Deletes still undoable from the page, oldest first: the toast offers the latest, Ctrl+Z takes them newest first.
const undoable = [];

function offerUndo(message, path) {
  for (const older of undoable) dismissToast(older.node); // one toast at a time; Ctrl+Z still reaches the older
  if (!path) {
    toast(message, "success");
    return;
  }
  const entry = {
    forget() {
      clearTimeout(entry.timer);
      const i = undoable.indexOf(entry);
      if (i !== -1) undoable.splice(i, 1);
    },
    async run({ focus = false } = {}) {
      entry.forget();
      dismissToast(entry.node);
      await undoDelete(path, { focus });
    },
  };
  entry.node = toast(message, "undo", { action: { label: "Undo", onClick: () => entry.run() }, timeout: UNDO_MS });
  entry.node.dataset.testid = "undo-toast";
  const button = entry.node.querySelector("[data-action=toast-action]");
  button.dataset.testid = "undo-button";
  button.setAttribute("aria-keyshortcuts", "Control+Z Meta+Z");
  entry.node.querySelector("[data-action=close]").addEventListener("click", entry.forget);
  entry.timer = setTimeout(entry.forget, UNDO_MS);
  undoable.push(entry);
}

async function undoDelete(path, { focus }) {
  let restored;
  try {
    restored = await api.post(path);
  } catch (err) {
    showError(err, "Could not undo");
    return;
  }
  const restoredClasses = new Set();
  for (const cls of restored.classes) {
    // Its first page, as on opening the page: a class of thousands of photos comes back as one page.
    const card = addClassCard(cls);
    restoredClasses.add(cls.id);
    card.count = cls.sample_count;
    card.load();
    if (focus) card.el.querySelector("[data-action=delete-class]").focus();
  }
  const byClass = new Map();
  for (const sample of restored.samples) {
    if (!restoredClasses.has(sample.class_id)) byClass.set(sample.class_id, [...(byClass.get(sample.class_id) || []), sample]);
  }
  for (const [classId, samples] of byClass) {
    page.cards.find((c) => c.id === classId)?.restoreSamples(samples, { focus });
  }
  const what = restored.kind === "class" ? `class “${restored.classes[0].name}”`
    : plural(restored.samples.length, "image");
  toast(`Restored ${what}.`, "success");
}

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

function initUndoKey() {
  document.addEventListener("keydown", (event) => {
    const z = event.key === "z" || event.key === "Z";
    if (!z || !(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey) return;
    // In a text field, Ctrl+Z undoes typing; with a dialog open, the delete is not what the user looks at.
    if (!undoable.length || typing(event.target) || document.querySelector("dialog[open]")) return;
    event.preventDefault();
    undoable.at(-1).run({ focus: true });
  });
}

// ---- the page's cards: made here, and by whoever follows changes from elsewhere ----

export function classCards() {
  return page.cards;
}

// A card for a class not on the page yet, in id order (where a restored class was).
export function addClassCard(cls) {
  // The change feed may have brought it already (the undo's answer and the feed's news race).
  const existing = page.cards.find((c) => c.id === cls.id);
  if (existing) return existing;
  const el = cloneTemplate("class-card-template");
  el.dataset.classId = cls.id;
  const before = page.cards.find((c) => c.id > cls.id);
  page.list.insertBefore(el, before ? before.el : null);
  const card = page.adopt(el, cls);
  card.setName(cls.name);
  card.setEnabled(cls.enabled !== false);
  return card;
}

export function removeClassCard(id) {
  page.cards.find((c) => c.id === id)?.drop();
}

export function initClasses(project) {
  canEdit = project.role !== "viewer";
  const list = document.getElementById("class-list");
  const cards = [];
  const changed = () => events.emit("classes-changed", cards.map((c) => ({
    id: c.id, name: c.name, count: c.count, color: c.color, enabled: c.enabled,
  })));

  const adopt = (el, cls) => {
    const card = new ClassCard(el, cls, changed);
    card.onRemoved = () => {
      cards.splice(cards.indexOf(card), 1);
      changed();
      events.emit("samples-changed");
    };
    cards.splice(cards.filter((c) => c.id < card.id).length, 0, card); // in id order, as on the page
    return card;
  };
  Object.assign(page, { list, cards, adopt });
  if (canEdit) initUndoKey();

  live = { list, cards, adopt, changed }; // for syncClasses (live updates)
  const els = list.querySelectorAll("[data-class-id]");
  project.classes.forEach((cls, i) => adopt(els[i], cls).load());
  changed();

  const form = document.getElementById("add-class-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.elements.name;
    const name = input.value.trim();
    if (!name) {
      toast("A class needs a name.", "error");
      return;
    }
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        const cls = await api.post(`/api/projects/${project.id}/classes`, { name });
        const card = addClassCard(cls);
        card.samples = [];
        card.renderGallery();
        input.value = "";
        input.placeholder = "Class name";
      } catch (err) {
        showError(err, "Could not add the class");
      }
    });
    input.focus();
  });
}

// ---------- live updates (static/js/feed.js via project.js) ----------

let live = null; // initClasses's cards, set once it runs

// Bring the cards in line with the classes as the server has them now (GET /api/projects/{id}): a class added,
// renamed or deleted elsewhere, photos added or deleted there (that card's gallery is read again).
export function syncClasses(classes) {
  if (!live) return;
  const { cards, changed } = live;
  const fresh = new Map(classes.map((c) => [c.id, c]));
  let photosChanged = false; // the Train panel then says the model is out of date, as after a change here
  for (const card of cards.filter((c) => !fresh.has(c.id))) {
    card.el.remove();
    cards.splice(cards.indexOf(card), 1);
    photosChanged = true;
  }
  for (const cls of classes) {
    const card = cards.find((c) => c.id === cls.id);
    if (!card) {
      const added = addClassCard(cls); // in id order: a class put back by an undo goes back to its place
      added.load();
      photosChanged ||= cls.sample_count > 0;
      continue;
    }
    if (card.name !== cls.name && card.$("rename-form").hidden) card.setName(cls.name); // not while renaming
    card.setColor?.(cls.color);
    card.setEnabled?.(cls.enabled);
    if (cls.sample_count !== card.count) {
      card.count = cls.sample_count;
      card.load();
      photosChanged = true;
    }
  }
  changed();
  if (photosChanged) events.emit("samples-changed");
}
