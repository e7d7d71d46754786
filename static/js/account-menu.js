// The account menu in the topbar: sign out (a POST, so no other site can sign you out with a link),
// and close the menu on a click elsewhere or Escape, as a menu should.
import { api } from "./api.js";
import { showError } from "./ui.js";

const menu = document.querySelector("details.account-menu");

if (menu) {
  const signOut = menu.querySelector("[data-action=sign-out]");
  signOut.addEventListener("click", async () => {
    signOut.disabled = true;
    try {
      await api.post("/api/auth/logout");
      window.location.assign("/login");
    } catch (err) {
      signOut.disabled = false;
      showError(err, "Could not sign out");
    }
  });
  signOut.dataset.ready = "true";  // the button works from here on (tests wait for it on a slow machine)
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
}
