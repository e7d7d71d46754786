// The live page: camera frames go to the server over the WebSocket, one in flight at a time, and each
// answer moves a confidence bar per class. "Wrong? It is …" adds frames to a class and can retrain.
//
// What is added is always a picture the user has seen with its answer: while live, the frame whose answer is on
// screen (never the newer one the camera shows meanwhile); while paused, the still on screen, which is the very
// JPEG that was predicted and is stored byte for byte.
import { api } from "./api.js";
import {
  attach, grabFrame, listCameras, newBurstId, openCamera, renderCameraPicker, savedCameraId, saveCameraId,
  stopStream, videoReady,
} from "./camera.js";
import { capitalize, percent, plural, setProgress, showError } from "./ui.js";

const project = JSON.parse(document.getElementById("live-data").textContent);
const params = new URLSearchParams(location.search);
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
// The frame's shorter side is the model's input size, so the server's resize is a no-op; ?size= and
// ?quality= exist for bench/live_rate.py.
const FRAME_SIDE = clamp(Number(params.get("size")) || project.input_size || 288, 64, 720);
const JPEG_QUALITY = clamp(Number(params.get("quality")) || 0.8, 0.3, 0.95);
const RATE_WINDOW_MS = 2000; // predictions per second over the last 2 s
const RING_MS = 1000; // "the last second" of frames kept for corrections
const RING_MAX = 60;
const STUCK_MS = 15000; // no answer for this long: the socket is dead even if it looks open
const ERROR_PAUSE_MS = 1000; // after an error answer (no model yet …), wait before the next frame
const POLL_MS = 500;
// A paused picture keeps the camera's own size (up to this shorter side): the user looks at it closely, and it
// may become a training photo.
const STILL_SIDE = 720;
const STILL_QUALITY = 0.9;
const ADDED_SHOWN = 12; // thumbnails of the frames just added

const root = document.getElementById("live");
const $ = (role) => root.querySelector(`[data-role=${role}]`);
const video = $("video");
const canvas = document.createElement("canvas");
const stillCanvas = $("still");
const cameraSelect = $("camera");

// What bench/live_rate.py and the tests read: counts since the page opened.
const stats = {
  frames: 0, errors: 0, sent: 0, bytes: 0, rttTotal: 0, serverMsTotal: 0, grabs: 0, grabMsTotal: 0,
  gapMsTotal: 0, pps: 0,
  modelVersion: null,
  frameSide: FRAME_SIDE, quality: JPEG_QUALITY,
};
window.__liveStats = stats;

let stream = null;
let opening = 0;
let ws = null;
let backoff = 500;
let reconnectTimer = 0;
// A frame: {blob, at (when it was grabbed), seq}. inFlight: {frame, sentAt, still} of the frame the server is
// working on (frame null while it is being encoded).
let inFlight = null;
let seq = 0;
let shown = null; // while live, the frame whose answer is on screen: "Add this frame" adds it
let paused = false;
let pausedAt = 0;
let still = null; // while paused, the frame on screen (its blob once encoded) and its answer
let stillWanted = false; // the still waits for a prediction (just paused, a new model, an error before)
let holdUntil = 0; // after an error answer
const ring = []; // frames sent in the last second, oldest first
const answeredAt = []; // performance.now() of recent answers
const rtts = []; // recent round trips, ms
let labels = project.model ? [...project.model.labels] : project.classes.map((c) => c.name);
let version = project.model ? project.model.version : null;
const bars = new Map(); // label -> {li, fill, value, track}

// ---- camera ----

function showCameraError(err) {
  $("error-text").textContent = err.message;
  $("error").hidden = false;
  $("starting").hidden = true;
  video.hidden = true;
  root.dataset.state = "camera-error";
  root.dataset.error = err.reason || "failed";
  renderCorrectButtons();
}

async function startCamera(deviceId = savedCameraId()) {
  const mine = ++opening;
  stopStream(stream);
  stream = null;
  $("error").hidden = true;
  $("starting").hidden = false;
  root.dataset.state = "starting";
  delete root.dataset.error;
  try {
    const next = await openCamera(deviceId);
    if (mine !== opening) {
      stopStream(next);
      return;
    }
    stream = next;
    video.hidden = false;
    const active = await attach(video, stream);
    if (mine !== opening) return;
    $("starting").hidden = true;
    root.dataset.state = "running";
    if (paused && !still) freeze(); // paused before the camera came: hold its first picture, not a moving one
    renderCameraPicker(cameraSelect, await listCameras(), active);
    renderCorrectButtons();
    pump();
  } catch (err) {
    if (mine !== opening) return;
    stopStream(stream);
    stream = null;
    showCameraError(err);
  }
}

