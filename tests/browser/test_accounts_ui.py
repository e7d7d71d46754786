"""Accounts in a real browser, on a real server with login required: the first account, signing in and out,
API tokens, the admin page (a class list at once), the Share dialog, the public share page, and a viewer."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Browser, BrowserContext, Page, expect  # noqa: E402

from tests.browser.conftest import DESKTOP, PHONE, AuthServer  # noqa: E402

ADMIN, PASSWORD = "teacher", "correct horse battery"
PER_CLASS = 8
TRAIN_TIMEOUT_S = 240
PHONE_ARGS = {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}

# Shared between tests of this module: the project the share test builds, reused by the viewer test.
built: dict = {}


# --- helpers ---


def new_context(browser: Browser, server: AuthServer, *, phone: bool = False) -> BrowserContext:
    """A fresh browser profile (no cookies) that can reach nothing but this machine."""
    context = browser.new_context(base_url=server.url, **(PHONE_ARGS if phone else {"viewport": DESKTOP}))
    context.set_default_timeout(15_000)
    context.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    return context


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("account-name")).to_have_text(username)


def api_client(server: AuthServer, username: str, password: str) -> httpx.Client:
    """A client signed in with a session cookie; enter it (`with`) before the first request."""
    client = httpx.Client(base_url=server.url, timeout=120)
    r = httpx.post(f"{server.url}/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.update(r.cookies)
    return client


def shot(page: Page, path: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(path / f"{name}.png"), full_page=full_page)


def photos(hymenoptera: Path, split: str, label: str, n: int) -> list[Path]:
    return sorted((hymenoptera / split / label).glob("*.jpg"))[:n]


def train_via_api(client: httpx.Client, project_id: int, hymenoptera: Path) -> None:
    for cls in client.get(f"/api/projects/{project_id}").json()["classes"]:  # the page's "Class 1", "Class 2"
        assert client.delete(f"/api/classes/{cls['id']}").status_code == 204
    for label in ("ants", "bees"):
        r = client.post(f"/api/projects/{project_id}/classes", json={"name": label})
        assert r.status_code == 201, r.text
        files = [("files", (p.name, p.read_bytes(), "image/jpeg"))
                 for p in photos(hymenoptera, "train", label, PER_CLASS)]
        r = client.post(f"/api/classes/{r.json()['id']}/samples", files=files)
        assert r.status_code == 201 and len(r.json()["added"]) == PER_CLASS, r.text
    r = client.post(f"/api/projects/{project_id}/train", json={"mode": "head"})
    assert r.status_code == 202, r.text
    job_id, deadline = r.json()["job_id"], time.monotonic() + TRAIN_TIMEOUT_S
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"training did not finish in {TRAIN_TIMEOUT_S} s: {job}"
        time.sleep(0.3)
    assert job["status"] == "succeeded", job


@pytest.fixture(scope="module")
def admin(auth_server: AuthServer) -> tuple[str, str]:
    """The admin account: made through the page by the first test, or here through the API when that test
    did not run (-k)."""
    with httpx.Client(base_url=auth_server.url) as client:
        if client.get("/api/auth/status").json()["setup_needed"]:
            r = client.post("/api/auth/setup", json={
                "code": auth_server.setup_code, "username": ADMIN, "password": PASSWORD})
            assert r.status_code == 201, r.text
    return ADMIN, PASSWORD


@pytest.fixture
def ctx(browser: Browser, auth_server: AuthServer):
    """A fresh desktop browser profile per test; every page's uncaught errors fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(*, phone: bool = False) -> Page:
        context = new_context(browser, auth_server, phone=phone)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    expect.set_options(timeout=15_000)
    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


# --- tests (in file order: the first one makes the server's first account through the page) ---


