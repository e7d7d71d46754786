// Helpers for the account, admin and share pieces: copying a secret, dates in the reader's own terms.
import { toast } from "./ui.js";

// Copy an <input>'s text. The Clipboard API needs a secure page; elsewhere the old way still works.
export async function copyText(input, what = "Copied.") {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.focus();
    input.select();
    if (!document.execCommand("copy")) {
      toast("Could not copy: select the text and copy it yourself.", "error");
      return;
    }
  }
  toast(what, "success");
}

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatTime(iso, { time = true } = {}) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return (time ? DATE_TIME : DATE).format(date);
}
