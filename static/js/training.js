// The Train panel: advanced settings, start a job, follow its progress, cancel it, show the new model.
import { api } from "./api.js";
import { capitalize, events, percent, plural, setProgress, showError, toast, whileBusy } from "./ui.js";

const POLL_MS = 400;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const MAX_POLL_FAILURES = 25; // about 10 s of a silent server before giving up

// The bounds of TrainRequest (app/schemas.py), so a slip is named before anything is sent.
const FIELDS = {
  epochs: { label: "Epochs", int: true, min: 1, max: 500 },
  batch_size: { label: "Batch size", int: true, min: 1, max: 1024 },
  learning_rate: { label: "Learning rate", min: 0, minExclusive: true, max: 1 },
  augment_views: { label: "Augmented views", int: true, min: 0, max: 16 },
  unfreeze: { label: "Unfreeze depth", int: true, min: 1, max: 20 },
};
// What the server uses for an empty field (app/training.py head_config), shown as placeholders.
const HEAD_DEFAULTS = {
  snapclass: { epochs: "40", batch_size: "128", learning_rate: "0.003" },
  "teachable-machine": { epochs: "50", batch_size: "16", learning_rate: "0.001" },
};
const MODE_HINTS = {
  auto: "Picks for you: fine-tuning where this server can do it within a few minutes, kept only if it "
    + "beats the frozen backbone on your validation photos; otherwise the frozen backbone, which trains in seconds.",
  head: "Trains small heads on the backbone's cached features, one per cross-validation fold: seconds, even on "
    + "a CPU.",
  finetune: "Trains the head, then the backbone's last blocks at a lower rate, on augmented photos. "
    + "Minutes on a GPU; on a CPU the frozen part runs once per photo and view, so a thousand photos take "
    + "a few minutes.",
};
const RECIPE_HINTS = {
  snapclass: "Large batches, dropout and label smoothing; one head per cross-validation fold, each keeping "
    + "its best epoch, answering together.",
  "teachable-machine": "Teachable Machine's: Dense 100 + ReLU, Adam at 0.001, batches of 16, 50 epochs.",
};
const MODE_NAMES = { head: "Head only", finetune: "Fine-tuned" };
const RECIPE_NAMES = { snapclass: "snapclass recipe", "teachable-machine": "Teachable Machine recipe" };

// "" for a fine value, else what is wrong with it in words.
function checkField(spec, raw, badInput = false) {
  if (badInput) return `${spec.label} must be a number.`;
  if (raw === "") return "";
  const value = Number(raw);
  const range = spec.int
    ? `a whole number from ${spec.min} to ${spec.max}`
    : `a number ${spec.minExclusive ? "above" : "from"} ${spec.min} ${spec.minExclusive ? "and at most" : "to"} ${spec.max}`;
  if (!Number.isFinite(value) || (spec.int && !Number.isInteger(value))) return `${spec.label} must be ${range}.`;
  const low = spec.minExclusive ? value <= spec.min : value < spec.min;
  if (low || value > spec.max) return `${spec.label} must be ${range}.`;
  return "";
}