def test_first_account_sign_out_and_in(ctx, auth_server: AuthServer, tmp_path: Path):
    page = ctx()
    # Nobody signed in, no account yet: every page leads to the setup page.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    expect(page.get_by_text("printed in its log")).to_be_visible()
    page.get_by_label("Setup code").fill("0000-0000-0000")
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD + "x")
    page.get_by_test_id("setup-submit").click()
    expect(page.get_by_test_id("setup-error")).to_contain_text("not the same")
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_test_id("setup-submit").click()
    expect(page.get_by_test_id("setup-error")).to_contain_text("Wrong setup code")
    shot(page, tmp_path, "setup-desktop")
    page.get_by_label("Setup code").fill(auth_server.setup_code)
    page.get_by_test_id("setup-submit").click()

    # Signed in, on the projects page, with the account menu.
    expect(page).to_have_url(f"{auth_server.url}/")
    expect(page.get_by_test_id("account-name")).to_have_text(ADMIN)
    expect(page.get_by_test_id("no-projects")).to_be_visible()
    page.get_by_test_id("account-button").click()
    expect(page.get_by_test_id("admin-link")).to_be_visible()
    # The menu's module script may still be loading on a busy machine: a click before it is a click on nothing.
    expect(page.get_by_test_id("sign-out")).to_have_attribute("data-ready", "true")
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")  # signed out for real: the server no longer knows the session
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))

    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("Wrong user name or password.")
    expect(page.get_by_label("Password")).to_have_attribute("autocomplete", "current-password")
    expect(page.get_by_label("User name")).to_have_attribute("autocomplete", "username")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{auth_server.url}/")
    expect(page.get_by_test_id("account-name")).to_have_text(ADMIN)

    # `next` brings you back where you were going; a foreign one does not leave the server.
    page.get_by_test_id("account-button").click()
    expect(page.get_by_test_id("sign-out")).to_have_attribute("data-ready", "true")
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/account$"))
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{auth_server.url}/account")


