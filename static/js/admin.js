// Accounts, for admins: list; create one or a class list (generated passwords shown once, printable);
// reset a password; make or unmake admin; remove (their projects move to the admin who removes them).
import { api } from "./api.js";
import { formError } from "./auth-forms.js";
import { copyText, formatTime } from "./accounts-ui.js";
import { confirmDialog, plural, showError, toast, whileBusy } from "./ui.js";

const panel = document.getElementById("users");
const $ = (role, root = panel) => root.querySelector(`[data-role=${role}]`);
const me = panel.dataset.me;
const local = panel.dataset.local === "true";
const NAME_RE = /^[\p{L}\p{N}_.@+-]{1,64}$/u; // the server's rule (Python's \w is letters, digits and _)

// --- a password shown once (one account made or reset) ---

const shown = $("password-shown");
function showPassword(title, password) {
  $("password-title", shown).textContent = title;
  $("password-value", shown).value = password;
  shown.hidden = false;
  shown.scrollIntoView({ block: "nearest" });
  $("password-value", shown).select();
}
shown.querySelector("[data-action=copy]").addEventListener("click", () => copyText($("password-value", shown)));
shown.querySelector("[data-action=dismiss]").addEventListener("click", () => {
  $("password-value", shown).value = "";
  shown.hidden = true;
});

// --- the list ---

function button(text, testid, label, onClick, cls = "btn btn-ghost btn-sm") {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.dataset.testid = testid;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", () => onClick(b));
  return b;
}

function row(user) {
  const tr = document.createElement("tr");
  tr.dataset.testid = "user-row";
  tr.dataset.username = user.username;
  const isMe = !local && user.username === me;
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = user.username;
  if (isMe) name.append(Object.assign(document.createElement("span"), { className: "muted", textContent: " (you)" }));
  const admin = document.createElement("td");
  admin.textContent = user.is_admin ? "admin" : "–";
  admin.dataset.testid = "user-admin";
  admin.className = user.is_admin ? "is-admin" : "not-admin";
  const projects = document.createElement("td");
  projects.textContent = String(user.project_count);
  projects.className = "num";
  // The unit shows where the table is laid out as cards (a phone), without the column heading.
  projects.append(Object.assign(document.createElement("span"), {
    className: "cell-unit", textContent: user.project_count === 1 ? " project" : " projects" }));
  const created = document.createElement("td");
  created.textContent = formatTime(user.created_at, { time: false });
  const actions = document.createElement("td");
  actions.className = "cell-actions";
  if (isMe) {
    // Your own password is changed on the Account page; removing or demoting yourself here would lock you out.
    const link = Object.assign(document.createElement("a"), { href: "/account", textContent: "Your account" });
    link.className = "btn btn-ghost btn-sm";
    actions.append(link);
  } else {
    actions.append(
      button("Reset password", "reset-password", `Set a new password for ${user.username}`, (b) => reset(user, b)),
      button(user.is_admin ? "Unmake admin" : "Make admin", "toggle-admin",
        `${user.is_admin ? "Take admin rights from" : "Make admin:"} ${user.username}`, (b) => toggleAdmin(user, b)),
      button("Remove", "remove-user", `Remove ${user.username}`, (b) => remove(user, b),
        "btn btn-ghost btn-sm danger-text"),
    );
  }
  tr.append(name, admin, projects, created, actions);
  return tr;
}

async function load() {
  try {
    const users = await api.get("/api/users");
    $("users").replaceChildren(...users.map(row));
    $("no-users").hidden = users.length > 0;
    panel.querySelector("table").hidden = users.length === 0;
    $("count").textContent = plural(users.length, "account");
  } catch (err) {
    showError(err, "Could not list the accounts");
  }
}

async function reset(user, b) {
  const ok = await confirmDialog({
    title: `New password for ${user.username}?`,
    text: "The old one stops working and they are signed out everywhere. The new one is shown to you once.",
    ok: "Set a new password",
  });
  if (!ok) return;
  await whileBusy(b, async () => {
    try {
      const out = await api.post(`/api/users/${encodeURIComponent(user.username)}/password`, {});
      showPassword(`New password for ${out.username}:`, out.password);
    } catch (err) {
      showError(err, `Could not reset the password of ${user.username}`);
    }
  });
}

