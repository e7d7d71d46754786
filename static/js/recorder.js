// Hold-to-record: while the button is held (mouse, touch, or Space/Enter), frames are captured at a steady
// rate, shown as they arrive, counted, and uploaded to the class in batches. One press is one burst.
// Timed (as in Teachable Machine): a countdown on the video, then a set number of seconds at the same rate, one
// burst; the button cancels the countdown or stops early.
import { api } from "./api.js";
import {
  attach, grabFrame, listCameras, newBurstId, openCamera, renderCameraPicker, savedCameraId, saveCameraId,
  stopStream, videoReady,
} from "./camera.js";
import { events, plural, showError, toast } from "./ui.js";

const FRAME_SIDE = 384; // shorter side of a stored frame; the server keeps a 352 px working copy
const JPEG_QUALITY = 0.9;
const BATCH_FRAMES = 8; // upload every 8 frames or every second, whichever comes first
const BATCH_MS = 1000;
const STRIP_MAX = 24; // frames shown in the recorder (the class card shows them all)
const FPS_KEY = "snapclass.fps";
const MODE_KEY = "snapclass.record-mode";

export function initRecorder() {
  const dialog = document.getElementById("recorder");
  const $ = (role) => dialog.querySelector(`[data-role=${role}]`);
  const video = $("video");
  const hold = $("hold");
  const cameraSelect = $("camera");
  const fpsSelect = $("fps");
  const strip = $("frames");
  const timedButton = $("timed");
  const delaySelect = $("delay");
  const durationSelect = $("duration");
  const countdown = $("countdown");
  const modeInputs = [...dialog.querySelectorAll("[data-role=mode]")];
  const canvas = document.createElement("canvas");

  let card = null; // the class being recorded
  let stream = null;
  let opening = 0; // bumps on every (re)open, so a slow getUserMedia from before is dropped
  let press = null; // the burst being recorded
  let saving = 0; // bursts still uploading
  let uploads = Promise.resolve(); // one upload at a time, in order
  let counts = { captured: 0, saved: 0, failed: 0 }; // of this opening of the dialog
  let counting = null; // the countdown before a timed recording: { timer }

  try {
    const fps = localStorage.getItem(FPS_KEY);
    if (fps && [...fpsSelect.options].some((o) => o.value === fps)) fpsSelect.value = fps;
    const mode = localStorage.getItem(MODE_KEY);
    for (const input of modeInputs) input.checked = input.value === (mode === "timed" ? "timed" : "hold");
  } catch {
    // no storage: the default rate, hold to record
  }
  showMode();

  function setState(state) {
    dialog.dataset.state = state;
    const live = state === "ready" || state === "recording" || state === "saving" || state === "counting";
    hold.disabled = !live;
    timedButton.disabled = !live;
    const busy = state === "recording" || state === "counting";
    for (const control of [cameraSelect, fpsSelect, delaySelect, durationSelect, ...modeInputs]) control.disabled = busy;
  }

  function timedMode() {
    return modeInputs.some((input) => input.checked && input.value === "timed");
  }

  function showMode() {
    const timed = timedMode();
    hold.hidden = timed;
    timedButton.hidden = !timed;
    for (const field of dialog.querySelectorAll("[data-role=timed-field]")) field.hidden = !timed;
  }

  function settle() {
    if (!dialog.open) setState("closed");
    else if (counting) setState("counting");
    else if (press) setState("recording");
    else if (stream) setState(saving ? "saving" : "ready");
    // else: the camera is starting or failed, and says so itself
  }

  function renderStatus() {
    dialog.dataset.captured = String(counts.captured);
    dialog.dataset.saved = String(counts.saved);
    $("rec-count").textContent = String(counts.captured);
    const parts = [];
    if (!counts.captured) {
      parts.push(`Frames go to “${card ? card.name : ""}”.`);
    } else {
      parts.push(`${plural(counts.captured, "frame")} recorded`);
      const waiting = counts.captured - counts.saved - counts.failed;
      if (waiting > 0) parts.push(`${counts.saved} saved, ${waiting} uploading…`);
      else parts.push(counts.failed ? `${counts.saved} saved` : "all saved");
      if (counts.failed) parts.push(`${counts.failed} failed`);
    }
    $("status").textContent = parts.join(" · ");
  }

  function showCameraError(err) {
    $("error-text").textContent = err.message;
    $("error").hidden = false;
    $("starting").hidden = true;
    video.hidden = true;
    dialog.dataset.error = err.reason || "failed";
    setState("error");
    if (dialog.open) dialog.querySelector("[data-action=retry]").focus();
  }

  async function startCamera(deviceId = savedCameraId()) {
    const mine = ++opening;
    stopStream(stream);
    stream = null;
    $("error").hidden = true;
    delete dialog.dataset.error;
    $("starting").hidden = false;
    setState("starting");
    try {
      const next = await openCamera(deviceId);
      if (mine !== opening || !dialog.open) {
        stopStream(next);
        return;
      }
      stream = next;
      video.hidden = false;
      const active = await attach(video, stream);
      if (mine !== opening) {
        // Closed (or reopened) while the video was attaching: leave no stopped stream on it.
        if (!dialog.open) video.srcObject = null;
        return;
      }
      $("starting").hidden = true;
      renderCameraPicker(cameraSelect, await listCameras(), active);
      settle();
      // Ready for Space at once, unless the user is choosing something in the dialog.
      if (dialog.open && !(document.activeElement instanceof HTMLSelectElement)) (timedMode() ? timedButton : hold).focus();
    } catch (err) {
      if (mine !== opening) return;
      stopStream(stream);
      stream = null;
      showCameraError(err);
    }
  }

  function open(target) {
    if (dialog.open) return;
    card = target;
    $("class-name").textContent = `“${card.name}”`;
    counts = { captured: 0, saved: 0, failed: 0 };
    $("upload-error").hidden = true;
    clearStrip();
    renderStatus();
    dialog.showModal();
    startCamera();
  }

  function clearStrip() {
    for (const img of strip.querySelectorAll("img")) URL.revokeObjectURL(img.src);
    strip.replaceChildren();
  }

  function addToStrip(blob) {
    const li = document.createElement("li");
    li.className = "frame";
    li.dataset.testid = "recorder-frame";
    const img = document.createElement("img");
    img.alt = "";
    img.src = URL.createObjectURL(blob);
    li.append(img);
    strip.prepend(li);
    while (strip.children.length > STRIP_MAX) {
      const last = strip.lastElementChild;
      URL.revokeObjectURL(last.querySelector("img").src);
      last.remove();
    }
  }

  // ---- one press: capture at a steady rate on a performance.now() schedule ----

  // seconds: a timed recording's length (it stops by itself after that many seconds' frames); 0 while held.
  function startPress(seconds = 0) {
    if (press || !stream || !videoReady(video) || !dialog.open) return;
    const fps = Number(fpsSelect.value) || 10;
    press = {
      burstId: newBurstId(), card, counts, interval: 1000 / fps, start: performance.now(), slot: 0, timer: 0,
      pending: new Set(), batch: [], batchStart: 0, n: 0, added: 0, limit: Math.round(seconds * fps),
    };
    if (seconds) $("timed-label").textContent = "Stop";
    hold.setAttribute("aria-pressed", "true");
    $("hold-label").textContent = "Recording…";
    $("announce").textContent = "Recording";
    $("rec").hidden = false;
    dialog.classList.add("is-recording");
    setState("recording");
    tick(press);
  }

  function tick(p) {
    if (p !== press) return;
    capture(p);
    const now = performance.now();
    p.slot += 1;
    if (p.limit && p.slot >= p.limit) { // the last frame of a timed recording: stop when its time is up
      p.timer = setTimeout(() => p === press && stopPress(), Math.max(0, p.start + p.limit * p.interval - now));
      return;
    }
    let due = p.start + p.slot * p.interval;
    if (due < now) { // fell behind (a busy machine): skip the missed slots instead of a burst of catch-up frames
      p.slot = Math.floor((now - p.start) / p.interval) + 1;
      due = p.start + p.slot * p.interval;
    }
    p.timer = setTimeout(() => tick(p), due - now);
  }

  function capture(p) {
    if (!videoReady(video)) return;
    const job = grabFrame(video, canvas, { shortSide: FRAME_SIDE, quality: JPEG_QUALITY }).then((blob) => {
      p.n += 1;
      p.counts.captured += 1;
      const shown = p.counts === counts && dialog.open;
      if (shown) addToStrip(blob);
      if (!p.batch.length) p.batchStart = performance.now();
      p.batch.push({ blob, n: p.n });
      if (p.batch.length >= BATCH_FRAMES || performance.now() - p.batchStart >= BATCH_MS) flush(p);
      if (shown) renderStatus();
    }).catch((err) => console.error(err));
    p.pending.add(job);
    job.finally(() => p.pending.delete(job));
  }

  async function stopPress() {
    const p = press;
    if (!p) return;
    press = null;
    clearTimeout(p.timer);
    hold.setAttribute("aria-pressed", "false");
    $("hold-label").textContent = "Hold to record";
    $("timed-label").textContent = "Start recording";
    $("rec").hidden = true;
    dialog.classList.remove("is-recording");
    saving += 1;
    settle();
    await Promise.allSettled([...p.pending]);
    flush(p);
    await uploads;
    saving -= 1;
    settle();
    // The dialog's status line says it while it is open; after closing, a message does.
    const here = dialog.open && p.counts === counts;
    if (here) $("announce").textContent = `Saved ${plural(p.added, "frame")}`;
    if (p.added && !here) {
      toast(`Added ${plural(p.added, "frame")} to “${p.card.name}”.`, "success");
    }
  }

  function flush(p) {
    if (!p.batch.length) return;
    const batch = p.batch;
    p.batch = [];
    uploads = uploads.then(() => send(p, batch));
  }

  async function send(p, batch) {
    const form = new FormData();
    for (const { blob, n } of batch) form.append("files", blob, `webcam-${p.burstId.slice(1, 9)}-${n}.jpg`);
    form.append("burst_id", p.burstId);
    form.append("source", "webcam");
    try {
      const result = await api.postForm(`/api/classes/${p.card.id}/samples`, form);
      p.added += result.added.length;
      p.counts.saved += result.added.length;
      p.counts.failed += result.rejected.length;
      p.card.addSamples(result.added);
    } catch (err) {
      p.counts.failed += batch.length;
      // A toast would sit under the dialog's backdrop: while it is open, say it in the dialog.
      if (p.counts === counts && dialog.open) {
        const box = $("upload-error");
        box.textContent = `Could not save ${plural(batch.length, "frame")}: ${err.message}`;
        box.hidden = false;
      } else if (!p.failed) {
        showError(err, `Could not save frames to “${p.card.name}”`);
      }
      p.failed = true;
    }
    if (p.counts === counts && dialog.open) renderStatus();
  }

  // ---- timed: a countdown shown on the video, then a recording that stops by itself ----

  function startCountdown() {
    const delay = Number(delaySelect.value) || 0;
    const seconds = Number(durationSelect.value) || 3;
    if (!delay) {
      startPress(seconds);
      return;
    }
    const end = performance.now() + delay * 1000;
    counting = { timer: 0 };
    timedButton.classList.add("is-armed");
    $("timed-label").textContent = "Cancel";
    $("announce").textContent = `Recording starts in ${delay} seconds`;
    const step = () => {
      const left = end - performance.now();
      if (left <= 0) {
        stopCountdown();
        startPress(seconds);
        return;
      }
      countdown.textContent = String(Math.ceil(left / 1000));
      counting.timer = setTimeout(step, Math.min(left, ((left - 1) % 1000) + 1));
    };
    countdown.hidden = false;
    step();
    settle();
  }

  function stopCountdown() {
    if (!counting) return;
    clearTimeout(counting.timer);
    counting = null;
    countdown.hidden = true;
    timedButton.classList.remove("is-armed");
    $("timed-label").textContent = "Start recording";
    settle();
  }

  timedButton.addEventListener("click", () => {
    if (counting) {
      stopCountdown();
      $("announce").textContent = "Cancelled";
    } else if (press) {
      stopPress();
    } else {
      startCountdown();
    }
  });
  for (const input of modeInputs) {
    input.addEventListener("change", () => {
      showMode();
      try {
        localStorage.setItem(MODE_KEY, input.value);
      } catch {
        // no storage
      }
    });
  }

  // ---- input: pointer (mouse, touch, pen) and keyboard ----

  hold.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault(); // no text selection or touch gestures while holding
    hold.focus();
    try {
      hold.setPointerCapture(event.pointerId);
    } catch {
      // an already-released pointer
    }
    startPress();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) hold.addEventListener(type, stopPress);
  // With pointer capture this only comes after the release; without it (capture refused), leaving stops.
  hold.addEventListener("pointerleave", stopPress);
  hold.addEventListener("contextmenu", (event) => event.preventDefault()); // a long touch is not a right click
  hold.addEventListener("keydown", (event) => {
    if (event.key !== " " && event.key !== "Enter") return;
    event.preventDefault();
    if (!event.repeat) startPress();
  });
  hold.addEventListener("keyup", (event) => {
    if (event.key !== " " && event.key !== "Enter") return;
    event.preventDefault();
    stopPress();
  });
  hold.addEventListener("blur", stopPress);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) return;
    stopCountdown();
    stopPress();
  });

  cameraSelect.addEventListener("change", () => {
    saveCameraId(cameraSelect.value);
    startCamera(cameraSelect.value);
  });
  fpsSelect.addEventListener("change", () => {
    try {
      localStorage.setItem(FPS_KEY, fpsSelect.value);
    } catch {
      // no storage
    }
  });
  dialog.querySelector("[data-action=retry]").addEventListener("click", () => startCamera());
  dialog.querySelector("[data-action=close]").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    stopCountdown();
    stopPress();
    opening += 1;
    stopStream(stream);
    stream = null;
    video.srcObject = null;
    setState("closed");
  });

  events.on("open-recorder", open);
  setState("closed");
  return { open };
}