def test_phone_and_desktop_login_page(ctx, admin, tmp_path: Path):
    for phone in (True, False):
        page = ctx(phone=phone)
        page.goto("/login")
        expect(page.get_by_test_id("login-form")).to_be_visible()
        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("login-error")).to_be_visible()
        shot(page, tmp_path, f"login-{'phone' if phone else 'desktop'}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= (PHONE if phone else DESKTOP)["width"], "the page scrolls sideways"


def test_token_project_share_link_and_revoke(ctx, admin, auth_server: AuthServer, hymenoptera: Path,
                                             tmp_path: Path):
    page = ctx()
    sign_in(page, *admin)

    # An API token, made on the account page, shown once.
    page.goto("/account")
    page.get_by_test_id("token-name").fill("browser test")
    page.get_by_test_id("create-token").click()
    expect(page.get_by_test_id("new-token-value")).to_have_value(re.compile(r"^\S{20,}$"))
    token = page.get_by_test_id("new-token-value").input_value()
    expect(page.get_by_test_id("new-token")).to_contain_text("shown only this once")
    expect(page.get_by_test_id("copy-token")).to_be_visible()
    row = page.get_by_test_id("token-row").filter(has_text="browser test")
    expect(row).to_contain_text(token[:10])
    expect(row).to_contain_text("never")
    shot(page, tmp_path, "account-desktop")
    page.reload()
    expect(page.get_by_test_id("new-token")).to_be_hidden()
    expect(page.get_by_test_id("token-row")).to_have_count(1)

    # A project made in the page; photos and training through the API with that token.
    page.goto("/")
    page.get_by_test_id("new-project-name").fill("Ants or bees")
    page.get_by_test_id("create-project").click()
    expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    project_id = int(page.url.rsplit("/", 1)[1])
    with httpx.Client(base_url=auth_server.url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        train_via_api(client, project_id, hymenoptera)
        # A photo the model gets right, to check that the share page shows the same answer.
        for photo in photos(hymenoptera, "val", "bees", 5):
            answer = client.post(f"/api/projects/{project_id}/predict",
                                 files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}).json()
            if answer["label"] == "bees":
                break
        else:
            pytest.fail("the model got none of 5 bee photos right")
    built.update(project_id=project_id, token=token)

    # The Share dialog: create the link.
    page.reload()
    expect(page.get_by_test_id("role-note")).to_have_count(0)  # the owner needs no explanation
    page.get_by_test_id("share-button").click()
    dialog = page.get_by_test_id("share-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("member")).to_have_count(1)  # the owner
    expect(dialog.get_by_test_id("member")).to_contain_text(ADMIN)
    dialog.get_by_test_id("share-create").click()
    url_field = dialog.get_by_test_id("share-url")
    expect(url_field).to_have_value(re.compile(rf"^{re.escape(auth_server.url)}/s/[\w-]{{20,}}$"))
    share_url = url_field.input_value()
    expect(dialog.get_by_test_id("share-open")).to_have_attribute("href", share_url)
    expect(dialog.get_by_test_id("share-copy")).to_be_visible()

    # The link, in a fresh profile with no cookies: classify a real photo.
    guest = ctx()
    requests: list[str] = []
    guest.on("request", lambda r: requests.append(r.url))
    guest.goto(share_url)
    expect(guest.get_by_test_id("share-project-name")).to_have_text("Ants or bees")
    expect(guest.get_by_test_id("account-menu")).to_have_count(0)
    expect(guest.get_by_test_id("share-model")).to_contain_text("ants")
    guest.get_by_test_id("share-input").set_input_files(str(photo))
    top = guest.get_by_test_id("predict-top")
    expect(top).to_have_attribute("data-label", "bees")
    expect(top).to_have_attribute("data-unknown", str(answer["unknown"]).lower())
    expect(guest.get_by_test_id("confidence-bar")).to_have_count(2)
    expect(guest.get_by_test_id("confidence-bar").first).to_have_attribute("data-label", "bees")
    expect(guest.get_by_test_id("share-preview")).to_be_visible()
    # The webcam (Chromium's fake camera): frames are classified one after another.
    guest.get_by_test_id("share-mode-webcam").click()
    expect(guest.get_by_test_id("share-video")).to_be_visible()
    expect(guest.get_by_test_id("share-status")).to_contain_text("Live")
    guest.wait_for_function("document.querySelector('[data-testid=predict-top]').dataset.label !== undefined")
    guest.get_by_test_id("share-mode-photo").click()
    assert all(u.startswith(auth_server.url) for u in requests), [u for u in requests
                                                                  if not u.startswith(auth_server.url)]

    # Phone and desktop screenshots of the dialog and the share page, to look at.
    shot(page, tmp_path, "share-dialog-desktop", full_page=False)
    guest.get_by_test_id("share-input").set_input_files(str(photo))
    expect(guest.get_by_test_id("share-status")).to_have_text("")
    expect(top).to_have_attribute("data-label", "bees")
    shot(guest, tmp_path, "share-page-desktop")
    phone = ctx(phone=True)
    phone.goto(share_url)
    phone.get_by_test_id("share-input").set_input_files(str(photo))
    expect(phone.get_by_test_id("predict-top")).to_have_attribute("data-label", "bees")
    shot(phone, tmp_path, "share-page-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone_owner = ctx(phone=True)
    sign_in(phone_owner, *admin)
    phone_owner.goto(f"/projects/{project_id}")
    phone_owner.get_by_test_id("share-button").click()
    expect(phone_owner.get_by_test_id("share-url")).to_have_value(share_url)
    shot(phone_owner, tmp_path, "share-dialog-phone", full_page=False)

    # Turn it off: the link is a "not found" page from then on.
    dialog.get_by_test_id("share-revoke").click()
    page.get_by_test_id("confirm-ok").click()
    expect(dialog.get_by_test_id("share-create")).to_be_visible()
    response = guest.goto(share_url)
    assert response.status == 404
    expect(guest.get_by_test_id("share-not-found")).to_be_visible()
    r = httpx.post(f"{share_url}/predict", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert r.status_code == 404


def test_bulk_accounts_from_a_class_list(ctx, admin, auth_server: AuthServer, tmp_path: Path):
    page = ctx()
    sign_in(page, *admin)
    page.get_by_test_id("account-button").click()
    page.get_by_test_id("admin-link").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.get_by_test_id("user-row").filter(has_text=ADMIN)).to_contain_text("(you)")

    page.get_by_test_id("bulk-names").fill("Ada.L\n  alan.t \n\ngrace.h\nada.l\n")
    page.get_by_test_id("bulk-create").click()
    result = page.get_by_test_id("bulk-result")
    expect(result).to_be_visible()
    expect(result.get_by_test_id("bulk-shown-once")).to_contain_text("shown only now")
    rows = result.get_by_test_id("bulk-row")
    expect(rows).to_have_count(3)
    expect(result.get_by_test_id("bulk-username")).to_have_text(["ada.l", "alan.t", "grace.h"])
    expect(result.get_by_test_id("bulk-skipped")).to_contain_text("ada.l")
    passwords = result.get_by_test_id("bulk-password").all_inner_texts()
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", p) for p in passwords), passwords
    expect(page.get_by_test_id("user-row")).to_have_count(4)
    expect(result.get_by_test_id("print-passwords")).to_be_visible()

    # Printed, the page is that table alone.
    page.emulate_media(media="print")
    expect(page.get_by_test_id("bulk-table")).to_be_visible()
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.get_by_test_id("users-panel")).to_be_hidden()
    expect(page.get_by_test_id("bulk-form")).to_be_hidden()
    expect(result.get_by_test_id("print-passwords")).to_be_hidden()
    expect(result).to_contain_text(f"Sign in at {auth_server.url}")
    shot(page, tmp_path, "admin-print")
    page.emulate_media(media="screen")
    shot(page, tmp_path, "admin-desktop")

    # One of them signs in, in another browser: an empty project list, their own name in the menu.
    student = ctx()
    sign_in(student, "alan.t", passwords[1])
    expect(student.get_by_test_id("no-projects")).to_be_visible()
    expect(student.get_by_test_id("project-card")).to_have_count(0)
    student.get_by_test_id("account-button").click()
    expect(student.get_by_test_id("admin-link")).to_have_count(0)
    assert student.goto("/admin").status == 403
    # They change the generated password on their account page.
    student.goto("/account")
    student.get_by_test_id("current-password").fill("not it")
    student.get_by_test_id("new-password").fill("alan's own pass")
    student.get_by_test_id("new-password2").fill("alan's own pass")
    student.get_by_test_id("change-password").click()
    expect(student.get_by_test_id("password-error")).to_have_text("The current password is wrong.")
    student.get_by_test_id("current-password").fill(passwords[1])
    student.get_by_test_id("change-password").click()
    expect(student.get_by_test_id("toast").filter(has_text="Password changed")).to_be_visible()
    api_client(auth_server, "alan.t", "alan's own pass").close()
    student.reload()  # this browser got a fresh session and stays signed in
    expect(student.get_by_test_id("account-name")).to_have_text("alan.t")

    # One account at a time: a generated password is shown once; reset; make admin; remove.
    page.get_by_test_id("user-name").fill("Sam")
    page.get_by_test_id("create-user").click()
    shown = page.get_by_test_id("password-shown")
    expect(shown).to_contain_text("Password for sam")
    expect(page.get_by_test_id("password-value")).to_have_value(re.compile(r"^\S{8,}$"))
    sam_password = page.get_by_test_id("password-value").input_value()
    api_client(auth_server, "sam", sam_password).close()  # the shown password works
    sam = page.get_by_test_id("user-row").filter(has_text="sam")
    sam.get_by_test_id("reset-password").click()
    page.get_by_test_id("confirm-ok").click()
    expect(shown).to_contain_text("New password for sam")
    expect(page.get_by_test_id("password-value")).not_to_have_value(sam_password)
    sam.get_by_test_id("toggle-admin").click()
    expect(sam.get_by_test_id("user-admin")).to_have_text("admin")
    sam = page.get_by_test_id("user-row").filter(has_text="sam")
    sam.get_by_test_id("remove-user").click()
    expect(page.get_by_test_id("confirm-dialog")).to_contain_text("They own no projects")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("user-row").filter(has_text="sam")).to_have_count(0)

    # A phone-size look at the same page.
    phone = ctx(phone=True)
    sign_in(phone, *admin)
    phone.goto("/admin")
    expect(phone.get_by_test_id("user-row")).to_have_count(4)
    phone.get_by_test_id("bulk-names").fill("bob.b\n")
    phone.get_by_test_id("bulk-create").click()
    expect(phone.get_by_test_id("bulk-row")).to_have_count(1)
    shot(phone, tmp_path, "admin-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_viewer_sees_the_project_read_only(ctx, admin, auth_server: AuthServer, hymenoptera: Path,
                                           tmp_path: Path):
    owner_api = api_client(auth_server, *admin)
    with owner_api:
        if "project_id" not in built:  # the share test did not run (-k): make a trained project here
            project_id = owner_api.post("/api/projects", json={"name": "Ants or bees"}).json()["id"]
            train_via_api(owner_api, project_id, hymenoptera)
            built["project_id"] = project_id
        project_id = built["project_id"]
        r = owner_api.post("/api/users", json={"username": "vic", "password": PASSWORD})
        assert r.status_code in (201, 409), r.text

    # The owner adds vic as a viewer in the Share dialog.
    page = ctx()
    sign_in(page, *admin)
    page.goto(f"/projects/{project_id}")
    page.get_by_test_id("share-button").click()
    dialog = page.get_by_test_id("share-dialog")
    dialog.get_by_test_id("member-name").fill("nobody-here")
    dialog.get_by_test_id("member-add").click()
    expect(dialog.get_by_test_id("member-error")).to_contain_text("no account named")
    dialog.get_by_test_id("member-name").fill("vic")
    dialog.get_by_test_id("member-role").select_option("viewer")
    dialog.get_by_test_id("member-add").click()
    vic_row = dialog.get_by_test_id("member").filter(has_text="vic")
    expect(vic_row.get_by_test_id("member-role-select")).to_have_value("viewer")

    # vic sees the project, and nothing that would change it.
    viewer = ctx()
    sign_in(viewer, "vic", PASSWORD)
    card = viewer.get_by_test_id("project-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("project-shared")).to_contain_text("you are a viewer")
    expect(card.get_by_test_id("delete-project")).to_have_count(0)
    card.get_by_test_id("project-link").click()
    expect(viewer.get_by_test_id("role-note")).to_contain_text("Only its owner and editors can change")
    expect(viewer.get_by_test_id("class-card")).to_have_count(2)
    expect(viewer.get_by_test_id("thumb").first).to_be_attached()
    for testid in ("rename-project", "share-button", "add-class-form", "upload-button", "webcam-button",
                   "rename-class", "delete-class", "train-form"):
        expect(viewer.get_by_test_id(testid).first).to_be_hidden()
    expect(viewer.get_by_test_id("delete-sample").first).to_be_hidden()
    expect(viewer.get_by_test_id("train-viewer-note")).to_be_visible()
    expect(viewer.get_by_test_id("unknown-threshold-slider")).to_be_disabled()
    # Trying the model is what a viewer may do.
    viewer.get_by_test_id("predict-input").set_input_files(str(photos(hymenoptera, "val", "ants", 1)[0]))
    expect(viewer.get_by_test_id("predict-top")).to_be_visible()
    shot(viewer, tmp_path, "viewer-project")
    viewer.goto(f"/projects/{project_id}/models")
    expect(viewer.get_by_test_id("role-note")).to_be_visible()
    expect(viewer.get_by_test_id("threshold-slider")).to_be_disabled()
    expect(viewer.get_by_test_id("make-current").first).to_be_hidden()
    expect(viewer.get_by_test_id("delete-version").first).to_be_hidden()
    viewer.goto(f"/projects/{project_id}/live")
    expect(viewer.get_by_test_id("correct-panel")).to_be_hidden()

    # Made an editor: photos and training, but still no rename, share or delete.
    vic_row.get_by_test_id("member-role-select").select_option("editor")
    expect(page.get_by_test_id("toast").filter(has_text="vic is now an editor")).to_be_visible()
    viewer.goto(f"/projects/{project_id}")
    expect(viewer.get_by_test_id("role-note")).to_contain_text("You can edit and train")
    expect(viewer.get_by_test_id("upload-button").first).to_be_visible()
    expect(viewer.get_by_test_id("train-form")).to_be_visible()
    expect(viewer.get_by_test_id("unknown-threshold-slider")).to_be_enabled()
    for testid in ("rename-project", "share-button"):
        expect(viewer.get_by_test_id(testid)).to_be_hidden()

    # Removed: the project is gone from vic's list.
    vic_row.get_by_test_id("member-remove").click()
    expect(vic_row).to_have_count(0)
    viewer.goto("/")
    expect(viewer.get_by_test_id("project-card")).to_have_count(0)
    assert viewer.goto(f"/projects/{project_id}").status == 404


def test_login_off_says_so_quietly(phone_page: Page, tmp_path: Path):
    """On the usual loopback server (login off, no accounts) the menu is a quiet note, with no "Sign in"."""
    page = phone_page
    page.goto("/")
    expect(page.get_by_test_id("no-login-note")).to_be_visible()
    expect(page.get_by_test_id("no-login-note")).to_contain_text("No login")
    expect(page.get_by_test_id("sign-in-link")).to_have_count(0)
    expect(page.get_by_test_id("account-button")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, tmp_path, "login-off-phone", full_page=False)
    page.goto("/account")
    expect(page.get_by_test_id("account-local")).to_contain_text("Login is off")


def test_share_page_without_a_model(ctx, admin, auth_server: AuthServer):
    with api_client(auth_server, *admin) as owner_api:
        project_id = owner_api.post("/api/projects", json={"name": "Untrained"}).json()["id"]
        url = owner_api.post(f"/api/projects/{project_id}/share").json()["url"]
    guest = ctx()
    guest.goto(url)
    expect(guest.get_by_test_id("share-project-name")).to_have_text("Untrained")
    expect(guest.get_by_test_id("share-no-model")).to_contain_text("no trained model yet")
    expect(guest.get_by_test_id("share-input")).to_have_count(0)


def test_throttled_sign_in_says_how_long_to_wait(ctx, admin):
    """Last in this file: repeated failures slow down every further try from this address for a while."""
    page = ctx()
    page.goto("/login")
    page.get_by_label("User name").fill("ghost")
    error = page.get_by_test_id("login-error")
    for _ in range(8):
        page.get_by_label("Password").fill("guess")
        page.get_by_test_id("login-submit").click()
        expect(error).to_be_visible()
        expect(page.get_by_test_id("login-submit")).to_be_enabled()
        if "Too many" in error.inner_text():
            break
    expect(error).to_have_text(re.compile(r"^Too many failed tries\. Wait \d+ s and try again\.$"))
