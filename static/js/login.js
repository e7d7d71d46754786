// The sign-in page: POST /api/auth/login, then on to the page that asked for a login.
import { api } from "./api.js";
import { formError, safeNext } from "./auth-forms.js";
import { capitalize, whileBusy } from "./ui.js";

const form = document.getElementById("login-form");
const error = formError(form);
const { username, password } = form.elements;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.clear();
  if (!username.value.trim()) return error.show("Type your user name.", username);
  if (!password.value) return error.show("Type your password.", password);
  await whileBusy(form.querySelector("button[type=submit]"), async () => {
    try {
      await api.post("/api/auth/login", { username: username.value.trim(), password: password.value });
      window.location.assign(safeNext(form.dataset.next));
    } catch (err) {
      if (err.status === 401) {
        error.show("Wrong user name or password.", password);
        password.select();
      } else if (err.status === 429) {
        // The server says how long to wait ("too many failed tries; wait 30 s and try again").
        error.show(`Too many failed tries. ${capitalize(err.message.split("; ").pop())}.`);
      } else {
        error.show(err.message);
      }
    }
  });
});
