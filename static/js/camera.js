// The webcam, shared by the recorder (project page) and the live page: open a camera, list cameras,
// grab a frame as a JPEG, and say in words why a camera could not be opened.
//
// Frames are captured as the camera sees them (not mirrored); only the on-screen preview is mirrored,
// like a mirror, so training frames and live frames always match.

const CAMERA_KEY = "snapclass.camera";

export class CameraError extends Error {
  constructor(message, reason) {
    super(message);
    this.name = "CameraError";
    this.reason = reason; // "insecure" | "refused" | "missing" | "busy" | "failed"
  }
}

export function cameraSupported() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

// Words for a getUserMedia failure, fit to show a user.
export function cameraError(err) {
  if (err instanceof CameraError) return err;
  const name = (err && err.name) || "";
  if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") {
    return new CameraError(
      "Camera access was refused. Allow it in the browser's site settings and try again.", "refused");
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return new CameraError("No camera found.", "missing");
  }
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
    return new CameraError(
      "The camera could not be started: another app may be using it. Close that app and try again.", "busy");
  }
  const detail = err && err.message ? `: ${err.message}` : "";
  return new CameraError(`The camera could not be started (${name || "unknown error"}${detail}).`, "failed");
}

function insecure() {
  return new CameraError(
    "The camera only works on a secure page: open snapclass over https, or as http://localhost on the " +
    "computer it runs on.", "insecure");
}

export function savedCameraId() {
  try {
    return localStorage.getItem(CAMERA_KEY) || "";
  } catch {
    return "";
  }
}

export function saveCameraId(id) {
  try {
    if (id) localStorage.setItem(CAMERA_KEY, id);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

// A 640x480-ish stream from the chosen camera (or the browser's default). Throws a CameraError.
export async function openCamera(deviceId = "") {
  if (!cameraSupported()) throw insecure();
  const video = { width: { ideal: 640 }, height: { ideal: 480 } };
  try {
    if (deviceId) {
      try {
        return await navigator.mediaDevices.getUserMedia({ video: { ...video, deviceId: { exact: deviceId } }, audio: false });
      } catch (err) {
        // The remembered camera is gone (unplugged, another browser profile): fall back to any camera.
        if (err.name !== "OverconstrainedError" && err.name !== "NotFoundError") throw err;
      }
    }
    return await navigator.mediaDevices.getUserMedia({ video, audio: false });
  } catch (err) {
    throw cameraError(err);
  }
}

export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

// The video inputs; their labels are known once the user has allowed a camera.
export async function listCameras() {
  if (!cameraSupported() || !navigator.mediaDevices.enumerateDevices) return [];
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.filter((d) => d.kind === "videoinput");
  } catch {
    return [];
  }
}

// Fill a <select> with the cameras and show it only when there is a choice to make.
export function renderCameraPicker(select, cameras, activeId) {
  select.replaceChildren(...cameras.map((camera, i) => {
    const option = document.createElement("option");
    option.value = camera.deviceId;
    option.textContent = camera.label || `Camera ${i + 1}`;
    return option;
  }));
  if (activeId && cameras.some((c) => c.deviceId === activeId)) select.value = activeId;
  const field = select.closest("[data-role=camera-field]") || select;
  field.hidden = cameras.length < 2;
}

// Show a stream in a <video>; resolves once frames arrive. A rear camera is not mirrored.
export async function attach(video, stream) {
  video.srcObject = stream;
  video.muted = true;
  video.playsInline = true;
  const track = stream.getVideoTracks()[0];
  const settings = track && track.getSettings ? track.getSettings() : {};
  video.classList.toggle("mirrored", settings.facingMode !== "environment");
  if (video.readyState < 2) {
    await new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
  }
  const box = video.closest(".camera-box");
  if (box && video.videoWidth && video.videoHeight) {
    box.style.setProperty("--ar", String(video.videoWidth / video.videoHeight));
  }
  try {
    await video.play();
  } catch {
    // autoplay of a muted stream is allowed; if not, the first frame still shows
  }
  return track ? track.getSettings().deviceId || "" : "";
}

export function videoReady(video) {
  return video.readyState >= 2 && video.videoWidth > 0 && video.videoHeight > 0;
}

// The current video frame as a JPEG Blob, scaled so that its shorter side is `shortSide` (never enlarged).
export function grabFrame(video, canvas, { shortSide = 360, quality = 0.9 } = {}) {
  const w = video.videoWidth;
  const h = video.videoHeight;
  const scale = Math.min(1, shortSide / Math.min(w, h));
  const cw = Math.round(w * scale);
  const ch = Math.round(h * scale);
  if (canvas.width !== cw) canvas.width = cw;
  if (canvas.height !== ch) canvas.height = ch;
  const ctx = canvas.getContext("2d", { alpha: false });
  ctx.drawImage(video, 0, 0, cw, ch);
  // toBlob copies the bitmap now, so the canvas can be drawn on again before it resolves.
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the frame could not be encoded"))),
      "image/jpeg", quality);
  });
}

// One id per press of the record button (the server keeps a burst whole: one side of a validation split, one cross-validation fold).
export function newBurstId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "b" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
