// Your account: change the password; make, list and revoke API tokens (a new token is shown once).
import { api } from "./api.js";
import { checkNewPassword, formError } from "./auth-forms.js";
import { copyText, formatTime } from "./accounts-ui.js";
import { confirmDialog, showError, toast, whileBusy } from "./ui.js";

function initPassword() {
  const form = document.getElementById("password-form");
  const error = formError(form);
  const { current, password, password2 } = form.elements;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    if (!current.value) return error.show("Type your current password.", current);
    if (!checkNewPassword(password, password2, error)) return;
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        await api.post("/api/auth/password", { current_password: current.value, new_password: password.value });
        form.reset();
        toast("Password changed. Other browsers signed in as you are signed out.", "success");
      } catch (err) {
        if (err.status === 403) error.show("The current password is wrong.", current);
        else error.show(err.message);
      }
    });
  });
}

function initTokens() {
  const panel = document.getElementById("tokens");
  const $ = (role) => panel.querySelector(`[data-role=${role}]`);
  const form = document.getElementById("token-form");
  const secretBox = $("new-token");
  const secret = $("token-value");

  function row(token) {
    const tr = document.createElement("tr");
    tr.dataset.testid = "token-row";
    tr.dataset.tokenId = String(token.id);
    const cells = [token.name, `${token.prefix}…`, formatTime(token.created_at),
      token.last_used_at ? formatTime(token.last_used_at) : "never"];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 1) td.className = "mono";
      if (i === 0) td.dataset.label = "Name";
      tr.append(td);
    }
    const td = document.createElement("td");
    td.className = "cell-actions";
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "btn btn-ghost btn-sm danger-text";
    revoke.textContent = "Revoke";
    revoke.dataset.testid = "revoke-token";
    revoke.setAttribute("aria-label", `Revoke the token ${token.name}`);
    revoke.addEventListener("click", () => remove(token, revoke));
    td.append(revoke);
    tr.append(td);
    return tr;
  }

  async function load() {
    try {
      const tokens = await api.get("/api/tokens");
      $("tokens").replaceChildren(...tokens.map(row));
      $("no-tokens").hidden = tokens.length > 0;
      panel.querySelector("table").hidden = tokens.length === 0;
    } catch (err) {
      showError(err, "Could not list your tokens");
    }
  }

  async function remove(token, button) {
    const ok = await confirmDialog({
      title: `Revoke “${token.name}”?`,
      text: "Scripts using it are refused from now on. This cannot be undone.",
      ok: "Revoke token",
    });
    if (!ok) return;
    await whileBusy(button, async () => {
      try {
        await api.del(`/api/tokens/${token.id}`);
        toast(`Revoked “${token.name}”.`, "success");
        await load();
      } catch (err) {
        showError(err, "Could not revoke the token");
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    if (!name) {
      toast("Give the token a name: what is it for?", "error");
      form.elements.name.focus();
      return;
    }
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        const created = await api.post("/api/tokens", { name });
        form.reset();
        secret.value = created.token;
        secretBox.hidden = false;
        secret.focus();
        secret.select();
        await load();
      } catch (err) {
        showError(err, "Could not create the token");
      }
    });
  });
  secretBox.querySelector("[data-action=copy]").addEventListener("click", () => copyText(secret));
  secretBox.querySelector("[data-action=dismiss]").addEventListener("click", () => {
    secret.value = "";
    secretBox.hidden = true;
  });
  load();
}

initPassword();
initTokens();
