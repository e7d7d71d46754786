// The "Try it" panel: the current model on the webcam (bars that move with the picture) or on one photo,
// each class's bar in its colour, or "None of these" when the picture is unlike the training images; the
// threshold for that is adjustable. A model trained on the page takes over without a reload.
import { api } from "./api.js";
import { colorMap, renderBars, renderTop } from "./bars.js";
import { attach, grabFrame, openCamera, savedCameraId, stopStream, videoReady } from "./camera.js";
import { capitalize, events, makeDropZone, showError, toast } from "./ui.js";

const SAVE_DELAY_MS = 350;
const fixed = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(2));
// Webcam frames go over the live page's WebSocket, one in flight at a time, at most this often: several
// answers a second feel live, and the rest of the CPU is left to training and the page.
const FRAME_GAP_MS = 110;
const JPEG_QUALITY = 0.8;
const TICK_MS = 250; // a missed wake-up (the video became ready, the socket opened) restarts the loop
const STUCK_MS = 15000; // no answer for this long: the socket is dead even if it looks open
const ERROR_PAUSE_MS = 1000;
const RATE_WINDOW_MS = 2000;

export function initPredict(project) {
  const panel = document.getElementById("predict-panel");
  const $ = (role) => panel.querySelector(`[data-role=${role}]`);
  const input = $("file-input");
  const choose = panel.querySelector("[data-action=choose]");
  const preview = $("preview");
  const liveLink = $("live-link");
  let hasModel = Boolean(project.model);
  let mode = "file";
  let current = null; // the photo on show, classified again when a new model arrives
  let previewUrl = null;
  let seq = 0;
  let model = null;
  let last = null; // the answer on show
  let colors = colorMap(project.classes);
  const colorById = new Map(project.classes.map((c) => [c.id, c.color]));
  const threshold = initThreshold();
  const camera = initCamera();

  function setModel(m, { fresh = false } = {}) {
    model = m;
    hasModel = Boolean(m);
    threshold.show(m);
    panel.dataset.state = hasModel ? "ready" : "no-model";
    $("no-model").hidden = hasModel;
    choose.disabled = !hasModel;
    if (hasModel) liveLink.removeAttribute("aria-disabled");
    else liveLink.setAttribute("aria-disabled", "true");
    const note = $("fresh");
    note.hidden = !(fresh && hasModel);
    if (fresh && hasModel) {
      note.textContent = `Try your new model (v${m.version}): show it something on the webcam, or choose a photo.`;
      panel.classList.remove("is-fresh");
      void panel.offsetWidth; // restart the highlight
      panel.classList.add("is-fresh");
    }
    if (!hasModel) clear();
    if (hasModel && mode === "file" && current) classify(current);
    camera.sync();
  }

  // Colours by class name: the model's labels are the class names it was trained with.
  function setClasses(classes) {
    for (const c of classes) if (c.color) colorById.set(c.id, c.color);
    colors = new Map(classes.filter((c) => colorById.get(c.id)).map((c) => [c.name, colorById.get(c.id)]));
    if (last) render(last);
  }

  async function classify(file) {
    current = file;
    $("fresh").hidden = true;
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
      if (mine === seq && mode === "file") render(result);
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

  // `cut` previews a threshold the slider is on before the server has it. On the webcam the bars keep
  // their places (the model's label order); for a photo they are sorted by score.
  function render(result, cut = result.unknown_threshold) {
    last = result;
    const unknown = cut === undefined || cut === null || result.similarity === null
      ? result.unknown : result.similarity < cut;
    renderTop($("top"), result, unknown);
    renderBars($("bars"), result, unknown, { colors, order: mode === "webcam" && model ? model.labels : null });
    const line = $("similarity");
    line.hidden = result.similarity === null || result.similarity === undefined;
    line.textContent = `Similarity to the training images ${fixed(result.similarity)}, `
      + `“none of these” below ${fixed(cut)}`;
  }

  function setMode(next) {
    if (next === mode) return;
    mode = next;
    panel.dataset.mode = mode;
    for (const b of panel.querySelectorAll(".seg")) {
      b.setAttribute("aria-pressed", String(b.dataset.action === `mode-${mode}`));
    }
    $("dropzone").hidden = mode !== "file";
    $("webcam").hidden = mode !== "webcam";
    // Live answers change several times a second: announced, they would drown everything else out.
    $("result").setAttribute("aria-live", mode === "webcam" ? "off" : "polite");
    seq += 1; // a photo's answer still on its way belongs to the other mode
    delete panel.dataset.busy;
    clear();
    if (mode === "webcam") camera.choose();
    else if (current) classify(current);
    camera.sync();
  }

  // The webcam: open only while Webcam is chosen, a model exists, the user has not stopped it and the page
  // is on screen (a hidden tab or a page left behind turns the camera light off).
  function initCamera() {
    const video = $("video");
    const canvas = document.createElement("canvas");
    const frameSide = Math.min(720, Math.max(64, project.input_size || 288)); // the server's resize is a no-op
    const stats = { frames: 0, errors: 0, opened: 0 };
    window.__previewStats = stats; // what the tests read
    let stream = null;
    let opening = 0;
    let stopped = false; // by the Stop button
    let ws = null;
    let inFlight = 0; // performance.now() when the frame on its way was sent
    let lastSent = 0;
    let holdUntil = 0;
    let backoff = 500;
    let tick = 0;
    let reconnect = 0;
    let gapTimer = 0;
    const answeredAt = [];

    const wanted = () => mode === "webcam" && hasModel && !stopped && !document.hidden;

    function showState(state) {
      panel.dataset.camera = state; // off | starting | on | error
      $("starting").hidden = state !== "starting";
      $("idle").hidden = state !== "off";
      $("idle-text").textContent = hasModel ? "The camera is off." : "Once a model is trained, the camera starts here.";
      video.hidden = state !== "on";
      panel.querySelector("[data-action=stop-camera]").hidden = state !== "on" && state !== "starting";
      panel.querySelector("[data-action=start-camera]").hidden = !(state === "off" && stopped && hasModel);
      if (state !== "error") $("error").hidden = true;
      if (state !== "on") $("rate").textContent = "";
    }

    async function start() {
      const mine = ++opening;
      showState("starting");
      try {
        const next = await openCamera(savedCameraId()); // the camera chosen on the live page
        if (mine !== opening || !wanted()) {
          stopStream(next);
          return;
        }
        stream = next;
        stats.opened += 1;
        await attach(video, stream);
        if (mine !== opening) return;
        showState("on");
        connect();
        clearInterval(tick);
        tick = setInterval(heartbeat, TICK_MS);
      } catch (err) {
        if (mine !== opening) return;
        stopStream(stream);
        stream = null;
        showState("error");
        $("error-text").textContent = err.message;
        $("error").hidden = false;
      }
    }

    function stop() {
      opening += 1;
      clearInterval(tick);
      clearTimeout(reconnect);
      clearTimeout(gapTimer);
      stopStream(stream);
      stream = null;
      video.srcObject = null;
      if (ws) {
        const socket = ws;
        ws = null;
        socket.close();
      }
      inFlight = 0;
      answeredAt.length = 0;
      showState("off");
    }

    function sync() {
      if (wanted() && !stream && panel.dataset.camera !== "starting" && panel.dataset.camera !== "error") start();
      else if (!wanted() && (stream || panel.dataset.camera === "starting")) stop();
      else if (!wanted()) showState(panel.dataset.camera === "error" && mode === "webcam" ? "error" : "off");
    }

    function connect() {
      clearTimeout(reconnect);
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/api/projects/${project.id}/live`);
      ws = socket;
      socket.addEventListener("open", () => {
        if (ws === socket) pump();
      });
      socket.addEventListener("message", (event) => {
        if (ws !== socket) return;
        inFlight = 0;
        let answer;
        try {
          answer = JSON.parse(event.data);
        } catch {
          answer = { error: "the server sent something that is not JSON" };
        }
        onAnswer(answer);
        pump();
      });
      socket.addEventListener("close", () => {
        if (ws !== socket) return;
        ws = null;
        inFlight = 0;
        if (!stream) return;
        reconnect = setTimeout(() => stream && connect(), backoff);
        backoff = Math.min(backoff * 2, 10000);
      });
    }

    function pump() {
      if (inFlight || !stream || !ws || ws.readyState !== WebSocket.OPEN || document.hidden) return;
      if (!videoReady(video) || mode !== "webcam") return;
      const now = performance.now();
      const wait = Math.max(holdUntil, lastSent + FRAME_GAP_MS) - now;
      if (wait > 0) {
        clearTimeout(gapTimer);
        gapTimer = setTimeout(pump, wait);
        return;
      }
      const socket = ws;
      inFlight = now;
      lastSent = now;
      grabFrame(video, canvas, { shortSide: frameSide, quality: JPEG_QUALITY }).then((blob) => {
        if (ws !== socket || socket.readyState !== WebSocket.OPEN) {
          inFlight = 0;
          return;
        }
        socket.send(blob);
      }, (err) => {
        console.error(err);
        inFlight = 0;
      });
    }

    function heartbeat() {
      if (inFlight && ws && performance.now() - inFlight > STUCK_MS) {
        inFlight = 0;
        ws.close();
      }
      renderRate();
      pump();
    }

    function onAnswer(answer) {
      const now = performance.now();
      if (answer.error) {
        stats.errors += 1;
        holdUntil = now + ERROR_PAUSE_MS;
        $("rate").textContent = capitalize(answer.error);
        return;
      }
      backoff = 500;
      stats.frames += 1;
      stats.last = answer;
      panel.dataset.frames = String(stats.frames);
      answeredAt.push(now);
      while (answeredAt.length && answeredAt[0] < now - RATE_WINDOW_MS) answeredAt.shift();
      if (mode === "webcam") render(answer);
      renderRate();
    }

    function renderRate() {
      if (!stream) return;
      const now = performance.now();
      const recent = answeredAt.filter((t) => t >= now - RATE_WINDOW_MS);
      const rate = recent.length < 2 ? 0 : (recent.length - 1) / ((recent.at(-1) - recent[0]) / 1000);
      stats.rate = rate;
      if (holdUntil > now) return; // an error is on show
      $("rate").textContent = rate ? `Live · ${rate.toFixed(1)} a second` : "Live";
    }

    panel.querySelector("[data-action=stop-camera]").addEventListener("click", () => {
      stopped = true;
      stop();
    });
    panel.querySelector("[data-action=start-camera]").addEventListener("click", () => {
      stopped = false;
      sync();
    });
    panel.querySelector("[data-action=retry]").addEventListener("click", () => {
      stopped = false;
      start();
    });
    document.addEventListener("visibilitychange", sync);
    window.addEventListener("pagehide", stop);
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) sync(); // back from the page cache: the camera was closed on leaving
    });
    // Choosing Webcam again is asking for the camera again, also after Stop.
    const choose = () => {
      stopped = false;
      if (panel.dataset.camera === "error") showState("off");
    };
    showState("off");
    return { sync, choose };
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
        if (current && mode === "file") classify(current); // the webcam's next frame uses it anyway
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
    if (mode !== "file") {
      current = null; // not asked again on the way: this one is next
      setMode("file");
    }
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
  panel.querySelector("[data-action=mode-webcam]").addEventListener("click", () => setMode("webcam"));
  panel.querySelector("[data-action=mode-file]").addEventListener("click", () => setMode("file"));
  makeDropZone(panel, take, { enabled: () => hasModel });
  // The Train panel (training.js) announces a finished job with the new model.
  events.on("model-changed", async (m) => {
    setModel(m, { fresh: true });
    try {
      setClasses((await api.get(`/api/projects/${project.id}`)).classes); // classes added since the page loaded
    } catch {
      // the bars keep the colours they have
    }
  });
  events.on("classes-changed", setClasses);
  setModel(project.model);
}
