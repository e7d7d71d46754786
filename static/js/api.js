// Fetch helpers for the JSON API. Every failure becomes an ApiError whose message is fit to show a user.

export class ApiError extends Error {
  constructor(message, status = 0, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

const FIELD_NAMES = { batch_size: "batch size", learning_rate: "learning rate", val_fraction: "validation share" };

function validationItem(item) {
  if (!item || typeof item !== "object") return String(item);
  const loc = (item.loc || []).filter((part) => !["body", "query", "path", "form"].includes(part));
  const field = loc.map((part) => FIELD_NAMES[part] || String(part)).join(" ");
  const msg = item.msg || "is not valid";
  return field ? `${field}: ${msg}` : msg;
}

// Words for an error answer: {"detail": "..."}, FastAPI's 422 list, or just a status.
export function errorText(status, body, statusText = "") {
  const detail = body && typeof body === "object" ? body.detail : null;
  if (typeof detail === "string" && detail.trim()) return detail.trim();
  if (Array.isArray(detail) && detail.length) return detail.map(validationItem).join("; ");
  if (typeof body === "string" && body.trim() && body.length < 300) return body.trim();
  if (status === 413) return "The upload is too large for the server.";
  if (status >= 500) return `The server failed (${status}${statusText ? " " + statusText : ""}). See its log.`;
  return `The request failed (${status}${statusText ? " " + statusText : ""}).`;
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const OFFLINE = "Cannot reach the snapclass server. Is it still running?";

// A 404 on something a page shows is nearly always a delete elsewhere (another tab, another person): say so in
// words, not "class 5 was deleted, never existed…". The server's sentence names the thing (app/api/errors.py);
// "deleted while this request ran" does not, and the last /kind/id of the URL does.
const GONE_KINDS = { project: "project", class: "class", sample: "photo", model: "model", job: "training run" };
const MISSING = /^(project|class|sample|model|job) (\d+) was deleted, never existed/;
const URL_KINDS = { projects: "project", classes: "class", samples: "sample", models: "model", jobs: "job" };
const GONE_PATH = /\/api\/(projects|classes|samples|models|jobs)\/(\d+)/g;

export function goneWhat(url, body) {
  const detail = body && typeof body === "object" && typeof body.detail === "string" ? body.detail : "";
  const said = MISSING.exec(detail);
  if (said) return { kind: GONE_KINDS[said[1]], id: Number(said[2]) };
  if (!/deleted while this request ran/.test(detail)) return null;
  const found = [...new URL(url, window.location.href).pathname.matchAll(GONE_PATH)].pop();
  return found ? { kind: GONE_KINDS[URL_KINDS[found[1]]], id: Number(found[2]) } : null;
}

export const goneText = (kind) => `This ${kind} was deleted, perhaps in another tab or by someone else.`;

// The error for a failed answer; a 404 on a thing becomes plain words, and pages hear "snapclass:gone" to
// refresh what they show (static/js/feed.js).
function failure(url, status, body, statusText) {
  const gone = status === 404 ? goneWhat(url, body) : null;
  if (!gone) return new ApiError(errorText(status, body, statusText), status, body);
  const err = new ApiError(goneText(gone.kind), status, body);
  err.gone = gone;
  window.dispatchEvent(new CustomEvent("snapclass:gone", { detail: gone }));
  return err;
}

// `header`: answer with that response header instead of the body (a DELETE's X-Undo, say); `withHeaders`:
// answer `{ body, headers }` (a page of a list and its Link header).
export async function request(method, url, { json, form, signal, header, withHeaders } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(OFFLINE);
  }
  const body = response.status === 204 ? null : await readBody(response);
  if (!response.ok) throw failure(url, response.status, body, response.statusText);
  if (withHeaders) return { body, headers: response.headers };
  return header ? response.headers.get(header) : body;
}

// The rel="next" target of a Link header (RFC 8288), or null: where a paged list goes on.
export function nextLink(header) {
  for (const part of (header || "").split(",")) {
    const found = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (found && /(^|;)\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/.test(found[2])) return found[1];
  }
  return null;
}

export const api = {
  get: (url, opts) => request("GET", url, opts),
  post: (url, json, opts = {}) => request("POST", url, { ...opts, json }),
  patch: (url, json, opts = {}) => request("PATCH", url, { ...opts, json }),
  del: (url, opts) => request("DELETE", url, opts),
  postForm: (url, form, opts = {}) => request("POST", url, { ...opts, form }),
};

// Multipart POST with upload progress (fetch cannot report it). onProgress gets a fraction 0..1 of bytes sent.
export function uploadForm(url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body = xhr.responseText;
      try {
        body = body ? JSON.parse(body) : null;
      } catch {
        // keep the text
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(failure(url, xhr.status, body, xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(OFFLINE));
    xhr.onabort = () => reject(new ApiError("The upload was stopped."));
    xhr.send(form);
  });
}

// The file name in a Content-Disposition header (RFC 6266 filename* first), or null.
export function dispositionFilename(header) {
  if (!header) return null;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      // fall through to the plain form
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/.exec(header);
  return plain ? plain[1].trim() : null;
}