async function toggleAdmin(user, b) {
  await whileBusy(b, async () => {
    try {
      await api.patch(`/api/users/${encodeURIComponent(user.username)}`, { is_admin: !user.is_admin });
      toast(`${user.username} is ${user.is_admin ? "no longer an admin" : "now an admin"}.`, "success");
      await load();
    } catch (err) {
      showError(err, `Could not change ${user.username}`);
    }
  });
}

async function remove(user, b) {
  const projects = user.project_count
    ? `Their ${plural(user.project_count, "project")} ${user.project_count === 1 ? "moves" : "move"} to you`
      + (local ? " (the first admin)" : "") + ", with every photo and model."
    : "They own no projects.";
  const ok = await confirmDialog({
    title: `Remove ${user.username}?`,
    text: `${projects} They can no longer sign in, and their tokens stop working.`,
    ok: "Remove account",
  });
  if (!ok) return;
  await whileBusy(b, async () => {
    try {
      await api.del(`/api/users/${encodeURIComponent(user.username)}`);
      toast(`Removed ${user.username}.`, "success");
      await load();
    } catch (err) {
      showError(err, `Could not remove ${user.username}`);
    }
  });
}

// --- one new account ---

const userForm = document.getElementById("user-form");
const userError = formError(userForm);
userForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  userError.clear();
  const { username, password, is_admin: isAdmin } = userForm.elements;
  const name = username.value.trim();
  if (!NAME_RE.test(name)) {
    return userError.show("A user name is 1 to 64 letters, digits or . _ - @ + (no spaces).", username);
  }
  if (password.value && password.value.length < 8) {
    return userError.show("A password needs at least 8 characters (or leave it empty to have one made).", password);
  }
  await whileBusy(userForm.querySelector("button[type=submit]"), async () => {
    try {
      const out = await api.post("/api/users", {
        username: name, password: password.value || null, is_admin: isAdmin.checked,
      });
      userForm.reset();
      if (out.password) showPassword(`Password for ${out.username}:`, out.password);
      else toast(`Made the account ${out.username}, with the password you chose.`, "success");
      await load();
    } catch (err) {
      userError.show(err.message, err.status === 409 || err.status === 422 ? username : null);
    }
  });
});

// --- a class list ---

const bulkForm = document.getElementById("bulk-form");
const bulkError = formError(bulkForm);
const printout = document.getElementById("printout");

function renderBulk(out) {
  $("site", printout).textContent = window.location.origin;
  $("created", printout).replaceChildren(...out.created.map((u) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "bulk-row";
    const name = document.createElement("td");
    name.textContent = u.username;
    name.dataset.testid = "bulk-username";
    const pw = document.createElement("td");
    pw.className = "mono";
    pw.textContent = u.password;
    pw.dataset.testid = "bulk-password";
    tr.append(name, pw);
    return tr;
  }));
  printout.querySelector("table").hidden = out.created.length === 0;
  printout.querySelector("[data-action=print]").hidden = out.created.length === 0;
  $("skipped", printout).hidden = out.skipped.length === 0;
  $("skipped-list", printout).replaceChildren(...out.skipped.map((s) => Object.assign(
    document.createElement("li"), { textContent: `${s.username}: ${s.reason === "exists" ? "exists already" : s.reason}` })));
  printout.hidden = false;
  printout.scrollIntoView({ block: "start", behavior: "smooth" });
}

bulkForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  bulkError.clear();
  const area = bulkForm.elements.usernames;
  const names = area.value.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
  if (!names.length) return bulkError.show("Paste the user names, one per line.", area);
  const bad = names.filter((n) => !NAME_RE.test(n.normalize("NFKC")));
  if (bad.length) {
    return bulkError.show(`Not a valid user name (letters, digits and . _ - @ + only, no spaces): `
      + `${bad.slice(0, 5).join(", ")}${bad.length > 5 ? ` and ${bad.length - 5} more` : ""}. Nothing was made.`, area);
  }
  if (names.length > 500) return bulkError.show("At most 500 names at once.", area);
  await whileBusy(bulkForm.querySelector("button[type=submit]"), async () => {
    try {
      const out = await api.post("/api/users/bulk", { usernames: names });
      area.value = "";
      renderBulk(out);
      toast(`Made ${plural(out.created.length, "account")}.`, "success");
      await load();
    } catch (err) {
      bulkError.show(err.message, area);
    }
  });
});
printout.querySelector("[data-action=print]").addEventListener("click", () => window.print());

load();