export function initTraining(project) {
  const panel = document.getElementById("train-panel");
  const $ = (role) => panel.querySelector(`[data-role=${role}]`);
  const form = $("train-form");
  const trainButton = $("train");
  const cancelButton = $("cancel");
  const job = $("job");
  const bar = job.querySelector(".progress");
  const message = $("job-message");
  let jobId = null;
  let timer = null;
  let model = project.model;
  const settings = initAdvanced(form);

  events.on("classes-changed", (classes) => renderReadiness(classes));
  events.on("samples-changed", () => {
    if (model) $("stale").hidden = false;
  });
  // Live updates (project.js): a job started elsewhere (another tab, the API) is followed here too; a model
  // trained or made current elsewhere is shown.
  let newest = 0; // the newest job seen active: an answer read just before it finished must not follow it again
  events.on("project-refreshed", (fresh) => {
    const id = fresh.active_job_id;
    if (id && id !== jobId && id > newest) follow(id);
    else if (!id && !jobId && (fresh.model?.id ?? null) !== (model?.id ?? null)) renderModel(fresh.model);
    if (id) newest = Math.max(newest, id);
  });

  function renderReadiness(classes) {
    const hint = $("readiness");
    const empty = classes.filter((c) => !c.count).map((c) => `“${c.name}”`);
    hint.classList.remove("hint-warn");
    if (classes.length < 2) {
      hint.textContent = classes.length ? "Add one more class to train." : "Add at least two classes to train.";
      hint.classList.add("hint-warn");
    } else if (empty.length) {
      hint.textContent = `Add images to ${empty.join(", ")} before training.`;
      hint.classList.add("hint-warn");
    } else {
      const images = classes.reduce((sum, c) => sum + c.count, 0);
      hint.textContent = `Ready: ${plural(images, "image")} in ${plural(classes.length, "class", "classes")}.`;
    }
  }

  function renderModel(m, metrics = m ? m.metrics : null) {
    model = m;
    $("result").hidden = !m;
    $("stale").hidden = true;
    if (!m) return;
    const acc = metrics && metrics.val_accuracy;
    $("accuracy").textContent = acc === null || acc === undefined ? "–" : percent(acc);
    $("version").textContent = `v${m.version}`;
    const note = [];
    if (metrics && metrics.n_train !== undefined) {
      const cv = metrics.validation && metrics.validation.method === "cross-validation";
      note.push(cv ? `trained on ${plural(metrics.n_train, "image")}, each checked by one of `
        + `${metrics.validation.folds} cross-validation heads that never saw it`
        : `trained on ${plural(metrics.n_train, "image")}, checked on ${metrics.n_val}`);
    }
    if (acc === null || acc === undefined) note.push("too few images to set some aside for validation");
    $("result-note").textContent = note.join("; ");
    renderMode(metrics || {});
  }

  // What training chose and why (the job's metrics carry mode, mode_reason and recipe).
  function renderMode(metrics) {
    const box = $("mode");
    box.hidden = !metrics.mode;
    if (!metrics.mode) return;
    $("mode-name").textContent = MODE_NAMES[metrics.mode] || metrics.mode;
    const extra = [];
    if (metrics.mode === "head" && metrics.recipe) extra.push(RECIPE_NAMES[metrics.recipe] || metrics.recipe);
    if (metrics.mode === "finetune" && metrics.unfreeze) {
      extra.push(`last ${plural(metrics.unfreeze, "block")} unfrozen`);
    }
    if (metrics.augment_views) extra.push(`${plural(metrics.augment_views, "augmented view")} per image`);
    $("mode-recipe").textContent = extra.join(" · ");
    const reason = (metrics.mode_reason || "").trim();
    $("mode-reason").textContent = reason ? `${capitalize(reason)}${/[.!]$/.test(reason) ? "" : "."}` : "";
  }

  function setRunning(running) {
    trainButton.disabled = running;
    trainButton.setAttribute("aria-busy", String(running));
    cancelButton.hidden = !running;
    cancelButton.disabled = false;
    panel.dataset.state = running ? "running" : "idle";
  }

  function renderJob(j) {
    job.hidden = false;
    job.dataset.status = j.status;
    panel.dataset.jobStatus = j.status;
    setProgress(bar, j.status === "succeeded" ? 1 : j.progress);
    const texts = { queued: "Waiting for the worker…", cancelled: "Training was cancelled." };
    message.textContent = texts[j.status] || j.message || (j.status === "running" ? "Training…" : j.status);
  }

  async function finish(j) {
    setRunning(false);
    jobId = null;
    if (j.status === "succeeded") {
      job.hidden = true; // the result box below says it all
      try {
        const fresh = await api.get(`/api/projects/${project.id}`);
        renderModel(fresh.model, j.metrics);
        events.emit("model-changed", fresh.model);
      } catch (err) {
        showError(err, "Training finished, but the new model could not be loaded");
      }
      toast(capitalize(j.message || "Training finished."), "success");
    } else if (j.status === "failed") {
      toast(`Training failed: ${j.message || "no reason given"}`, "error");
    } else {
      toast("Training was cancelled.", "info");
    }
  }

  function follow(id) {
    jobId = id;
    setRunning(true);
    let failures = 0;
    const tick = async () => {
      if (jobId !== id) return;
      try {
        const j = await api.get(`/api/jobs/${id}`);
        failures = 0;
        renderJob(j);
        if (TERMINAL.has(j.status)) {
          await finish(j);
          return;
        }
      } catch (err) {
        failures += 1;
        if (failures === 1) showError(err, "Could not check on training");
        if (err.status === 404 || failures >= MAX_POLL_FAILURES) {
          setRunning(false);
          jobId = null;
          message.textContent = "Lost track of the training job. Reload the page to see its state.";
          return;
        }
      }
      timer = setTimeout(tick, POLL_MS);
    };
    clearTimeout(timer);
    tick();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (jobId) return;
    const body = settings.read();
    if (!body) return; // a field says what is wrong with it
    await whileBusy(trainButton, async () => {
      try {
        const { job_id: id } = await api.post(`/api/projects/${project.id}/train`, body);
        renderJob({ status: "queued", progress: 0, message: "" });
        follow(id);
      } catch (err) {
        if (!settings.showServerErrors(err)) showError(err, "Cannot train yet");
      }
    });
    if (jobId) trainButton.disabled = true;
  });

  cancelButton.addEventListener("click", async () => {
    if (!jobId) return;
    cancelButton.disabled = true;
    message.textContent = "Cancelling…";
    try {
      await api.post(`/api/jobs/${jobId}/cancel`);
    } catch (err) {
      // 409: it finished meanwhile; the next poll shows how.
      if (err.status !== 409) showError(err, "Could not cancel");
      cancelButton.disabled = false;
    }
  });

  renderModel(model);
  if (project.active_job_id) follow(project.active_job_id);
}

