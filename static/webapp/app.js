// The webapp download's page: runs model.onnx with ONNX Runtime Web (wasm) on a photo or the camera, and shows
// the answer as the snapclass server would give it. Photos are prepared exactly as the server prepares them:
// decoded without colour-profile conversion, EXIF orientation applied, resized so the shorter side is S with
// Pillow's bilinear filter (reproduced below, antialiasing and fixed-point rounding included), centre-cropped
// S×S, RGB / 255. The same pixels give the same answer as the server, not just a close one.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const UNKNOWN = "unknown"; // the server's label when a photo is unlike the training photos

  // ---- Pillow's bilinear resize (libImaging/Resample.c), 8 bits per channel ----

  const PRECISION_BITS = 22; // 32 - 8 - 2, as Pillow
  const HALF = 1 << (PRECISION_BITS - 1);
  const ONE = 1 << PRECISION_BITS;

  // Python's round(): halves go to the even neighbour (sizes are never negative here).
  function pyRound(x) {
    const r = Math.round(x);
    return x % 1 === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // Pillow's precompute_coeffs for the bilinear filter (support 1, widened by the scale when shrinking: the
  // antialiasing), then normalize_coeffs_8bpc, for the output pixels first … first + count - 1 only.
  function coefficients(inSize, outSize, first, count) {
    const scale = inSize / outSize;
    const filterscale = Math.max(scale, 1);
    const support = filterscale;
    const ksize = Math.ceil(support) * 2 + 1;
    const ss = 1 / filterscale;
    const bounds = new Int32Array(count * 2);
    const kk = new Int32Array(count * ksize);
    const k = new Float64Array(ksize);
    for (let i = 0; i < count; i++) {
      const center = (first + i + 0.5) * scale;
      let xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      let ww = 0;
      for (let x = 0; x < xmax; x++) {
        const t = Math.abs((x + xmin - center + 0.5) * ss);
        const w = t < 1 ? 1 - t : 0;
        k[x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) {
        const v = ww !== 0 ? k[x] / ww : k[x];
        kk[i * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
      }
      bounds[i * 2] = xmin;
      bounds[i * 2 + 1] = xmax;
    }
    return { bounds, kk, ksize };
  }

  const clip8 = (ss) => {
    const v = ss >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : v;
  };

  // RGBA pixels (w×h) -> RGB uint8 S×S: resize_center_crop then numpy's view of it, as app/ml/preprocess.py.
  // Only the crop is computed: each output pixel depends on its own coefficients alone, so that is exact.
  function prepare(rgba, w, h, size) {
    const scale = size / Math.min(w, h);
    const nw = Math.max(size, pyRound(w * scale));
    const nh = Math.max(size, pyRound(h * scale));
    const left = (nw - size) >> 1;
    const top = (nh - size) >> 1;

    // Pillow resizes horizontally first (into 8-bit rows), then vertically, each only when the size changes.
    const vert = nh !== h ? coefficients(h, nh, top, size) : null;
    const rowFirst = vert ? vert.bounds[0] : top;
    const rowEnd = vert ? vert.bounds[(size - 1) * 2] + vert.bounds[(size - 1) * 2 + 1] : top + size;
    const rows = rowEnd - rowFirst;
    const tmp = new Uint8Array(rows * size * 3);
    if (nw !== w) {
      const { bounds, kk, ksize } = coefficients(w, nw, left, size);
      for (let y = 0; y < rows; y++) {
        const line = (y + rowFirst) * w * 4;
        for (let i = 0; i < size; i++) {
          const xmin = bounds[i * 2];
          const xmax = bounds[i * 2 + 1];
          const k = i * ksize;
          let s0 = HALF;
          let s1 = HALF;
          let s2 = HALF;
          for (let x = 0; x < xmax; x++) {
            const p = line + (xmin + x) * 4;
            const c = kk[k + x];
            s0 += rgba[p] * c;
            s1 += rgba[p + 1] * c;
            s2 += rgba[p + 2] * c;
          }
          const o = (y * size + i) * 3;
          tmp[o] = clip8(s0);
          tmp[o + 1] = clip8(s1);
          tmp[o + 2] = clip8(s2);
        }
      }
    } else {
      for (let y = 0; y < rows; y++) {
        for (let i = 0; i < size; i++) {
          const p = ((y + rowFirst) * w + left + i) * 4;
          const o = (y * size + i) * 3;
          tmp[o] = rgba[p];
          tmp[o + 1] = rgba[p + 1];
          tmp[o + 2] = rgba[p + 2];
        }
      }
    }
    if (!vert) return tmp; // rows === size
    const out = new Uint8Array(size * size * 3);
    const { bounds, kk, ksize } = vert;
    for (let j = 0; j < size; j++) {
      const ymin = bounds[j * 2] - rowFirst;
      const ymax = bounds[j * 2 + 1];
      const k = j * ksize;
      for (let i = 0; i < size; i++) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let y = 0; y < ymax; y++) {
          const p = ((ymin + y) * size + i) * 3;
          const c = kk[k + y];
          s0 += tmp[p] * c;
          s1 += tmp[p + 1] * c;
          s2 += tmp[p + 2] * c;
        }
        const o = (j * size + i) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    return out;
  }

  // ---- Pixels from a file or the camera ----

  const canvas = document.createElement("canvas");
  // A canvas the CPU reads back: its pixels are the decoded ones, byte for byte.
  const ctx = canvas.getContext("2d", { willReadFrequently: true });

  // RGBA of a drawable (ImageBitmap or video) at its own size; transparency goes onto white, as on the server.
  function pixelsOf(source, w, h) {
    canvas.width = w;
    canvas.height = h;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(source, 0, 0, w, h);
    return ctx.getImageData(0, 0, w, h).data;
  }

  async function decodeFile(file) {
    // No colour-profile conversion (the server does none), and EXIF orientation applied (the server does too).
    return createImageBitmap(file, { colorSpaceConversion: "none", imageOrientation: "from-image" });
  }

  async function crop(blob, size) {
    const bitmap = await decodeFile(blob);
    try {
      return prepare(pixelsOf(bitmap, bitmap.width, bitmap.height), bitmap.width, bitmap.height, size);
    } finally {
      bitmap.close();
    }
  }

  // ---- The model ----

  const INV255 = Math.fround(1 / 255); // np.float32(1 / 255): the same float32 input as the server's

  let session = null;
  let meta = null;

  function toInput(rgb, size) {
    const plane = size * size;
    const data = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      data[i] = rgb[i * 3] * INV255;
      data[plane + i] = rgb[i * 3 + 1] * INV255;
      data[2 * plane + i] = rgb[i * 3 + 2] * INV255;
    }
    return new ort.Tensor("float32", data, [1, 3, size, size]);
  }

  // The server's answer body for one photo: classes by score, "unknown" below the similarity threshold.
  async function classify(rgb) {
    const size = meta.input_size;
    const out = await session.run({ input: toInput(rgb, size) });
    const probs = out.probabilities.data;
    const similarity = out.similarity ? out.similarity.data[0] : null;
    const predictions = meta.labels.map((label, i) => ({ label, score: probs[i] }))
      .sort((a, b) => b.score - a.score);
    const threshold = meta.unknown_threshold;
    const unknown = similarity !== null && threshold !== null && similarity < threshold;
    return { predictions, label: unknown ? UNKNOWN : predictions[0].label, unknown, similarity, threshold };
  }

  async function load() {
    if (location.protocol === "file:") {
      throw new Error("Open this page through a web server, not from the disk: see README.txt "
        + "(for example, run “python3 -m http.server” in this folder and open http://localhost:8000/).");
    }
    if (typeof ort === "undefined") throw new Error("ONNX Runtime Web did not load (ort/ort.wasm.min.js).");
    const response = await fetch("model.json");
    if (!response.ok) throw new Error(`model.json is missing (${response.status}).`);
    meta = await response.json();
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    // Threads need a cross-origin isolated page (COOP/COEP headers), which a plain static server does not give:
    // then one thread, said nowhere (ORT would warn about the fallback on every load).
    ort.env.wasm.numThreads = self.crossOriginIsolated
      ? Math.max(1, Math.min(4, Math.ceil((navigator.hardwareConcurrency || 2) / 2))) : 1;
    ort.env.logLevel = "error";
    session = await ort.InferenceSession.create("model.onnx", {
      executionProviders: ["wasm"], graphOptimizationLevel: "all",
    });
  }

  // ---- On screen ----

  const percent = (p) => `${(p * 100).toFixed(p >= 0.995 || p < 0.005 ? 0 : 1)}%`;

  function status(text, state) {
    const el = $("status");
    el.textContent = text;
    el.dataset.state = state;
  }

  function render(result) {
    const answer = $("answer");
    const best = result.predictions[0];
    const strong = document.createElement("strong");
    // The contract: the current top answer carries data-top-label, the server's `label` for the same photo.
    strong.dataset.topLabel = result.label;
    if (result.unknown) {
      strong.textContent = "None of these";
      const closest = Object.assign(document.createElement("span"), {
        className: "closest", textContent: `It looks most like ${best.label} (${percent(best.score)}), `
          + "but not enough like any of the photos it learned from.",
      });
      answer.replaceChildren(strong, closest);
    } else {
      strong.textContent = best.label;
      answer.replaceChildren("It looks like ", strong, ` (${percent(best.score)})`);
    }
    answer.dataset.unknown = String(result.unknown);
    answer.dataset.similarity = String(result.similarity);
    const bars = $("bars");
    bars.dataset.unknown = String(result.unknown);
    bars.replaceChildren(...result.predictions.map((p, i) => bar(p, i === 0)));
  }

  function bar(prediction, isTop) {
    const li = document.createElement("li");
    li.className = isTop ? "bar bar-top" : "bar";
    li.dataset.label = prediction.label;
    li.dataset.score = String(prediction.score);
    const name = Object.assign(document.createElement("span"), { className: "bar-label",
      textContent: prediction.label, title: prediction.label });
    const track = Object.assign(document.createElement("div"), { className: "bar-track" });
    track.setAttribute("role", "meter");
    track.setAttribute("aria-label", prediction.label);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", (prediction.score * 100).toFixed(1));
    const fill = Object.assign(document.createElement("div"), { className: "bar-fill" });
    fill.style.width = `${(prediction.score * 100).toFixed(2)}%`;
    track.append(fill);
    const value = Object.assign(document.createElement("span"), { className: "bar-value",
      textContent: percent(prediction.score) });
    li.append(name, track, value);
    return li;
  }

  function clearAnswer(text) {
    const answer = $("answer");
    answer.textContent = text;
    delete answer.dataset.unknown;
    $("bars").replaceChildren();
  }

  // ---- Photo ----

  let photoRun = 0; // the latest photo wins when several are picked quickly

  async function classifyFile(file) {
    if (!file) return;
    const run = ++photoRun;
    const drop = $("drop");
    const preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    drop.dataset.hasPhoto = "true";
    $("drop-text").firstElementChild.textContent = "Choose another photo";
    if (!session) return; // classified once the model is ready
    status("Looking…", "busy");
    try {
      const result = await classify(await crop(file, meta.input_size));
      if (run !== photoRun) return;
      render(result);
      status("Ready", "ready");
    } catch (err) {
      if (run !== photoRun) return;
      clearAnswer("");
      status(`That file cannot be read as a photo (${err.message || err}).`, "error");
    }
  }

  function initPhoto() {
    const input = $("file");
    const drop = $("drop");
    input.addEventListener("change", () => classifyFile(input.files[0]));
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.dataset.over = "true";
    });
    drop.addEventListener("dragleave", () => delete drop.dataset.over);
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      delete drop.dataset.over;
      const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"))
        || event.dataTransfer.files[0];
      classifyFile(file);
    });
  }

  // ---- Camera ----

  let stream = null;
  let facing = "environment";
  let looping = false;

  async function startCamera() {
    const video = $("video");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status("This browser gives no camera here: the camera needs https (or http://localhost).", "error");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: facing }, audio: false });
    } catch (err) {
      status(err.name === "NotAllowedError" ? "The camera was not allowed. Allow it in the browser to use it."
        : `No camera could be started (${err.message || err.name}).`, "error");
      return;
    }
    video.srcObject = stream;
    const settings = stream.getVideoTracks()[0].getSettings();
    video.dataset.mirror = String(settings.facingMode !== "environment");
    await video.play();
    $("video-off").hidden = true;
    $("camera-toggle").textContent = "Stop the camera";
    const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    $("camera-switch").hidden = cameras.length < 2;
    status("Ready", "ready");
    loop();
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    const video = $("video");
    video.srcObject = null;
    $("video-off").hidden = false;
    $("camera-toggle").textContent = "Start the camera";
    $("camera-switch").hidden = true;
  }

  // One frame at a time, each as soon as the previous answer is on screen.
  async function loop() {
    if (looping) return;
    looping = true;
    const video = $("video");
    try {
      while (stream && session) {
        if (video.readyState >= 2 && video.videoWidth && !document.hidden) {
          const w = video.videoWidth;
          const h = video.videoHeight;
          const result = await classify(prepare(pixelsOf(video, w, h), w, h, meta.input_size));
          if (stream) render(result);
        }
        await new Promise((resolve) => requestAnimationFrame(resolve));
      }
    } catch (err) {
      status(`The camera images could not be classified (${err.message || err}).`, "error");
    } finally {
      looping = false;
    }
  }

  function initCamera() {
    $("camera-toggle").addEventListener("click", () => (stream ? stopCamera() : startCamera()));
    $("camera-switch").addEventListener("click", () => {
      facing = facing === "environment" ? "user" : "environment";
      stopCamera();
      startCamera();
    });
  }

  // ---- Modes ----

  function setMode(mode) {
    for (const button of document.querySelectorAll("[data-mode]")) {
      button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    }
    $("photo-panel").hidden = mode !== "photo";
    $("camera-panel").hidden = mode !== "camera";
    if (mode === "photo") {
      stopCamera();
      clearAnswer("Pick a photo to see what it is.");
      const file = $("file").files[0];
      if (file) classifyFile(file);
    } else {
      clearAnswer("Start the camera and point it at something.");
      if (session) startCamera();
    }
  }

  async function main() {
    initPhoto();
    initCamera();
    for (const button of document.querySelectorAll("[data-mode]")) {
      button.addEventListener("click", () => setMode(button.dataset.mode));
    }
    status("Loading the model…", "loading");
    try {
      await load();
    } catch (err) {
      status(`The model could not be loaded: ${err.message || err}`, "error");
      return;
    }
    status("Ready", "ready");
    document.body.dataset.ready = "true";
    const file = $("file").files[0];
    if (file) classifyFile(file);
    if (!$("camera-panel").hidden) startCamera();
  }

  // For checking the preparation against the server's, byte for byte (tests/browser/test_webapp.py).
  window.snapclassWebapp = { prepare, crop: async (blob, size) => Array.from(await crop(blob, size)) };

  main();
})();