// ---- the socket: one frame in flight ----

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/api/projects/${project.id}/live`;
}

function setConn(state, text) {
  const el = $("conn");
  el.dataset.conn = state;
  el.textContent = text;
}

function connect() {
  clearTimeout(reconnectTimer);
  const socket = new WebSocket(socketUrl());
  ws = socket;
  setConn("connecting", "Connecting…");
  socket.addEventListener("open", () => {
    if (ws !== socket) return;
    setConn("open", "Connected");
    pump();
  });
  socket.addEventListener("message", (event) => {
    if (ws !== socket) return;
    let answer;
    try {
      answer = JSON.parse(event.data);
    } catch {
      answer = { error: "the server sent something that is not JSON" };
    }
    onAnswer(answer);
  });
  socket.addEventListener("close", () => {
    if (ws !== socket) return;
    ws = null;
    inFlight = null;
    const seconds = Math.round(backoff / 100) / 10;
    setConn("closed", `Disconnected; trying again in ${seconds} s…`);
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  });
}

// Moving averages (ms) of the round trip and of grabbing + encoding a frame.
const timing = { rtt: 0, grab: 0 };
let nextFrame = null; // the next frame, encoded while the server works on the current one
let prefetchTimer = 0;
let answeredLast = 0;
const MAX_FRAME_AGE_MS = 150; // an older prepared frame (after a pause, a slow answer) is taken again

function grab() {
  const start = performance.now();
  return grabFrame(video, canvas, { shortSide: FRAME_SIDE, quality: JPEG_QUALITY }).then((blob) => {
    const now = performance.now();
    stats.grabs += 1;
    stats.grabMsTotal += now - start;
    timing.grab = timing.grab ? 0.8 * timing.grab + 0.2 * (now - start) : now - start;
    return { blob, at: start, seq: ++seq, width: canvas.width, height: canvas.height };
  });
}

async function pump() {
  if (inFlight || document.hidden) return;
  if (!ws || ws.readyState !== WebSocket.OPEN || performance.now() < holdUntil) return;
  if (paused) {
    if (stillWanted && still && still.blob) send(still, true);
    return;
  }
  if (!stream || !videoReady(video)) return;
  const socket = ws;
  inFlight = { frame: null, sentAt: performance.now(), still: false }; // reserved while the frame is encoded
  clearTimeout(prefetchTimer);
  let frame = null;
  try {
    if (nextFrame) {
      const prepared = nextFrame;
      nextFrame = null;
      frame = await prepared.catch(() => null);
    }
    if (!frame || performance.now() - frame.at > MAX_FRAME_AGE_MS) frame = await grab();
  } catch (err) {
    console.error(err);
    inFlight = null;
    return;
  }
  if (ws !== socket || socket.readyState !== WebSocket.OPEN || paused) {
    // Paused while the frame was encoded: it was grabbed before the pause, but nobody will see its answer.
    inFlight = null;
    if (paused) pump();
    return;
  }
  send(frame, false);
  ring.push(frame);
  while (ring.length > RING_MAX || (ring.length && ring[0].at < frame.at - RING_MS)) ring.shift();
  stats.frameWidth = frame.width;
  stats.frameHeight = frame.height;
  if (answeredLast) stats.gapMsTotal += inFlight.sentAt - answeredLast;
  // Still one frame in flight, but the next one is encoded while the server works, timed to be ready
  // (and fresh) when the answer comes.
  prefetchTimer = setTimeout(() => {
    if (!paused && inFlight && inFlight.frame && !nextFrame && videoReady(video)) nextFrame = grab();
  }, Math.max(0, timing.rtt - timing.grab - 3));
}

function send(frame, isStill) {
  if (isStill) stillWanted = false;
  inFlight = { frame, sentAt: performance.now(), still: isStill };
  stats.sent += 1;
  stats.bytes += frame.blob.size;
  ws.send(frame.blob);
}

function onAnswer(answer) {
  const sent = inFlight;
  inFlight = null;
  const now = performance.now();
  // Only an answer about the picture on screen is shown: while paused, that of the still; an answer for a
  // frame sent before the pause is about a picture that is gone.
  const forStill = Boolean(sent && sent.still && sent.frame === still && paused);
  const onScreen = forStill || Boolean(sent && sent.frame && !sent.still && !paused);
  if (answer.error) {
    stats.errors += 1;
    if (sent && sent.still && sent.frame === still) stillWanted = true; // asked again after the wait
    showMessage(capitalize(answer.error));
    holdUntil = now + ERROR_PAUSE_MS;
    setTimeout(pump, ERROR_PAUSE_MS);
    return;
  }
  backoff = 500;
  showMessage("");
  stats.frames += 1;
  stats.serverMsTotal += answer.server_ms || 0;
  if (sent && sent.frame && !sent.still) {
    // The still is bigger than a live frame: its round trip would skew the live figures.
    const rtt = now - sent.sentAt;
    stats.rttTotal += rtt;
    timing.rtt = timing.rtt ? 0.8 * timing.rtt + 0.2 * rtt : rtt;
    answeredLast = now;
    rtts.push(rtt);
    if (rtts.length > 30) rtts.shift();
  }
  if (answer.model_version !== version) modelChanged(answer);
  stats.modelVersion = answer.model_version;
  if (onScreen) {
    if (forStill) {
      still.answer = answer;
      root.dataset.still = "ready";
      stats.stillSeq = still.seq;
    } else {
      shown = sent.frame;
      answeredAt.push(now);
      while (answeredAt.length && answeredAt[0] < now - RATE_WINDOW_MS) answeredAt.shift();
    }
    stats.shownSeq = sent.frame.seq;
    stats.last = answer;
    render(answer);
  } else {
    stats.unshown = (stats.unshown || 0) + 1;
  }
  pump();
}

// ---- showing answers ----

function showMessage(text) {
  const box = $("message");
  if (box.textContent !== text) box.textContent = text;
  box.hidden = !text;
  if (text) $("top").hidden = true;
}

function rate(now = performance.now()) {
  const recent = answeredAt.filter((t) => t >= now - RATE_WINDOW_MS);
  if (recent.length < 2) return 0;
  return (recent.length - 1) / ((recent[recent.length - 1] - recent[0]) / 1000);
}

function renderRates() {
  stats.pps = paused ? 0 : rate();
  const pps = $("pps");
  // Paused, the figure says so instead of decaying towards zero.
  pps.textContent = paused ? "Paused" : stats.pps ? stats.pps.toFixed(1) : "–";
  pps.dataset.paused = String(paused);
  const mean = rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : 0;
  $("latency").textContent = mean ? `${Math.round(mean)} ms` : "–";
}

// A class's colour (kept for life by the server) by the label the model knows it by.
function classColor(label) {
  const cls = project.classes.find((c) => c.name === label);
  return cls && cls.color ? cls.color : "";
}

// A long name keeps its end in view ("Honey bee on a da… close-up"): names that differ only at the end stay
// apart, and the score after it is never pushed out. The end is the last word when it is short, else 8 letters.
function nameSpan(text) {
  const span = document.createElement("span");
  span.className = "mid-ellipsis";
  span.title = text;
  if (text.length <= 14) {
    span.textContent = text;
    return span;
  }
  const space = text.lastIndexOf(" ", text.length - 4);
  const cut = space > 0 && text.length - space <= 14 ? space : text.length - 8;
  span.append(
    Object.assign(document.createElement("span"), { className: "mid-head", textContent: text.slice(0, cut) }),
    Object.assign(document.createElement("span"), { className: "mid-tail", textContent: text.slice(cut) }));
  return span;
}

function paintBars() {
  for (const [label, bar] of bars) {
    const color = classColor(label);
    if (color) bar.li.style.setProperty("--class-color", color);
    else bar.li.style.removeProperty("--class-color");
  }
}

function buildBars(order) {
  labels = order;
  bars.clear();
  $("bars").replaceChildren(...order.map((label) => {
    const li = document.createElement("li");
    li.className = "bar";
    li.dataset.testid = "live-bar";
    li.dataset.label = label;
    // The live bars wrap a long name over the bar instead of cutting it (the panel is narrow).
    const name = Object.assign(document.createElement("span"), { className: "bar-label", textContent: label });
    const track = document.createElement("div");
    track.className = "bar-track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-label", `Confidence for ${label}`);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", "0");
    const fill = Object.assign(document.createElement("div"), { className: "bar-fill" });
    fill.style.width = "0%";
    track.append(fill);
    const value = Object.assign(document.createElement("span"), { className: "bar-value", textContent: "–" });
    li.append(name, track, value);
    bars.set(label, { li, fill, value, track });
    return li;
  }));
  paintBars();
}

function render(answer) {
  const scores = new Map(answer.predictions.map((p) => [p.label, p.score]));
  // Bars keep their places (label order); a model with other labels gets a new set.
  if (scores.size !== bars.size || [...scores.keys()].some((label) => !bars.has(label))) {
    const known = labels.filter((label) => scores.has(label));
    buildBars([...known, ...[...scores.keys()].filter((label) => !known.includes(label))]);
  }
  const best = answer.predictions[0];
  for (const [label, bar] of bars) {
    const score = scores.get(label) || 0;
    bar.fill.style.width = percent(score);
    bar.value.textContent = percent(score, 0);
    bar.track.setAttribute("aria-valuenow", (score * 100).toFixed(1));
    bar.li.classList.toggle("bar-top", label === best.label);
  }
  $("bars").dataset.unknown = String(Boolean(answer.unknown));
  const top = $("top");
  top.hidden = false;
  top.dataset.label = best.label;
  // Below the model's similarity threshold the answer is "unknown": like none of the classes.
  top.dataset.unknown = String(Boolean(answer.unknown));
  const color = classColor(best.label);
  if (color && !answer.unknown) top.style.setProperty("--class-color", color);
  else top.style.removeProperty("--class-color");
  const score = Object.assign(document.createElement("span"), {
    className: "live-score", textContent: percent(best.score, 0) });
  if (answer.unknown) {
    top.replaceChildren(Object.assign(document.createElement("strong"), { textContent: "None of these" }),
      Object.assign(document.createElement("span"), { className: "live-closest", textContent: "· closest:" }),
      nameSpan(best.label), score);
  } else {
    const strong = document.createElement("strong");
    strong.className = "live-name";
    strong.append(nameSpan(best.label));
    top.replaceChildren(Object.assign(document.createElement("span"), { className: "swatch" }), strong, score);
  }
  $("version").textContent = `v${answer.model_version}`;
  $("no-model").hidden = true;
  root.dataset.frames = String(stats.frames);
  $("frames").textContent =
    `${plural(stats.frames, "frame")} classified · ${Math.round(answer.server_ms)} ms each on the server`;
  renderRates();
  renderCorrectButtons();
}

let flashTimer = 0;
function modelChanged(answer) {
  version = answer.model_version;
  const flash = $("flash");
  flash.textContent = `Now running model v${version}`;
  flash.hidden = false;
  flash.classList.remove("is-flashing");
  void flash.offsetWidth; // restart the animation
  flash.classList.add("is-flashing");
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (flash.hidden = true), 4000);
  refreshProject(); // the new model's label order, and classes added meanwhile
}

// Put the bars in this order, keeping the values on show (only when the labels are the same).
function orderBars(order) {
  if (order.length !== bars.size || order.some((label) => !bars.has(label))) return;
  const list = $("bars");
  const entries = order.map((label) => [label, bars.get(label)]);
  bars.clear();
  for (const [label, bar] of entries) {
    bars.set(label, bar);
    list.append(bar.li);
  }
  labels = [...order];
}

async function refreshProject() {
  try {
    const fresh = await api.get(`/api/projects/${project.id}`);
    project.classes = fresh.classes;
    project.model = fresh.model;
    if (fresh.model) orderBars(fresh.model.labels);
    paintBars();
    renderClassOptions();
  } catch {
    // the page keeps working with what it has
  }
}

// ---- pause: a still on screen ----

const pauseButton = root.querySelector("[data-action=pause]");

function renderPause() {
  pauseButton.setAttribute("aria-pressed", String(paused));
  $("pause-label").textContent = paused ? "Resume" : "Pause";
  root.dataset.paused = String(paused);
  $("paused-badge").hidden = !paused;
  renderRates();
  renderCorrectButtons();
}

// Freeze the picture now (drawn synchronously from the video), then put the JPEG that will be predicted and
// stored in its place, so the pixels on screen are those of the file; predict it once.
function freeze() {
  pausedAt = performance.now();
  clearTimeout(prefetchTimer);
  nextFrame = null;
  still = null;
  stillWanted = false;
  if (!stream || !videoReady(video)) return; // nothing on screen to hold
  const frame = { blob: null, at: pausedAt, seq: ++seq, answer: null };
  still = frame;
  stillCanvas.classList.toggle("mirrored", video.classList.contains("mirrored"));
  const encoded = grabFrame(video, stillCanvas, { shortSide: STILL_SIDE, quality: STILL_QUALITY });
  stillCanvas.hidden = false;
  root.dataset.still = "pending";
  encoded.then(async (blob) => {
    if (still !== frame) return;
    try {
      const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none" });
      if (still === frame) stillCanvas.getContext("2d", { alpha: false }).drawImage(bitmap, 0, 0);
      bitmap.close();
    } catch {
      // the raw frame stays on screen: the same picture, before JPEG
    }
    if (still !== frame) return;
    Object.assign(frame, { blob, width: stillCanvas.width, height: stillCanvas.height });
    stillWanted = true;
    renderCorrectButtons();
    pump();
  }).catch((err) => console.error(err));
}

function thaw() {
  still = null;
  stillWanted = false;
  stillCanvas.hidden = true;
  delete root.dataset.still;
  // The rate starts afresh, and "the last second" is of what comes now, not of before the pause.
  answeredAt.length = 0;
  ring.length = 0;
  shown = null;
  nextFrame = null;
}

function setPaused(next) {
  if (next === paused) return;
  paused = next;
  if (paused) freeze();
  else thaw();
  stats.paused = paused;
  renderPause();
  pump();
}

// ---- corrections ----

const correctPanel = document.getElementById("correct-panel");
const classSelect = correctPanel.querySelector("[data-role=class]");
const addFrame = correctPanel.querySelector("[data-action=add-frame]");
const addSecond = correctPanel.querySelector("[data-action=add-second]");
const retrainBox = correctPanel.querySelector("[data-role=retrain-box]");
const retrainButton = correctPanel.querySelector("[data-action=retrain]");
const addedStrip = correctPanel.querySelector("[data-role=added]");
let correcting = false;
let added = 0; // frames added since the last retrain started
let trainingJob = null;

function renderClassOptions() {
  const chosen = classSelect.value;
  const options = project.classes.map((c) => Object.assign(document.createElement("option"), {
    value: String(c.id), textContent: c.name,
  }));
  classSelect.replaceChildren(classSelect.options[0], ...options);
  if (project.classes.some((c) => String(c.id) === chosen)) classSelect.value = chosen;
  renderCorrectButtons();
}

// The picture "Add this frame" adds: the still while paused, else the frame whose answer is on screen.
function currentFrame() {
  const frame = paused ? still : shown;
  return frame && frame.blob ? frame : null;
}

// The second of frames before the latest one; while paused, the second before the pause, ending with the still.
function recentFrames() {
  if (paused) {
    const frames = ring.filter((f) => f.at >= pausedAt - RING_MS && f.at <= pausedAt);
    if (still && still.blob) frames.push(still);
    return frames;
  }
  if (!ring.length) return [];
  const last = ring[ring.length - 1].at;
  return ring.filter((f) => f.at >= last - RING_MS);
}

function renderCorrectButtons() {
  const ready = Boolean(classSelect.value) && !correcting;
  addFrame.disabled = !ready || !currentFrame();
  addSecond.disabled = !ready || !recentFrames().length;
}

function showAdded(frames) {
  for (const img of addedStrip.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  addedStrip.replaceChildren(...frames.slice(-ADDED_SHOWN).map((f) => {
    const li = document.createElement("li");
    li.className = "frame";
    li.dataset.testid = "added-frame";
    const img = Object.assign(document.createElement("img"), { alt: "", src: URL.createObjectURL(f.blob) });
    li.append(img);
    return li;
  }));
}

async function correct(frames, button) {
  const cls = project.classes.find((c) => String(c.id) === classSelect.value);
  if (!cls || !frames.length) return;
  frames = [...frames]; // the ring moves on while the upload runs
  correcting = true;
  renderCorrectButtons();
  button.setAttribute("aria-busy", "true");
  const burst = newBurstId();
  const form = new FormData();
  frames.forEach((f, i) => form.append("files", f.blob, `live-${burst.slice(1, 9)}-${i + 1}.jpg`));
  form.append("burst_id", burst);
  form.append("source", "webcam");
  try {
    const result = await api.postForm(`/api/classes/${cls.id}/samples`, form);
    added += result.added.length;
    const status = correctPanel.querySelector("[data-role=correct-status]");
    status.textContent = `Added ${plural(result.added.length, "frame")} to “${cls.name}”. ` +
      (trainingJob ? "Training is running; add more, then retrain again to include them."
        : `Retrain to teach the model${added > result.added.length ? ` (${added} frames added so far)` : ""}.`);
    status.hidden = false;
    status.dataset.count = String(added);
    showAdded(frames);
    retrainBox.hidden = false;
  } catch (err) {
    showError(err, `Could not add to “${cls.name}”`);
  } finally {
    correcting = false;
    button.removeAttribute("aria-busy");
    renderCorrectButtons();
  }
}

async function retrain() {
  if (trainingJob) return;
  const job = correctPanel.querySelector("[data-role=job]");
  const bar = job.querySelector(".progress");
  const message = correctPanel.querySelector("[data-role=job-message]");
  retrainButton.disabled = true;
  let id;
  try {
    ({ job_id: id } = await api.post(`/api/projects/${project.id}/train`, { mode: "auto" }));
  } catch (err) {
    retrainButton.disabled = false;
    showError(err, "Cannot retrain");
    return;
  }
  trainingJob = id;
  added = 0;
  job.hidden = false;
  job.dataset.status = "queued";
  setProgress(bar, 0);
  message.textContent = "Waiting to start…";
  let failures = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let j;
    try {
      j = await api.get(`/api/jobs/${id}`);
      failures = 0;
    } catch (err) {
      failures += 1;
      if (failures < 20) continue;
      showError(err, "Lost track of the training");
      break;
    }
    job.dataset.status = j.status;
    setProgress(bar, j.status === "succeeded" ? 1 : j.progress);
    if (j.status === "succeeded") {
      message.textContent = paused ? "New model ready: it looks at the paused picture now."
        : "New model ready: it takes over with the next frame.";
      if (paused && still) {
        stillWanted = true; // the paused picture gets the new model's answer
        pump();
      }
      break;
    }
    if (j.status === "failed") {
      message.textContent = `Training failed: ${j.message || "no reason given"}`;
      break;
    }
    if (j.status === "cancelled") {
      message.textContent = "Training was cancelled.";
      break;
    }
    // The worker's own messages are technical; this page says how far it is, in plain words.
    message.textContent = j.status === "queued" ? "Waiting to start…"
      : `Training… ${Math.round(Math.max(0, Math.min(1, j.progress || 0)) * 100)}%`;
  }
  trainingJob = null;
  retrainButton.disabled = false;
}

classSelect.addEventListener("change", renderCorrectButtons);
addFrame.addEventListener("click", () => {
  const frame = currentFrame();
  if (frame) correct([frame], addFrame);
});
addSecond.addEventListener("click", () => correct(recentFrames(), addSecond));
retrainButton.addEventListener("click", retrain);

// ---- controls ----

pauseButton.addEventListener("click", () => setPaused(!paused));
// Space pauses and resumes, unless the key belongs to what has focus (a field, a button, a link).
const OWN_SPACE = "input, select, textarea, button, a[href], summary, [contenteditable], [role=button], " +
  "[tabindex]:not([tabindex='-1'])";
document.addEventListener("keydown", (event) => {
  if (event.key !== " " || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target instanceof Element ? event.target : null;
  if (target && target.closest(OWN_SPACE)) return;
  if (document.querySelector("dialog[open]")) return;
  event.preventDefault(); // not a page scroll
  setPaused(!paused);
});
cameraSelect.addEventListener("change", () => {
  setPaused(false);
  saveCameraId(cameraSelect.value);
  startCamera(cameraSelect.value);
});
root.querySelector("[data-action=retry]").addEventListener("click", () => {
  setPaused(false);
  startCamera();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) pump();
});
window.addEventListener("pagehide", () => {
  stopStream(stream);
  if (ws) ws.close();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) location.reload(); // back from the page cache: camera and socket are gone
});

// A slow heartbeat: rates decay when answers stop, a dead socket is replaced, and a missed wake-up
// (the video became ready, an error pause ended) restarts the loop.
setInterval(() => {
  renderRates();
  if (inFlight && ws && performance.now() - inFlight.sentAt > STUCK_MS) {
    inFlight = null;
    ws.close();
  }
  pump();
}, 250);

stats.paused = false;
if (labels.length) buildBars(labels);
connect();
startCamera();
