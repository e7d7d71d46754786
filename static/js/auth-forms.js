// Shared by the sign-in, first-account and password forms: an error line in words, and where to go next.

// Only a path on this server (the page gets a safe one; checked again so that no edit of the page's
// markup can turn the form into a redirect to another site).
export function safeNext(raw) {
  if (!raw || !raw.startsWith("/") || raw.startsWith("//") || raw.includes("\\")) return "/";
  return raw;
}

export function formError(form) {
  const box = form.querySelector("[data-role=error]");
  return {
    show(text, field = null) {
      box.textContent = text;
      box.hidden = false;
      for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
      if (field) {
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
    },
    clear() {
      box.hidden = true;
      box.textContent = "";
      for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
    },
  };
}

// A password and its repetition: the second must match, and the first be long enough (the server says 8).
export function checkNewPassword(password, again, error) {
  if (password.value.length < 8) {
    error.show("The password needs at least 8 characters.", password);
    return false;
  }
  if (password.value !== again.value) {
    error.show("The two passwords are not the same: type the new one twice.", again);
    return false;
  }
  return true;
}
