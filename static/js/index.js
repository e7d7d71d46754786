// The projects list: create a project, delete one.
import { api } from "./api.js";
import { confirmDialog, showError, toast, whileBusy } from "./ui.js";

const form = document.getElementById("new-project-form");
const list = document.getElementById("project-list");
const empty = document.getElementById("no-projects");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const name = String(data.get("name") || "").trim();
  if (!name) {
    toast("Give the project a name.", "error");
    form.elements.name.focus();
    return;
  }
  const body = { name };
  if (data.get("backbone")) body.backbone = data.get("backbone");
  const button = form.querySelector("button[type=submit]");
  await whileBusy(button, async () => {
    try {
      const project = await api.post("/api/projects", body);
      window.location.assign(`/projects/${project.id}`);
    } catch (err) {
      showError(err, "Could not create the project");
    }
  });
});

list.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action=delete-project]");
  if (!button) return;
  const card = button.closest("[data-project-id]");
  const name = button.dataset.name;
  const ok = await confirmDialog({
    title: `Delete “${name}”?`,
    text: "Its classes, images and trained models are deleted for good.",
    ok: "Delete project",
  });
  if (!ok) return;
  await whileBusy(button, async () => {
    try {
      await api.del(`/api/projects/${card.dataset.projectId}`);
      card.remove();
      empty.hidden = list.children.length > 0;
      toast(`Deleted “${name}”.`, "success");
    } catch (err) {
      showError(err, "Could not delete the project");
    }
  });
});
