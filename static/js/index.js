// The projects list: create a project (from a pretrained network or another project's model), open a project
// file, delete one. The list follows changes made elsewhere (static/js/feed.js).
import { api, uploadForm } from "./api.js";
import { follow } from "./feed.js";
import { confirmDialog, percent, showError, toast, whileBusy } from "./ui.js";

const form = document.getElementById("new-project-form");
const list = document.getElementById("project-list");
const empty = document.getElementById("no-projects");
const start = form.elements.start;

const MODES = { head: "head only", finetune: "fine-tuned" };

// "Ants vs bees · v3 (fine-tuned, 97%)"
function modelLabel(project, model) {
  const acc = model.metrics && model.metrics.val_accuracy;
  const what = [MODES[model.mode] || model.mode];
  if (acc !== null && acc !== undefined) what.push(percent(acc, 0));
  return `${project.name} · v${model.version} (${what.join(", ")})`;
}

// Every trained version of every project, under "Another project's model" in "Start from".
async function loadBaseModels() {
  const projects = (await api.get("/api/projects")).filter((p) => p.current_model_id);
  const lists = await Promise.all(projects.map((p) => api.get(`/api/projects/${p.id}/models`).catch(() => [])));
  const options = [];
  projects.forEach((project, i) => {
    for (const model of lists[i]) {
      const option = new Option(modelLabel(project, model), `model:${model.id}`);
      option.dataset.testid = "base-model-option";
      option.dataset.mode = model.mode;
      options.push(option);
    }
  });
  start.querySelector("optgroup[data-role=models]")?.remove();
  if (!options.length) return;
  const group = document.createElement("optgroup");
  group.label = "Another project's model";
  group.dataset.role = "models";
  group.append(...options);
  start.append(group);
  describeStart();
}

const startHint = form.querySelector("[data-role=start-hint]");
const DEFAULT_HINT = startHint.textContent;

function describeStart() {
  const mode = start.selectedOptions[0]?.dataset.mode;
  startHint.textContent = !mode ? DEFAULT_HINT : mode === "finetune"
    ? "Extracts features with that model's fine-tuned network, so what it learned about such photos carries over. "
      + "You add your own classes and photos."
    : "That model was trained head only, so this starts from the same pretrained network it used. "
      + "You add your own classes and photos.";
}

start.addEventListener("change", describeStart);

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
  const [kind, value] = String(data.get("start") || "").split(/:(.*)/s);
  if (kind === "model") body.base_model_id = Number(value);
  else if (kind === "backbone" && value) body.backbone = value;
  body.classes = ["Class 1", "Class 2"]; // a new project starts with two empty classes, as in Teachable Machine
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
      loadBaseModels().catch(() => {}); // its models are gone with it
      toast(`Deleted “${name}”.`, "success");
    } catch (err) {
      showError(err, "Could not delete the project");
    }
  });
});

// "Open a project file": the server checks the whole file and makes a new project, or says what is wrong.
const openButton = document.querySelector("[data-action=open-project-file]");
const fileInput = document.querySelector("[data-role=project-file-input]");

openButton.addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", async () => {
  const file = fileInput.files[0];
  fileInput.value = "";
  if (!file) return;
  const label = openButton.querySelector("[data-role=label]");
  const form = new FormData();
  form.append("file", file);
  await whileBusy(openButton, async () => {
    try {
      label.textContent = "Opening…";
      const project = await uploadForm("/api/projects/import", form, (f) => {
        label.textContent = f < 1 ? `Uploading… ${percent(f, 0)}` : "Checking the file…";
      });
      window.location.assign(`/projects/${project.id}`);
    } catch (err) {
      showError(err, `Could not open “${file.name}”`);
    } finally {
      label.textContent = "Open a project file";
    }
  });
});

loadBaseModels().catch((err) => console.error("could not list other projects' models", err));

// ---------- live updates ----------

// The server renders the cards (templates/_project_card.html: counts, roles, badges); a change elsewhere swaps
// in the list of a freshly rendered page, so there is one way a card looks. Focus stays on the card it was in.
async function refreshList() {
  const response = await fetch("/", { headers: { Accept: "text/html" }, cache: "no-store" });
  if (response.redirected || !response.ok) {
    window.location.reload(); // signed out meanwhile: the server sends the login page
    return;
  }
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("project-list");
  if (!fresh) return;
  const focused = document.activeElement?.closest("[data-project-id] [data-testid]");
  const where = focused && [focused.closest("[data-project-id]").dataset.projectId, focused.dataset.testid];
  list.replaceChildren(...[...fresh.children].map((node) => document.importNode(node, true)));
  empty.hidden = list.children.length > 0;
  if (where) list.querySelector(`[data-project-id="${where[0]}"] [data-testid="${where[1]}"]`)?.focus();
}

follow({
  onChange: async (changes) => {
    // Training progress changes no card; a finished job's new model arrives as a "project" change.
    const relevant = changes.filter((c) => c.topic !== "jobs");
    if (!relevant.length) return;
    await refreshList();
    if (relevant.some((c) => c.topic === "models" || c.topic === "project" || c.topic === "all")) {
      await loadBaseModels().catch(() => {});
    }
  },
});