// The "Advanced settings" fields: which show for which mode, their defaults, checks and the request body.
function initAdvanced(form) {
  const details = form.querySelector("[data-role=advanced]");
  const modeSelect = form.elements.mode;
  const recipeSelect = form.elements.recipe;
  const errorFor = (name) => form.querySelector(`[data-error-for=${name}]`);
  const shown = (el) => !el.closest("[data-for-modes]")?.hidden;

  function sync() {
    const mode = modeSelect.value;
    for (const el of form.querySelectorAll("[data-for-modes]")) {
      el.hidden = !el.dataset.forModes.split(" ").includes(mode);
    }
    const recipe = mode === "head" ? recipeSelect.value : "snapclass";
    const defaults = HEAD_DEFAULTS[recipe];
    for (const [name, value] of Object.entries(defaults)) form.elements[name].placeholder = value;
    // Fine-tuning uses the batch size for both phases (the head's 128, its own 16 by default).
    if (mode === "finetune") form.elements.batch_size.placeholder = "default";
    form.querySelector("[data-role=mode-hint]").textContent = MODE_HINTS[mode];
    form.querySelector("[data-role=recipe-hint]").textContent = RECIPE_HINTS[recipeSelect.value];
  }

  function setError(name, text) {
    const input = form.elements[name];
    const box = errorFor(name);
    box.textContent = text;
    box.hidden = !text;
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function check(name) {
    const input = form.elements[name];
    const text = shown(input) ? checkField(FIELDS[name], input.value.trim(), input.validity.badInput) : "";
    setError(name, text);
    return text;
  }

  // The request body with only what the user set, or null (and the first bad field focused).
  function read() {
    const mode = modeSelect.value;
    const body = { mode };
    let firstBad = null;
    for (const name of Object.keys(FIELDS)) {
      const input = form.elements[name];
      if (check(name)) {
        firstBad = firstBad || input;
        continue;
      }
      const raw = input.value.trim();
      if (raw && shown(input)) body[name] = Number(raw);
    }
    if (mode === "head" && recipeSelect.value !== "snapclass") body.recipe = recipeSelect.value;
    if (mode === "finetune" && !form.elements.augment.checked) body.augment = false;
    if (firstBad) {
      details.open = true;
      firstBad.focus();
      return null;
    }
    return body;
  }

  // A 422 from the server: its words next to the fields they concern. True when something was shown.
  function showServerErrors(err) {
    const detail = err && err.status === 422 && err.body && err.body.detail;
    if (!Array.isArray(detail)) return false;
    const texts = detail.map((item) => {
      const name = (item.loc || []).at(-1);
      const spec = FIELDS[name];
      const text = `${spec ? spec.label : String(name).replaceAll("_", " ")}: ${String(item.msg || "is not valid")
        .replace(/^./, (c) => c.toLowerCase())}`;
      if (spec) setError(name, `${text}.`);
      return text;
    });
    details.open = true;
    toast(`Cannot train with these settings: ${texts.join("; ")}.`, "error");
    return true;
  }

  function reset() {
    modeSelect.value = "auto";
    recipeSelect.value = "snapclass";
    form.elements.augment.checked = true;
    for (const name of Object.keys(FIELDS)) {
      form.elements[name].value = "";
      setError(name, "");
    }
    sync();
    modeSelect.focus();
  }

  modeSelect.addEventListener("change", sync);
  recipeSelect.addEventListener("change", sync);
  for (const name of Object.keys(FIELDS)) {
    const input = form.elements[name];
    // Checked on submit; a flagged field is checked again as it is corrected. (Checking on blur would
    // move the Train button under a pointer that is pressing it.)
    input.addEventListener("input", () => {
      if (input.hasAttribute("aria-invalid")) check(name);
    });
  }
  form.querySelector("[data-action=reset-advanced]").addEventListener("click", reset);
  sync();
  return { read, showServerErrors };
}
