// The owner's Share dialog on the project page: the public link (create, copy, open, turn off) and the
// members (add by user name as viewer or editor, change role, remove). Everything goes through the JSON API.
import { api } from "./api.js";
import { copyText } from "./accounts-ui.js";
import { cloneTemplate, confirmDialog, showError, toast, whileBusy } from "./ui.js";

const project = JSON.parse(document.getElementById("project-data").textContent);
const dialog = document.getElementById("share-dialog");
const $ = (role) => dialog.querySelector(`[data-role=${role}]`);
const base = `/api/projects/${project.id}`;
const memberForm = $("member-form");
const error = $("error");

function showLink(url) {
  $("link-section").dataset.state = url ? "on" : "off";
  $("link-off").hidden = Boolean(url);
  $("link-on").hidden = !url;
  $("url").value = url || "";
  if (url) $("open").href = url;
}

function setFormError(text, field = null) {
  error.textContent = text;
  error.hidden = !text;
  if (field) field.focus();
}

function memberRow(member) {
  const li = cloneTemplate("member-template");
  li.dataset.username = member.username;
  li.dataset.memberRole = member.role;
  li.querySelector("[data-role=name]").textContent = member.username;
  const select = li.querySelector("[data-role=role]");
  const remove = li.querySelector("[data-action=remove]");
  if (member.role === "owner") {
    li.querySelector("[data-role=owner-badge]").hidden = false;
    select.remove();
    remove.remove();
    return li;
  }
  const id = `member-role-${member.username.replace(/[^\w-]/g, "_")}`;
  select.id = id;
  li.querySelector("[data-role=role-label]").htmlFor = id;
  li.querySelector("[data-role=role-label]").textContent = `Role of ${member.username}`;
  select.value = member.role;
  select.addEventListener("change", async () => {
    select.disabled = true;
    try {
      renderMembers(await api.post(`${base}/members`, { username: member.username, role: select.value }));
      toast(`${member.username} is now ${select.value === "editor" ? "an editor" : "a viewer"}.`, "success");
    } catch (err) {
      select.value = member.role;
      showError(err, `Could not change ${member.username}'s role`);
    } finally {
      select.disabled = false;
    }
  });
  remove.setAttribute("aria-label", `Remove ${member.username}`);
  remove.title = `Remove ${member.username}`;
  remove.addEventListener("click", () => whileBusy(remove, async () => {
    try {
      await api.del(`${base}/members/${encodeURIComponent(member.username)}`);
      li.remove();
      toast(`${member.username} no longer has access.`, "success");
    } catch (err) {
      showError(err, `Could not remove ${member.username}`);
    }
  }));
  return li;
}

function renderMembers(members) {
  $("members").replaceChildren(...members.map(memberRow));
}

async function load() {
  setFormError("");
  try {
    const [share, members] = await Promise.all([api.get(`${base}/share`), api.get(`${base}/members`)]);
    showLink(share.url);
    renderMembers(members);
  } catch (err) {
    showError(err, "Could not load who this project is shared with");
  }
}

dialog.querySelector("[data-action=create-link]").addEventListener("click", (event) => whileBusy(
  event.currentTarget, async () => {
    try {
      showLink((await api.post(`${base}/share`)).url);
      $("url").select();
    } catch (err) {
      showError(err, "Could not create the link");
    }
  }));
dialog.querySelector("[data-action=copy-link]").addEventListener("click", () => copyText($("url"), "Link copied."));
dialog.querySelector("[data-action=revoke-link]").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  const ok = await confirmDialog({
    title: "Turn the link off?",
    text: "Whoever has it gets a “not found” page from now on. A new link, if you make one, is a different one.",
    ok: "Turn off",
  });
  if (!ok) return;
  await whileBusy(button, async () => {
    try {
      await api.del(`${base}/share`);
      showLink(null);
      toast("The link is off.", "success");
    } catch (err) {
      showError(err, "Could not turn the link off");
    }
  });
});

memberForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  setFormError("");
  const input = memberForm.elements.username;
  const username = input.value.trim();
  if (!username) return setFormError("Type the user name of the person to add.", input);
  await whileBusy(memberForm.querySelector("button[type=submit]"), async () => {
    try {
      const role = memberForm.elements.role.value;
      renderMembers(await api.post(`${base}/members`, { username, role }));
      input.value = "";
      toast(`Added ${username} as ${role === "editor" ? "an editor" : "a viewer"}.`, "success");
    } catch (err) {
      setFormError(err.status === 422 && /no account/.test(err.message)
        ? `There is no account named “${username}”. An admin can make one.` : err.message, input);
    }
  });
});

dialog.querySelector("[data-action=close]").addEventListener("click", () => dialog.close());
document.querySelector("[data-action=share]").addEventListener("click", () => {
  dialog.showModal();
  load();
});
