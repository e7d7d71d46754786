// The project page: wires the independent panels together. Each lives in its own module. It follows changes
// made elsewhere (static/js/feed.js): another tab, another person, the API, the training worker.
import { api, goneText } from "./api.js";
import { initClasses, syncClasses } from "./classes.js";
import { initDownloads } from "./download.js";
import { initExportDialog } from "./export-dialog.js";
import { follow } from "./feed.js";
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

// ---------- live updates ----------

function showGone() {
  if (document.querySelector("[data-testid=project-gone]")) return;
  const note = document.createElement("div");
  note.className = "rejected";
  note.setAttribute("role", "alert");
  note.dataset.testid = "project-gone";
  note.style.marginBottom = "12px"; // (a style property, not an attribute: the CSP allows it)
  const home = document.createElement("a");
  home.href = "/";
  home.textContent = "All projects";
  note.append(`${goneText("project")} `, home);
  document.getElementById("main").prepend(note);
  for (const button of document.querySelectorAll("#main button, #main input")) button.disabled = true;
}

function applyFresh(fresh) {
  if (fresh.name !== project.name) {
    project.name = fresh.name;
    const title = document.querySelector("[data-role=project-title]");
    title.querySelector("[data-role=name]").textContent = fresh.name;
    document.title = `${fresh.name} · snapclass`;
  }
  project.classes = fresh.classes;
  syncClasses(fresh.classes);
  if (fresh.model && fresh.model.id !== project.model?.id) events.emit("model-changed", fresh.model);
  project.model = fresh.model;
  project.active_job_id = fresh.active_job_id;
  events.emit("project-refreshed", fresh); // the Train panel follows a job started elsewhere
}

function initLive() {
  const panel = document.getElementById("train-panel");
  const feed = follow({
    project: project.id,
    onChange: async (changes) => {
      // Training progress: the Train panel asks for its job itself while it follows one.
      if (panel?.dataset.state === "running" && changes.every((c) => c.topic === "jobs")) return;
      try {
        applyFresh(await api.get(`/api/projects/${project.id}`));
      } catch (err) {
        if (err.gone?.kind !== "project") throw err;
        feed.stop();
        showGone();
      }
    },
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
initLive();
