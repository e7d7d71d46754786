// The Train panel: start a job, follow its progress, cancel it, show the new model.
import { api } from "./api.js";
import { capitalize, events, percent, plural, setProgress, showError, toast, whileBusy } from "./ui.js";

const POLL_MS = 400;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const MAX_POLL_FAILURES = 25; // about 10 s of a silent server before giving up

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

  events.on("classes-changed", (classes) => renderReadiness(classes));
  events.on("samples-changed", () => {
    if (model) $("stale").hidden = false;
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
      note.push(`trained on ${plural(metrics.n_train, "image")}, checked on ${metrics.n_val}`);
    }
    if (acc === null || acc === undefined) note.push("too few images to set some aside for validation");
    $("result-note").textContent = note.join("; ");
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

  function params() {
    const body = { mode: "auto" };
    for (const [key, parse] of [["epochs", parseInt], ["batch_size", parseInt], ["learning_rate", parseFloat]]) {
      const raw = form.elements[key].value.trim();
      if (raw) body[key] = parse(raw, 10);
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (jobId) return;
    await whileBusy(trainButton, async () => {
      try {
        const { job_id: id } = await api.post(`/api/projects/${project.id}/train`, params());
        renderJob({ status: "queued", progress: 0, message: "" });
        follow(id);
      } catch (err) {
        showError(err, "Cannot train yet");
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
