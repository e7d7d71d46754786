// The public share page: anyone with the link tries the project's current model on a photo (picked or
// dropped) or the webcam. Webcam frames go one at a time (never more than one request in flight).
import { api } from "./api.js";
import { renderBars, renderTop } from "./bars.js";
import { attach, cameraError, grabFrame, openCamera, stopStream, videoReady } from "./camera.js";
import { guardWindowDrops, makeDropZone, showError, toast } from "./ui.js";

const share = JSON.parse(document.getElementById("share-data").textContent);
const root = document.getElementById("share");
const result = document.getElementById("share-result");
const $ = (role, el = root) => el.querySelector(`[data-role=${role}]`);
const preview = $("preview");
const input = $("file-input");
const video = $("video");
const canvas = document.createElement("canvas");

const FRAME_GAP_MS = 150; // a breath between frames: a phone on mobile data is not flooded
let previewUrl = null;
let seq = 0;
let stream = null;
let cameraOn = false;

function show(answer) {
  $("waiting", result).hidden = true;
  renderTop($("top", result), answer, answer.unknown);
  renderBars($("bars", result), answer, answer.unknown, { colors: share.colors }); // label -> class colour
}

async function predict(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  return api.postForm(share.predict_url, form);
}

// --- a photo ---

async function classify(file) {
  setMode("photo");
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  preview.src = previewUrl;
  preview.hidden = false;
  const mine = ++seq;
  result.dataset.busy = "true";
  $("status", result).textContent = "Looking…";
  try {
    const answer = await predict(file, file.name);
    if (mine === seq) {
      show(answer);
      $("status", result).textContent = "";
    }
  } catch (err) {
    if (mine === seq) $("status", result).textContent = "";
    showError(err, err.status === 404 ? "This link was turned off" : "Could not classify the photo");
  } finally {
    if (mine === seq) delete result.dataset.busy;
  }
}

function take(files) {
  const images = files.filter((f) => f.size > 0);
  if (!images.length) return;
  if (images.length > 1) toast("Trying the first photo only.", "info");
  classify(images[0]);
}

// --- the webcam ---

async function startCamera() {
  $("error").hidden = true;
  $("starting").hidden = false;
  try {
    stream = await openCamera();
    if (root.dataset.mode !== "webcam") return stopCamera(); // switched back meanwhile
    await attach(video, stream);
    $("starting").hidden = true;
    cameraOn = true;
    $("status", result).textContent = "Live: every frame is classified as it arrives.";
    loop();
  } catch (err) {
    const error = cameraError(err);
    $("starting").hidden = true;
    $("error-text").textContent = error.message;
    $("error").hidden = false;
  }
}

function stopCamera() {
  cameraOn = false;
  stopStream(stream);
  stream = null;
  video.srcObject = null;
}

async function loop() {
  while (cameraOn) {
    if (!document.hidden && videoReady(video)) {
      const mine = ++seq;
      try {
        const frame = await grabFrame(video, canvas);
        const answer = await predict(frame, "frame.jpg");
        if (mine === seq && cameraOn) show(answer);
      } catch (err) {
        if (!cameraOn) break;
        stopCamera();
        $("status", result).textContent = "";
        showError(err, "The webcam test stopped");
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, FRAME_GAP_MS));
  }
}

function setMode(mode) {
  if (root.dataset.mode === mode) return;
  root.dataset.mode = mode;
  for (const b of root.querySelectorAll(".seg")) {
    b.setAttribute("aria-pressed", String(b.dataset.action === `mode-${mode}`));
  }
  $("dropzone").hidden = mode !== "photo";
  $("webcam").hidden = mode !== "webcam";
  seq += 1; // an answer still on its way belongs to the other mode
  if (mode === "webcam") startCamera();
  else {
    stopCamera();
    $("status", result).textContent = "";
  }
}

root.querySelector("[data-action=mode-photo]").addEventListener("click", () => setMode("photo"));
root.querySelector("[data-action=mode-webcam]").addEventListener("click", () => setMode("webcam"));
root.querySelector("[data-action=retry]").addEventListener("click", startCamera);
root.querySelector("[data-action=choose]").addEventListener("click", () => input.click());
input.addEventListener("change", () => {
  const files = [...input.files];
  input.value = "";
  take(files);
});
guardWindowDrops();
makeDropZone(root, take);
document.addEventListener("visibilitychange", () => {
  // A hidden tab keeps no camera open (the light on the laptop goes off); coming back opens it again.
  if (root.dataset.mode !== "webcam") return;
  if (document.hidden) stopCamera();
  else if (!cameraOn) startCamera();
});
