// Class cards: add, rename, delete a class; its gallery; upload (button or drag and drop) and delete images.
import { api, ApiError, uploadForm } from "./api.js";
import { cloneTemplate, confirmDialog, events, makeDropZone, plural, setProgress, showError, toast, whileBusy }
  from "./ui.js";

const GALLERY_PREVIEW = 48; // thumbnails shown before "Show all"
const BATCH_FILES = 20; // files per request: progress moves, and no request gets huge
const BATCH_BYTES = 16 * 1024 * 1024;
let canEdit = true; // a viewer sees the photos, and may not add any (the page hides the buttons too)

class ClassCard {
  constructor(el, cls, onChange) {
    this.el = el;
    this.id = cls.id;
    this.name = cls.name;
    this.count = cls.sample_count;
    this.samples = null; // newest first, once loaded
    this.showAll = false;
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
  }

  onClick(event) {
    const target = event.target.closest("[data-action]");
    if (!target || !this.el.contains(target)) return;
    const action = target.dataset.action;
    if (action === "upload") this.$("file-input").click();
    else if (action === "webcam") events.emit("open-recorder", this);
    else if (action === "rename-class") this.toggleRename(true);
    else if (action === "cancel-rename") this.toggleRename(false);
    else if (action === "delete-class") this.remove(target);
    else if (action === "delete-sample") this.deleteSample(target);
    else if (action === "dismiss-rejected") this.$("rejected").hidden = true;
    else if (action === "show-all") {
      this.showAll = !this.showAll;
      this.renderGallery();
    }
  }

  async load() {
    try {
      const samples = await api.get(`/api/classes/${this.id}/samples`);
      this.samples = samples.reverse();
      this.count = this.samples.length;
      this.renderGallery();
    } catch (err) {
      showError(err, `Could not load the images of “${this.name}”`);
    }
  }

  renderGallery() {
    const gallery = this.$("gallery");
    const samples = this.samples || [];
    const shown = this.showAll ? samples : samples.slice(0, GALLERY_PREVIEW);
    gallery.replaceChildren(...shown.map((sample) => this.thumb(sample)));
    this.$("empty").hidden = samples.length > 0;
    const more = this.el.querySelector("[data-action=show-all]");
    more.hidden = samples.length <= GALLERY_PREVIEW;
    more.textContent = this.showAll ? "Show fewer" : `Show all ${samples.length} images`;
    this.renderCount();
  }

  thumb(sample) {
    const li = cloneTemplate("thumb-template");
    li.dataset.sampleId = sample.id;
    const img = li.querySelector("img");
    img.src = sample.thumbnail_url;
    img.alt = sample.filename;
    img.title = `${sample.filename} (${sample.width}×${sample.height})`;
    li.querySelector("button").setAttribute("aria-label", `Delete image ${sample.filename}`);
    return li;
  }

  renderCount() {
    if (this.samples) this.count = this.samples.length;
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
        await api.del(`/api/classes/${this.id}`);
        this.el.remove();
        this.onRemoved?.();
        toast(`Deleted class “${this.name}”.`, "success");
      } catch (err) {
        showError(err, "Could not delete the class");
      }
    });
  }

  async deleteSample(button) {
    const li = button.closest("[data-sample-id]");
    const id = Number(li.dataset.sampleId);
    button.disabled = true;
    try {
      await api.del(`/api/samples/${id}`);
    } catch (err) {
      button.disabled = false;
      showError(err, "Could not delete the image");
      return;
    }
    const next = li.nextElementSibling || li.previousElementSibling;
    const nextId = next && next.dataset.sampleId;
    this.samples = this.samples.filter((s) => s.id !== id);
    this.renderGallery();
    events.emit("samples-changed");
    // Keep keyboard users in the gallery instead of dropping focus to the page.
    const focusTarget = nextId && this.el.querySelector(`[data-sample-id="${nextId}"] button`);
    (focusTarget || this.el.querySelector("[data-action=upload]")).focus();
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
          this.samples = [...result.added.reverse(), ...(this.samples || [])];
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

  // Samples stored elsewhere (the webcam recorder), newest last as the server returns them.
  addSamples(added) {
    if (!added.length) return;
    this.samples = [...added.slice().reverse(), ...(this.samples || [])];
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

export function initClasses(project) {
  canEdit = project.role !== "viewer";
  const list = document.getElementById("class-list");
  const cards = [];
  const changed = () => events.emit("classes-changed", cards.map((c) => ({ id: c.id, name: c.name, count: c.count })));

  const adopt = (el, cls) => {
    const card = new ClassCard(el, cls, changed);
    card.onRemoved = () => {
      cards.splice(cards.indexOf(card), 1);
      changed();
      events.emit("samples-changed");
    };
    cards.push(card);
    return card;
  };

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
        const el = cloneTemplate("class-card-template");
        el.dataset.classId = cls.id;
        list.append(el);
        const card = adopt(el, cls);
        card.setName(cls.name);
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
  const { list, cards, adopt, changed } = live;
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
      const el = cloneTemplate("class-card-template");
      el.dataset.classId = cls.id;
      list.append(el); // the server lists classes by id: a new one is the last
      const added = adopt(el, cls);
      added.setName(cls.name);
      added.load();
      photosChanged ||= cls.sample_count > 0;
      continue;
    }
    if (card.name !== cls.name && card.$("rename-form").hidden) card.setName(cls.name); // not while renaming
    card.setColor?.(cls.color);
    card.setEnabled?.(cls.enabled);
    if (cls.sample_count !== card.count) {
      card.load();
      photosChanged = true;
    }
  }
  changed();
  if (photosChanged) events.emit("samples-changed");
}
