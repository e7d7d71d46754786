// The "Try it" panel: classify one photo with the current model and show a confidence bar per class.
import { api } from "./api.js";
import { events, makeDropZone, percent, showError, toast } from "./ui.js";

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

  function setModel(model) {
    hasModel = Boolean(model);
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
    $("top").hidden = true;
    $("bars").replaceChildren();
  }

  function render(result) {
    const [best] = result.predictions;
    const top = $("top");
    top.replaceChildren("Looks like ", Object.assign(document.createElement("strong"), {
      textContent: best.label,
    }), ` (${percent(best.score)})`);
    top.dataset.label = best.label;
    top.hidden = false;
    $("bars").replaceChildren(...result.predictions.map((p, i) => bar(p, i === 0)));
  }

  function bar(prediction, isTop) {
    const li = document.createElement("li");
    li.className = `bar${isTop ? " bar-top" : ""}`;
    li.dataset.testid = "confidence-bar";
    li.dataset.label = prediction.label;
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = prediction.label;
    const track = document.createElement("div");
    track.className = "bar-track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-label", `Confidence for ${prediction.label}`);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", (prediction.score * 100).toFixed(1));
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = percent(prediction.score);
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = percent(prediction.score);
    li.append(name, track, value);
    return li;
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
