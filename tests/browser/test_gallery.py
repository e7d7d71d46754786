"""The class cards in a real browser: deletes with Undo (toast and Ctrl+Z), one focus stop per gallery, no x on
every photo on a phone, timed recording with the fake camera, the "use in training" switch, colours, and a
class's photos as a zip."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.conftest import DATASETS  # noqa: E402
from tests.browser.test_webcam import add_photos, assert_one_burst, card, make_project, open_recorder, samples  # noqa: E402

SHOTS = Path("/tmp/shots/gallery")


def shot(page: Page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def ants(hymenoptera: Path, n: int) -> list[Path]:
    return sorted((hymenoptera / "train" / "ants").glob("*.jpg"))[:n]


def bees(hymenoptera: Path, n: int) -> list[Path]:
    return sorted((hymenoptera / "train" / "bees").glob("*.jpg"))[:n]


def thumbs(page: Page, name: str):
    return card(page, name).get_by_test_id("thumb")


def focused_testid(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement?.dataset?.testid || document.activeElement?.tagName")


def test_home_page_project_starts_with_two_empty_classes(page: Page, api: httpx.Client):
    page.goto("/")
    page.get_by_test_id("new-project-name").fill("Two to start")
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.get_by_test_id("class-name")).to_have_text(["Class 1", "Class 2"])
    expect(page.get_by_test_id("class-count")).to_have_text(["0 images", "0 images"])
    pid = int(page.url.rsplit("/", 1)[1])
    classes = api.get(f"/api/projects/{pid}").json()["classes"]
    assert [c["sample_count"] for c in classes] == [0, 0]
    # Each card wears its class's colour.
    dots = page.get_by_test_id("class-color")
    colours = [dots.nth(i).evaluate("el => getComputedStyle(el).backgroundColor") for i in range(2)]
    expected = [f"rgb({int(c['color'][1:3], 16)}, {int(c['color'][3:5], 16)}, {int(c['color'][5:7], 16)})"
                for c in classes]
    assert colours == expected


def test_undo_toast_restores_a_deleted_photo(page: Page, api: httpx.Client, hymenoptera: Path):
    pid, ids = make_project(api, "Undo a photo")
    add_photos(api, ids["ants"], ants(hymenoptera, 3))
    before = samples(api, ids["ants"])
    page.goto(f"/projects/{pid}")
    expect(thumbs(page, "ants")).to_have_count(3)
    victim = thumbs(page, "ants").nth(1)
    victim_id = int(victim.get_attribute("data-sample-id"))
    victim.hover()
    victim.get_by_test_id("delete-sample").click()
    expect(thumbs(page, "ants")).to_have_count(2)
    expect(card(page, "ants").get_by_test_id("class-count")).to_have_text("2 images")
    toast = page.get_by_test_id("undo-toast")
    expect(toast).to_contain_text("Deleted")
    assert len(samples(api, ids["ants"])) == 2
    page.wait_for_timeout(400)  # past its fade-in
    shot(page, "undo-toast-desktop", full_page=False)  # where the toast really is
    toast.get_by_test_id("undo-button").click()
    expect(thumbs(page, "ants")).to_have_count(3)
    expect(card(page, "ants").locator(f"[data-sample-id='{victim_id}']")).to_have_count(1)
    expect(toast).to_have_count(0)
    assert samples(api, ids["ants"]) == before  # same ids, names, sizes and times
    # It survives a reload: the page shows what the server has.
    page.reload()
    expect(thumbs(page, "ants")).to_have_count(3)


def test_ctrl_z_restores_a_deleted_class_and_keyboard_delete_a_photo(page: Page, api: httpx.Client,
                                                                       hymenoptera: Path):
    pid, ids = make_project(api, "Undo a class")
    add_photos(api, ids["ants"], ants(hymenoptera, 2))
    add_photos(api, ids["bees"], bees(hymenoptera, 2))
    page.goto(f"/projects/{pid}")
    expect(thumbs(page, "bees")).to_have_count(2)
    card(page, "ants").get_by_test_id("delete-class").click()
    page.get_by_test_id("confirm-ok").click()
    expect(card(page, "ants")).to_have_count(0)
    expect(card(page, "bees").get_by_test_id("rename-class")).to_be_focused()  # the next card, not the page top
    expect(page.get_by_test_id("undo-toast")).to_contain_text("Deleted class “ants”")
    page.keyboard.press("Control+z")
    expect(card(page, "ants")).to_have_count(1)
    expect(thumbs(page, "ants")).to_have_count(2)
    expect(page.get_by_test_id("class-name")).to_have_text(["ants", "bees"])  # back in its place
    assert [c["id"] for c in api.get(f"/api/projects/{pid}").json()["classes"]] == [ids["ants"], ids["bees"]]

    # Delete key on a focused photo, then Meta+Z (the Mac's Cmd+Z) brings it back.
    first = thumbs(page, "bees").first
    first.focus()
    page.keyboard.press("Delete")
    expect(thumbs(page, "bees")).to_have_count(1)
    assert focused_testid(page) == "thumb"  # focus stays in the gallery
    page.keyboard.press("Meta+z")
    expect(thumbs(page, "bees")).to_have_count(2)
    assert len(samples(api, ids["bees"])) == 2
    # Two deletes in a row: Ctrl+Z twice brings both back, newest first.
    thumbs(page, "ants").first.focus()
    page.keyboard.press("Delete")
    expect(thumbs(page, "ants")).to_have_count(1)
    page.keyboard.press("Delete")
    expect(thumbs(page, "ants")).to_have_count(0)
    expect(page.get_by_test_id("undo-toast")).to_have_count(1)  # one toast, the latest delete's
    assert focused_testid(page) == "upload-button"  # the gallery is empty: the next thing to do
    page.keyboard.press("Control+z")
    expect(thumbs(page, "ants")).to_have_count(1)
    page.keyboard.press("Control+z")
    expect(thumbs(page, "ants")).to_have_count(2)
    assert len(samples(api, ids["ants"])) == 2
    # Ctrl+Z in a text field is the field's own undo.
    first = thumbs(page, "bees").first
    first.focus()
    page.keyboard.press("Backspace")
    expect(thumbs(page, "bees")).to_have_count(1)
    page.get_by_test_id("new-class-name").focus()
    page.keyboard.press("Control+z")
    page.wait_for_timeout(500)
    expect(thumbs(page, "bees")).to_have_count(1)


def test_one_tab_stop_per_gallery_and_arrow_keys(page: Page, api: httpx.Client, hymenoptera: Path):
    pid, ids = make_project(api, "Keyboard")
    add_photos(api, ids["ants"], ants(hymenoptera, 12))
    add_photos(api, ids["bees"], bees(hymenoptera, 12))
    page.goto(f"/projects/{pid}")
    expect(thumbs(page, "bees")).to_have_count(12)
    gallery = card(page, "ants").get_by_test_id("gallery")
    expect(gallery.locator("[tabindex='0']")).to_have_count(1)
    first = thumbs(page, "ants").first
    first.focus()
    expect(first).to_have_attribute("aria-label", re.compile(r"\.jpg, photo 1 of 12$"))
    # Tab from the first gallery to the Train button: every control once, no photo or its x on the way.
    train = page.get_by_test_id("train-button")
    path = []
    for _ in range(40):
        page.keyboard.press("Tab")
        path.append(focused_testid(page))
        if page.evaluate("el => el === document.activeElement", train.element_handle()):
            break
    else:
        pytest.fail(f"Train was not reached in 40 Tabs: {path}")
    assert path.count("thumb") == 1, path  # the second gallery, once
    assert "delete-sample" not in path, path
    assert len(path) <= 16, f"{len(path)} Tabs from the first gallery to Train: {path}"

    # Arrow keys, Home and End move inside the gallery; the tab stop follows.
    first.focus()
    page.keyboard.press("ArrowRight")
    second = thumbs(page, "ants").nth(1)
    expect(second).to_be_focused()
    expect(second).to_have_attribute("tabindex", "0")
    expect(first).to_have_attribute("tabindex", "-1")
    page.keyboard.press("End")
    expect(thumbs(page, "ants").last).to_be_focused()
    page.keyboard.press("Home")
    expect(first).to_be_focused()
    columns = page.evaluate("""g => { const items = [...g.children]; const top = items[0].offsetTop;
        return items.filter(li => li.offsetTop === top).length; }""", gallery.element_handle())
    page.keyboard.press("ArrowDown")
    expect(thumbs(page, "ants").nth(columns)).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(thumbs(page, "ants").nth(columns - 1)).to_be_focused()
    shot(page, "gallery-focus-desktop")
    # Shift+Tab from inside leaves the gallery to the control before it, not to another photo.
    page.keyboard.press("Shift+Tab")
    assert focused_testid(page) != "thumb"


def test_phone_has_no_permanent_delete_x(phone_page: Page, api: httpx.Client, hymenoptera: Path):
    page = phone_page
    pid, ids = make_project(api, "Phone")
    add_photos(api, ids["ants"], ants(hymenoptera, 4))
    add_photos(api, ids["bees"], bees(hymenoptera, 2))
    api.patch(f"/api/classes/{ids['bees']}", json={"enabled": False})
    page.goto(f"/projects/{pid}")
    expect(thumbs(page, "ants")).to_have_count(4)
    xs = card(page, "ants").get_by_test_id("delete-sample")
    for i in range(4):
        expect(xs.nth(i)).to_be_hidden()
    shot(page, "project-phone")
    card(page, "ants").screenshot(path=str(SHOTS / "project-phone-card.png"))
    # A tap chooses the photo and shows its x; a second tap (on the x) deletes it, with Undo.
    thumbs(page, "ants").nth(2).tap()
    expect(xs.nth(2)).to_be_visible()
    for i in (0, 1, 3):
        expect(xs.nth(i)).to_be_hidden()
    shot(page, "thumb-chosen-phone")
    card(page, "ants").screenshot(path=str(SHOTS / "thumb-chosen-phone-card.png"))
    xs.nth(2).tap()
    expect(thumbs(page, "ants")).to_have_count(3)
    expect(page.get_by_test_id("undo-toast")).to_be_visible()
    page.wait_for_timeout(400)
    shot(page, "undo-toast-phone", full_page=False)
    page.get_by_test_id("undo-button").tap()
    expect(thumbs(page, "ants")).to_have_count(4)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    # The recorder's timed mode fits a phone too.
    recorder = open_recorder(page, "ants")
    expect(recorder).to_have_attribute("data-state", "ready")
    page.get_by_test_id("mode-timed").check(force=True)
    for control in ("recorder-delay", "recorder-duration", "timed-record"):
        box = page.get_by_test_id(control).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, control
    shot(page, "recorder-timed-phone")


def test_use_in_training_switch(page: Page, api: httpx.Client, hymenoptera: Path):
    pid, ids = make_project(api, "Switch")
    add_photos(api, ids["bees"], bees(hymenoptera, 3))
    page.goto(f"/projects/{pid}")
    bees_card = card(page, "bees")
    switch = bees_card.get_by_test_id("class-enabled")
    expect(switch).to_be_checked()
    expect(bees_card.get_by_test_id("class-off-note")).to_be_hidden()
    bees_card.locator(".switch").click()
    expect(bees_card).to_have_attribute("data-enabled", "false")
    expect(bees_card.get_by_test_id("class-off-note")).to_have_text("Left out of training")
    expect(bees_card).to_have_class(re.compile(r"\bis-off\b"))
    assert api.get(f"/api/projects/{pid}").json()["classes"][1]["enabled"] is False
    shot(page, "class-off-desktop")
    page.reload()  # the page shows it from the server
    expect(card(page, "bees").get_by_test_id("class-enabled")).not_to_be_checked()
    expect(card(page, "bees").get_by_test_id("class-off-note")).to_be_visible()
    # Keyboard: the switch is a control of its own; Space flips it back.
    card(page, "bees").get_by_test_id("class-enabled").focus()
    page.keyboard.press("Space")
    expect(card(page, "bees")).to_have_attribute("data-enabled", "true")
    assert api.get(f"/api/projects/{pid}").json()["classes"][1]["enabled"] is True
    assert card(page, "bees").get_by_test_id("class-enabled").get_attribute("role") == "switch"


def test_download_a_class_as_zip(page: Page, api: httpx.Client, hymenoptera: Path, tmp_path: Path):
    pid, ids = make_project(api, "Zip")
    files = bees(hymenoptera, 3)
    add_photos(api, ids["bees"], files)
    page.goto(f"/projects/{pid}")
    expect(card(page, "ants").get_by_test_id("download-photos")).to_be_hidden()  # nothing to download
    with page.expect_download() as info:
        card(page, "bees").get_by_test_id("download-photos").click()
    download = info.value
    assert download.suggested_filename == "bees.zip"
    path = tmp_path / "bees.zip"
    download.save_as(path)
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        assert sorted(archive.namelist()) == sorted(p.name for p in files)
        for p in files:
            assert archive.read(p.name) == p.read_bytes()


def test_timed_recording(page: Page, api: httpx.Client):
    pid, ids = make_project(api, "Timed")
    page.goto(f"/projects/{pid}")
    recorder = open_recorder(page, "ants")
    expect(recorder).to_have_attribute("data-state", "ready")
    page.get_by_test_id("mode-timed").check(force=True)
    expect(page.get_by_test_id("hold-to-record")).to_be_hidden()
    start = page.get_by_test_id("timed-record")
    expect(start).to_be_visible()
    page.get_by_test_id("recorder-fps").select_option("5")
    page.get_by_test_id("recorder-delay").select_option("3")
    page.get_by_test_id("recorder-duration").select_option("2")

    # Cancelled during the countdown: nothing recorded.
    start.click()
    expect(recorder).to_have_attribute("data-state", "counting")
    expect(page.get_by_test_id("recorder-countdown")).to_have_text(re.compile(r"^[123]$"))
    start.click()
    expect(recorder).to_have_attribute("data-state", "ready")
    page.wait_for_timeout(3500)
    assert recorder.get_attribute("data-captured") == "0"

    start.click()
    expect(page.get_by_test_id("recorder-countdown")).to_have_text("3")
    shot(page, "recorder-timed-desktop")
    page.wait_for_timeout(2000)
    assert recorder.get_attribute("data-captured") == "0"  # still counting down
    expect(recorder).to_have_attribute("data-state", "recording", timeout=3000)
    page.wait_for_function("""() => {
        const r = document.querySelector('[data-testid=recorder]');
        return r.dataset.state === 'ready' && Number(r.dataset.captured) > 0
            && r.dataset.saved === r.dataset.captured;
    }""", timeout=30_000)
    n = int(recorder.get_attribute("data-saved"))
    assert 8 <= n <= 10, f"2 s at 5 fps stored {n} frames"
    stored = samples(api, ids["ants"])
    assert len(stored) == n
    assert_one_burst(stored)
    # The mode is remembered for the next recording.
    page.get_by_test_id("recorder-close").click()
    page.reload()
    open_recorder(page, "ants")
    expect(page.get_by_test_id("timed-record")).to_be_visible()


def test_select_several_photos_and_delete_them_with_one_undo(page: Page, api: httpx.Client, hymenoptera: Path):
    pid, ids = make_project(api, "Select")
    add_photos(api, ids["ants"], ants(hymenoptera, 5))
    page.goto(f"/projects/{pid}")
    expect(thumbs(page, "ants")).to_have_count(5)
    expect(card(page, "bees").get_by_test_id("select-photos")).to_be_hidden()  # no photos to choose
    ants_card = card(page, "ants")
    ants_card.get_by_test_id("select-photos").click()
    expect(ants_card.get_by_test_id("delete-selected")).to_be_disabled()
    thumbs(page, "ants").nth(0).click()
    thumbs(page, "ants").nth(2).click()
    # The keyboard chooses too: Space on the focused photo.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    expect(ants_card.get_by_test_id("select-count")).to_have_text("3 selected")
    expect(thumbs(page, "ants").nth(4)).to_have_attribute("aria-label", re.compile(r", selected$"))
    expect(ants_card.get_by_test_id("delete-sample").first).to_be_hidden()  # no x while choosing
    shot(page, "select-desktop")
    chosen = [int(thumbs(page, "ants").nth(i).get_attribute("data-sample-id")) for i in (0, 2, 4)]
    with page.expect_response(lambda r: r.request.method == "DELETE") as info:
        ants_card.get_by_test_id("delete-selected").click()
    assert info.value.status == 204 and info.value.url.endswith("/api/samples?" + "&".join(f"id={i}" for i in chosen))
    expect(thumbs(page, "ants")).to_have_count(2)
    expect(page.get_by_test_id("undo-toast")).to_contain_text("Deleted 3 images")
    assert len(samples(api, ids["ants"])) == 2
    page.get_by_test_id("undo-button").click()
    expect(thumbs(page, "ants")).to_have_count(5)
    assert len(samples(api, ids["ants"])) == 5


def cifar(name: str, n: int, split: str = "train") -> list[Path]:
    folder = DATASETS / "cifar10-mini" / split / name
    if not folder.is_dir():
        pytest.skip(f"the CIFAR photos are missing: {folder}")
    return sorted(folder.glob("*.jpg"))[:n]


def test_a_big_class_opens_with_one_page_and_show_more_brings_the_next(page: Page, api: httpx.Client):
    """100 photos: the card loads 48 (one request), "Show more" the next pages; the count is the class's, and
    focus, Select, delete with undo, top-up and upload work on what is loaded."""
    pid, ids = make_project(api, "A big class", ("planes", "cats"))
    add_photos(api, ids["planes"], cifar("airplane", 100))
    add_photos(api, ids["cats"], cifar("cat", 3))
    newest_first = [s["id"] for s in samples(api, ids["planes"])][::-1]
    asked: list[str] = []
    page.on("request", lambda r: "/api/" in r.url and r.method == "GET" and asked.append(r.url.split("/api/")[1]))
    page.goto(f"/projects/{pid}")
    planes = card(page, "planes")
    more = planes.get_by_test_id("show-more")
    expect(thumbs(page, "planes")).to_have_count(48)
    expect(thumbs(page, "cats")).to_have_count(3)
    expect(planes.get_by_test_id("class-count")).to_have_text("100 images")  # the class's count, not the page's
    expect(more).to_have_text("Show more (48 of 100 shown)")
    expect(card(page, "cats").get_by_test_id("show-more")).to_be_hidden()
    # One page per card, and the thumbnails of what it shows, nothing more.
    assert sorted(u for u in asked if u.startswith("classes/")) == sorted(
        f"classes/{ids[c]}/samples?limit=48" for c in ("planes", "cats"))
    assert len([u for u in asked if u.endswith("/thumbnail")]) == 48 + 3
    assert [int(x) for x in thumbs(page, "planes").evaluate_all("els => els.map(e => e.dataset.sampleId)")] \
        == newest_first[:48]
    expect(thumbs(page, "planes").first).to_have_attribute("aria-label", re.compile(r"photo 1 of 100$"))
    shot(page, "big-class-desktop")

    more.focus()
    page.keyboard.press("Enter")
    expect(thumbs(page, "planes")).to_have_count(96)
    expect(more).to_be_focused()  # still there, under the photos it brought
    expect(more).to_have_text("Show more (96 of 100 shown)")
    more.click()
    expect(thumbs(page, "planes")).to_have_count(100)
    expect(more).to_be_hidden()
    # Gone once all are loaded: focus on the first photo the last press brought, the gallery's one tab stop.
    expect(thumbs(page, "planes").nth(96)).to_be_focused()
    assert thumbs(page, "planes").evaluate_all("els => els.filter(e => e.tabIndex === 0).length") == 1
    assert [int(x) for x in thumbs(page, "planes").evaluate_all("els => els.map(e => e.dataset.sampleId)")] \
        == newest_first
    page.keyboard.press("End")
    expect(thumbs(page, "planes").last).to_be_focused()

    # A reload shows one page again; deleting below a page brings the next photos up to fill it.
    page.reload()
    expect(thumbs(page, "planes")).to_have_count(48)
    planes.get_by_test_id("select-photos").click()
    for i in (0, 1, 2):
        thumbs(page, "planes").nth(i).click()
    planes.get_by_test_id("delete-selected").click()
    expect(planes.get_by_test_id("class-count")).to_have_text("97 images")
    expect(thumbs(page, "planes")).to_have_count(93)  # 45 left of the page, and the next page of 48
    expect(more).to_have_text("Show more (93 of 97 shown)")
    page.get_by_test_id("undo-button").click()
    expect(planes.get_by_test_id("class-count")).to_have_text("100 images")
    expect(thumbs(page, "planes")).to_have_count(96)
    assert [int(x) for x in thumbs(page, "planes").evaluate_all("els => els.map(e => e.dataset.sampleId)")] \
        == newest_first[:96]
    # An upload goes on top and counts; the last page then holds the rest, each photo once.
    planes.get_by_test_id("file-input").set_input_files([str(p) for p in cifar("airplane", 1, "test")])
    expect(planes.get_by_test_id("class-count")).to_have_text("101 images")
    expect(thumbs(page, "planes")).to_have_count(97)
    more.click()
    expect(thumbs(page, "planes")).to_have_count(101)
    shown = [int(x) for x in thumbs(page, "planes").evaluate_all("els => els.map(e => e.dataset.sampleId)")]
    assert shown == [s["id"] for s in samples(api, ids["planes"])][::-1]


def test_a_big_class_on_a_phone(phone_page: Page, api: httpx.Client):
    pid, ids = make_project(api, "A big class, phone", ("planes", "cats"))
    add_photos(api, ids["planes"], cifar("airplane", 60))
    phone_page.goto(f"/projects/{pid}")
    more = card(phone_page, "planes").get_by_test_id("show-more")
    expect(thumbs(phone_page, "planes")).to_have_count(48)
    more.scroll_into_view_if_needed()
    box = more.bounding_box()
    assert box["height"] >= 32 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(phone_page, "big-class-phone")
    more.tap()
    expect(thumbs(phone_page, "planes")).to_have_count(60)
    expect(more).to_be_hidden()
