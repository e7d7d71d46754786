// The "Try it" panel: classify one photo with the current model and show a confidence bar per class,
// or "None of these" when the photo is unlike the training images; the threshold for that is adjustable.
import { api } from "./api.js";
import { renderBars, renderTop } from "./bars.js";
import { events, makeDropZone, showError, toast } from "./ui.js";

const SAVE_DELAY_MS = 350;
const fixed = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(2));

export function initPredict(project) {
  const panel = document.getElementById("predict-panel");
  const $ = (role) => panel.querySelector(`[data-role=${role}]`);
  const input = $("file-input");
  const choose = panel.querySelector("[data-action=choose]");
  const preview = $("preview");
  const liveLink = $("live-link");
  let hasModel = Boolean(project.model);
  let current = null; // the photo on show, classified again when a new model arrives
  let previewUrl = null;
  let seq = 0;
  let model = null;
  let last = null; // the answer on show
  const threshold = initThreshold();

  function setModel(m) {
    model = m;
    hasModel = Boolean(m);
    threshold.show(m);
    panel.dataset.state = hasModel ? "ready" : "no-model";
    $("no-model").hidden = hasModel;
    choose.disabled = !hasModel;
    if (hasModel) liveLink.removeAttribute("aria-disabled");
    else liveLink.setAttribute("aria-disabled", "true");
    if (hasModel && current) classify(current);
  }

  async function classify(file) {
    current = file;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.hidden = false;
    const mine = ++seq;
    panel.dataset.busy = "true";
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const result = await api.postForm(`/api/projects/${project.id}/predict`, form);
      if (mine === seq) render(result);
    } catch (err) {
      if (mine === seq) clear();
      showError(err, "Could not classify the photo");
    } finally {
      if (mine === seq) delete panel.dataset.busy;
    }
  }

  function clear() {
    last = null;
    $("top").hidden = true;
    $("similarity").hidden = true;
    $("bars").replaceChildren();
  }

  // `cut` previews a threshold the slider is on before the server has it.
  function render(result, cut = result.unknown_threshold) {
    last = result;
    const unknown = cut === undefined || cut === null || result.similarity === null
      ? result.unknown : result.similarity < cut;
    renderTop($("top"), result, unknown);
    renderBars($("bars"), result, unknown);
    const line = $("similarity");
    line.hidden = result.similarity === null || result.similarity === undefined;
    line.textContent = `Similarity to the training images ${fixed(result.similarity)}, `
      + `“none of these” below ${fixed(cut)}`;
  }

  // The "none of these" slider: shows the model's threshold, saves a moved one (debounced) and asks again.
  function initThreshold() {
    const box = $("threshold");
    const slider = $("threshold-slider");
    const output = $("threshold-value");
    const status = $("threshold-status");
    let timer = null;

    function set(value) {
      slider.value = String(value);
      output.textContent = fixed(value);
      slider.setAttribute("aria-valuetext", fixed(value));
    }

    function show(m) {
      clearTimeout(timer);
      timer = null;
      const value = m ? m.unknown_threshold : null;
      box.hidden = value === null || value === undefined;
      if (box.hidden) return;
      set(value);
      $("calibrated").textContent = `(${fixed(m.unknown_threshold_calibrated)})`;
      status.textContent = "";
    }

    async function save(body) {
      const id = model && model.id;
      if (!id) return;
      status.textContent = "Saving…";
      try {
        const updated = await api.patch(`/api/models/${id}`, body);
        if (!model || model.id !== id) return;
        model.unknown_threshold = updated.unknown_threshold;
        if (timer !== null) return; // moved again meanwhile: the next save follows
        set(updated.unknown_threshold);
        status.textContent = "Saved.";
        if (current) classify(current);
      } catch (err) {
        status.textContent = "";
        showError(err, "Could not save the threshold");
      }
    }

    slider.addEventListener("input", () => {
      const value = Number(slider.value);
      output.textContent = fixed(value);
      slider.setAttribute("aria-valuetext", fixed(value));
      if (last) render(last, value);
      status.textContent = "";
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        save({ unknown_threshold: value });
      }, SAVE_DELAY_MS);
    });
    panel.querySelector("[data-action=reset-threshold]").addEventListener("click", () => {
      clearTimeout(timer);
      timer = null;
      save({ reset_unknown_threshold: true });
    });
    return { show };
  }

  function take(files) {
    const images = files.filter((f) => f.size > 0);
    if (!images.length) return;
    if (images.length > 1) toast("Trying the first photo only.", "info");
    classify(images[0]);
  }

  choose.addEventListener("click", () => input.click());
  liveLink.addEventListener("click", (event) => {
    if (hasModel) return;
    event.preventDefault();
    toast("Train a model first, then test it live.", "info");
  });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    take(files);
  });
  makeDropZone(panel, take, { enabled: () => hasModel });
  events.on("model-changed", setModel);
  setModel(project.model);
}
