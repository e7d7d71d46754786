// "Save project to a file": the link downloads the export; the choice of models goes into its query string.
export function initProjectFile(project) {
  const panel = document.getElementById("project-file-panel");
  const choice = panel.querySelector("[data-role=project-file-models]");
  const link = panel.querySelector("[data-role=save-project-file]");
  const update = () => {
    link.href = `/api/projects/${project.id}/export?models=${encodeURIComponent(choice.value)}`;
  };
  choice.addEventListener("change", update);
  update();
}
