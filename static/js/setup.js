// The first account: an admin, made with the one-time code from the server's log; then to the projects.
import { api } from "./api.js";
import { checkNewPassword, formError } from "./auth-forms.js";
import { whileBusy } from "./ui.js";

const form = document.getElementById("setup-form");
const error = formError(form);
const { code, username, password, password2 } = form.elements;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.clear();
  if (!code.value.trim()) return error.show("Type the setup code from the server's log.", code);
  if (!username.value.trim()) return error.show("Choose a user name.", username);
  if (!checkNewPassword(password, password2, error)) return;
  await whileBusy(form.querySelector("button[type=submit]"), async () => {
    try {
      await api.post("/api/auth/setup", {
        code: code.value.trim(), username: username.value.trim(), password: password.value,
      });
      window.location.assign("/");
    } catch (err) {
      if (err.status === 403) error.show("Wrong setup code. Copy it from the log of snapclass serve.", code);
      else if (err.status === 409) {
        error.show("This server has an account already: sign in instead.");
        setTimeout(() => window.location.assign("/login"), 1500);
      } else if (err.status === 422) error.show(err.message, username);
      else error.show(err.message);
    }
  });
});
