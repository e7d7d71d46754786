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
    + "beats the quick model on photos set aside to check it; otherwise the quick model, which trains in seconds.",
  head: "Only the last step of the network learns your classes (small heads on the backbone's cached features, "
    + "one per cross-validation fold): seconds, even on a CPU.",
  finetune: "Trains the head, then the backbone's last blocks at a lower rate, on augmented photos. "
    + "Minutes on a GPU; on a CPU the frozen part runs once per photo and view, so a thousand photos take "
    + "a few minutes.",
};
const RECIPE_HINTS = {
  snapclass: "Large batches, dropout and label smoothing; one head per cross-validation fold, each keeping "
    + "its best epoch, answering together.",
  "teachable-machine": "Teachable Machine's: Dense 100 + ReLU, Adam at 0.001, batches of 16, 50 epochs.",
};
const MODE_NAMES = { head: "Quick model", finetune: "Fine-tuned" };
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
  let blocked = ""; // why training cannot start yet, in words; "" when it can
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

  // Only classes switched on for training count (the server leaves the others out, app/training.py).
  function renderReadiness(classes) {
    const hint = $("readiness");
    const used = classes.filter((c) => c.enabled !== false);
    const off = classes.length - used.length;
    const empty = used.filter((c) => !c.count).map((c) => `“${c.name}”`);
    const offNote = off ? ` (${plural(off, "class", "classes")} switched off for training)` : "";
    hint.classList.remove("hint-warn");
    if (used.length < 2) {
      blocked = used.length ? "Add a second class" : "Add two classes";
      hint.textContent = `${used.length ? "Add one more class to train." : "Add at least two classes to train."}${offNote}`;
      hint.classList.add("hint-warn");
    } else if (empty.length) {
      blocked = `Add photos to ${empty.join(", ")}`;
      hint.textContent = `Add images to ${empty.join(", ")} before training.`;
      hint.classList.add("hint-warn");
    } else {
      blocked = "";
      const images = used.reduce((sum, c) => sum + c.count, 0);
      hint.textContent = `Ready: ${plural(images, "image")} in ${plural(used.length, "class", "classes")}.${offNote}`;
    }
    syncButton();
  }

  // Disabled with its reason beside it until the project can train; busy while a job runs.
  function syncButton() {
    const running = panel.dataset.state === "running";
    trainButton.disabled = running || Boolean(blocked);
    const why = $("why");
    why.textContent = running ? "" : blocked;
    why.hidden = running || !blocked;
  }

  // The same figures as the models page and the API: the headline is balanced accuracy (each class
  // counted equally), named as such, with the weakest class and what to do about uneven classes.
  function renderModel(m, metrics = m ? m.metrics : null) {
    model = m;
    $("result").hidden = !m;
    $("stale").hidden = true;
    if (!m) return;
    const h = headline(metrics || {});
    $("accuracy").textContent = h.value === null ? "–" : percent(h.value);
    $("accuracy-label").textContent = h.label;
    $("version").textContent = `v${m.version}`;
    const weakest = metrics && metrics.weakest_class;
    const many = (metrics?.labels || m.labels || []).length > 1;
    $("weakest").hidden = !(weakest && many && h.value !== null);
    if (weakest) {
      $("weakest").textContent = `Weakest class: ${weakest.label}, right ${percent(weakest.accuracy, 0)} of the time.`;
    }
    const warnings = (metrics && metrics.warnings) || [];
    $("warnings").replaceChildren(...warnings.map((w) => {
      const li = document.createElement("li");
      li.className = "hint-warn small";
      li.dataset.label = w.label;
      li.textContent = w.text;
      return li;
    }));
    $("warnings").hidden = !warnings.length;
    $("accuracy-note").textContent = accuracyNote(metrics || {});
    const note = [];
    if (metrics && metrics.n_train !== undefined) {
      const cv = metrics.validation && metrics.validation.method === "cross-validation";
      note.push(cv ? `trained on ${plural(metrics.n_train, "image")}, each checked by one of `
        + `${metrics.validation.folds} cross-validation heads that never saw it`
        : `trained on ${plural(metrics.n_train, "image")}, checked on ${metrics.n_val}`);
    }
    if (h.value === null) note.push("too few images to set some aside for validation");
    if (metrics && metrics.class_weights === false) note.push("classes not weighted by their photo counts");
    $("result-note").textContent = note.length ? `${capitalize(note.join("; "))}.` : "";
    renderMode(metrics || {});
  }

  // What training made and why: plain words shown, the technical account in Details.
  function renderMode(metrics) {
    const box = $("mode");
    box.hidden = !metrics.mode;
    if (!metrics.mode) return;
    $("mode-name").textContent = metrics.outcome?.badge === "Quick" ? MODE_NAMES.head
      : MODE_NAMES[metrics.mode] || metrics.mode;
    $("mode-words").textContent = metrics.outcome?.text || "";
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
    trainButton.setAttribute("aria-busy", String(running));
    cancelButton.hidden = !running;
    cancelButton.disabled = false;
    panel.dataset.state = running ? "running" : "idle";
    syncButton();
  }

  function renderJob(j) {
    job.hidden = false;
    job.dataset.status = j.status;
    panel.dataset.jobStatus = j.status;
    setProgress(bar, j.status === "succeeded" ? 1 : j.progress);
    const texts = { queued: "Waiting for its turn…", cancelled: "Training was cancelled." };
    message.textContent = texts[j.status] || plainStep(j.message || "");
    const eta = j.status === "running" && j.metrics && j.metrics.eta;
    $("eta").hidden = !eta;
    $("eta").textContent = eta ? timeLeft(eta.low_s, eta.high_s) : "";
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
      toast(`Training failed: ${(j.message || "no reason given").replace(/^failed: /, "")}`, "error");
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
    syncButton();
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

// The headline figure and its name: balanced accuracy where the job measured it (older models: plain).
export function headline(metrics) {
  const balanced = metrics.balanced_accuracy;
  const value = balanced ?? metrics.val_accuracy ?? null;
  const label = (metrics.labels || []).length > 1 && balanced !== undefined
    ? "right on photos it had not seen (each class counted equally)" : "right on photos it had not seen";
  return { value, label };
}

// Why the Train panel's figure differs from others a curious user finds, in one place (Details).
function accuracyNote(metrics) {
  if (metrics.balanced_accuracy === undefined || metrics.val_accuracy === undefined) return "";
  const cv = metrics.validation && metrics.validation.method === "cross-validation";
  return `Balanced accuracy ${percent(metrics.balanced_accuracy)}: the mean of each class's share right, so a small `
    + `class counts as much as a big one. Plain accuracy over all checked photos: ${percent(metrics.val_accuracy)}. `
    + (cv ? "Every photo was checked once, by a model trained without it (cross-validation)."
      : "Checked on photos set aside before training.");
}

// The worker's progress message (stage: detail) in plain words.
function plainStep(raw) {
  const text = raw.toLowerCase();
  const count = raw.match(/(\d+)\/(\d+)/);
  if (text.startsWith("preparing")) return "Getting ready…";
  if (text.startsWith("reading images")) return count ? `Reading photos: ${count[1]} of ${count[2]}` : "Reading photos…";
  if (text.startsWith("augmented view")) return "Making varied copies of the photos…";
  if (text.includes("fine-tuning")) return "Fine-tuning the network to your photos…";
  if (text.startsWith("evaluating")) return "Checking the model on photos it has not seen…";
  if (text.includes("epoch")) return "Learning your classes…";
  return "Training…";
}

// "about 3–9 s left", "about 20–40 s left", "about 1–2 min left": a range, never a promise to the second.
export function timeLeft(low, high) {
  if (high < 5) return "a few seconds left";
  if (high < 20) return `about ${Math.max(1, Math.round(low))}–${Math.max(Math.round(low) + 2, Math.ceil(high))} s left`;
  if (high < 90) {
    const lo = Math.max(5, Math.floor(low / 5) * 5);
    return `about ${lo}–${Math.max(lo + 5, Math.ceil(high / 5) * 5)} s left`;
  }
  const lo = Math.max(1, Math.floor(low / 60));
  return `about ${lo}–${Math.max(lo + 1, Math.ceil(high / 60))} min left`;
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
