// The project page: wires the independent panels together. Each lives in its own module.
import { api } from "./api.js";
import { initClasses } from "./classes.js";
import { initDownloads } from "./download.js";
import { initExportDialog } from "./export-dialog.js";
import { initPredict } from "./predict.js";
import { initProjectFile } from "./project_file.js";
import { initRecorder } from "./recorder.js";
import { initTraining } from "./training.js";
import { events, guardWindowDrops, plural, showError, toast } from "./ui.js";

const project = JSON.parse(document.getElementById("project-data").textContent);

function initRename() {
  const title = document.querySelector("[data-role=project-title]");
  const heading = title.querySelector("[data-role=name]");
  const button = title.querySelector("[data-action=rename-project]");
  const form = document.querySelector("[data-role=project-rename-form]");
  const input = form.elements.name;

  const open = (yes) => {
    title.hidden = yes;
    form.hidden = !yes;
    if (yes) {
      input.value = project.name;
      input.select();
      input.focus();
    } else {
      button.focus();
    }
  };
  button.addEventListener("click", () => open(true));
  form.querySelector("[data-action=cancel]").addEventListener("click", () => open(false));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") open(false);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      toast("A project needs a name.", "error");
      return;
    }
    try {
      const updated = await api.patch(`/api/projects/${project.id}`, { name });
      project.name = updated.name;
      heading.textContent = updated.name;
      document.title = `${updated.name} · snapclass`;
      open(false);
    } catch (err) {
      showError(err, "Could not rename the project");
    }
  });
}

function initTotals() {
  const totals = document.querySelector("[data-role=totals]");
  events.on("classes-changed", (classes) => {
    const images = classes.reduce((sum, c) => sum + c.count, 0);
    totals.textContent = `${plural(classes.length, "class", "classes")} · ${plural(images, "image")}`;
  });
}

guardWindowDrops();
initRename();
initTotals();
initTraining(project);
initPredict(project);
initDownloads(project);
initExportDialog(project);
initProjectFile(project);
initClasses(project);
initRecorder();
