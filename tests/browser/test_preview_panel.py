"""The project page's Try-it preview in a real Chromium: webcam (live bars) or file, ready right after training
on the page; class colours in the bars; long class names readable at phone width; the message stack.

The fake camera (--use-fake-device-for-media-stream) plays a moving test pattern, so answers change frame to
frame. Training here is head-only on a few photos.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.test_webcam import add_photos, make_project, wait_job  # noqa: E402

PER_CLASS = 6
TRAIN_TIMEOUT_MS = 180_000
# 100 characters, with the part that tells it from a similar class at the very end.
LONG = "Honey bees on a summer meadow photographed from very close with a macro lens, late in the afternoon!"
assert len(LONG) == 100


def hex_rgb(color: str) -> str:
    return "rgb({}, {}, {})".format(*(int(color[i:i + 2], 16) for i in (1, 3, 5)))


def stats(page: Page) -> dict:
    return page.evaluate("() => { const s = {...window.__previewStats}; delete s.last; return s; }")


def bar_values(page: Page) -> tuple[str, ...]:
    return tuple(page.locator("#predict-panel [data-testid=confidence-bar] [role=meter]").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-valuenow'))"))


def fill_colors(page: Page, scope: str) -> dict[str, str]:
    return page.evaluate("""(scope) => Object.fromEntries([...document.querySelectorAll(
        `${scope} [data-testid=confidence-bar]`)].map(li => [li.dataset.label,
        getComputedStyle(li.querySelector('.bar-fill')).backgroundColor]))""", scope)


def class_colors(api: httpx.Client, pid: int) -> dict[str, str]:
    return {c["name"]: hex_rgb(c["color"]) for c in api.get(f"/api/projects/{pid}").json()["classes"]}


def set_visibility(page: Page, hidden: bool) -> None:
    """What the browser does when the tab is switched away or back (headless Chromium never hides a page)."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
                                                            get: () => hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


def keep_track(page: Page) -> None:
    page.evaluate("() => { window.__track = document.querySelector('[data-testid=predict-video]')"
                  ".srcObject.getVideoTracks()[0]; }")


def test_webcam_preview_is_ready_after_training_on_the_page(page: Page, api: httpx.Client, hymenoptera: Path):
    pid, _ = make_project(api, "Preview after training")
    for label, cid in _.items():
        add_photos(api, cid, sorted((hymenoptera / "train" / label).glob("*.jpg"))[:PER_CLASS])
    page.goto(f"/projects/{pid}")
    panel = page.get_by_test_id("predict-panel")
    expect(panel).to_have_attribute("data-state", "no-model")

    # Webcam before there is a model: no camera yet, and the panel says when it will start.
    page.get_by_test_id("predict-mode-webcam").click()
    expect(panel).to_have_attribute("data-mode", "webcam")
    expect(page.get_by_test_id("predict-camera-idle")).to_contain_text("Once a model is trained")
    assert stats(page)["opened"] == 0
    expect(page.get_by_test_id("predict-input")).to_be_hidden()

    # Train from the page (head only: seconds); the page is not reloaded meanwhile.
    page.evaluate("() => { window.__sameDocument = true; }")
    page.get_by_test_id("train-advanced-toggle").click()
    page.get_by_test_id("train-mode").select_option("head")
    page.get_by_test_id("train-button").click()
    expect(panel).to_have_attribute("data-state", "ready", timeout=TRAIN_TIMEOUT_MS)
    expect(page.get_by_test_id("predict-fresh")).to_contain_text("Try your new model (v1)")
    assert page.evaluate("() => window.__sameDocument") is True

    # The camera opened by itself (Webcam was chosen) and the bars follow the picture several times a second.
    expect(panel).to_have_attribute("data-camera", "on")
    page.wait_for_function("() => window.__previewStats.frames >= 3", timeout=30_000)
    first, t0 = stats(page)["frames"], time.monotonic()
    seen = set()
    while time.monotonic() - t0 < 3:
        seen.add(bar_values(page))
        page.wait_for_timeout(100)
    answered = stats(page)["frames"] - first
    rate = answered / (time.monotonic() - t0)
    assert rate >= 3, f"{answered} answers in 3 s"
    assert len(seen) >= 3, f"the bars did not move with the picture: {seen}"
    assert stats(page)["errors"] == 0
    bars = page.locator("#predict-panel [data-testid=confidence-bar]")
    expect(bars).to_have_count(2)
    # Live, the bars keep their places (the model's label order) instead of swapping as scores cross.
    assert bars.evaluate_all("els => els.map(e => e.dataset.label)") == ["ants", "bees"]
    assert fill_colors(page, "#predict-panel") == class_colors(api, pid)
    expect(page.get_by_test_id("predict-rate")).to_have_text(re.compile(r"^Live · \d+\.\d a second$"))
    # Answers this frequent are not read out one by one.
    expect(page.locator("#predict-panel [data-role=result]")).to_have_attribute("aria-live", "off")

    # A hidden tab turns the camera off; coming back turns it on again.
    keep_track(page)
    set_visibility(page, hidden=True)
    expect(panel).to_have_attribute("data-camera", "off")
    assert page.evaluate("() => window.__track.readyState") == "ended"
    set_visibility(page, hidden=False)
    expect(panel).to_have_attribute("data-camera", "on")
    assert stats(page)["opened"] == 2

    # Stop: the camera is released, answers stop, and Start brings it back.
    page.wait_for_function("() => document.querySelector('[data-testid=predict-video]').srcObject")
    keep_track(page)
    page.get_by_test_id("predict-stop").click()
    expect(panel).to_have_attribute("data-camera", "off")
    assert page.evaluate("() => window.__track.readyState") == "ended"
    expect(page.get_by_test_id("predict-camera-idle")).to_contain_text("The camera is off")
    stopped_at = stats(page)["frames"]
    page.wait_for_timeout(700)
    assert stats(page)["frames"] == stopped_at
    expect(page.get_by_test_id("predict-start")).to_be_visible()
    page.get_by_test_id("predict-start").click()
    expect(panel).to_have_attribute("data-camera", "on")
    page.wait_for_function(f"() => window.__previewStats.frames > {stopped_at}", timeout=30_000)

    # File mode: the camera goes off, a photo is classified as before, bars by score.
    keep_track(page)
    page.get_by_test_id("predict-mode-file").click()
    expect(panel).to_have_attribute("data-camera", "off")
    assert page.evaluate("() => window.__track.readyState") == "ended"
    photo = sorted((hymenoptera / "val" / "bees").glob("*.jpg"))[0]
    page.get_by_test_id("predict-input").set_input_files(photo)
    expect(page.get_by_test_id("predict-preview")).to_be_visible()
    expect(page.locator("#predict-panel [data-role=result]")).to_have_attribute("aria-live", "polite")
    top = page.get_by_test_id("predict-top")
    expect(top).to_be_visible()
    expect(bars).to_have_count(2)
    shown = [float(t.rstrip("%")) for t in page.locator("#predict-panel .bar-value").all_text_contents()]
    assert shown == sorted(shown, reverse=True) and sum(shown) == pytest.approx(100, abs=0.2)
    expect(bars.first).to_have_attribute("data-label", top.get_attribute("data-label"))
    # The full live page is still a click away.
    expect(page.get_by_test_id("live-link")).to_have_attribute("href", f"/projects/{pid}/live")
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_have_count(0)


def no_overlap(a: dict, b: dict) -> bool:
    return a["right"] <= b["left"] + 0.5 or b["right"] <= a["left"] + 0.5 \
        or a["bottom"] <= b["top"] + 0.5 or b["bottom"] <= a["top"] + 0.5


BOXES = """(scope) => {
    const box = (el) => { const r = el.getBoundingClientRect();
        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
    const top = document.querySelector(`${scope} [data-testid=predict-top]`);
    const name = top.querySelector('.top-name');
    const closest = top.querySelector('.closest-name');
    return {
        vw: document.documentElement.clientWidth,
        top: {box: box(top), text: top.textContent, scroll: top.scrollWidth, client: top.clientWidth,
              names: [...(closest || name).getClientRects()].map(r => ({left: r.left, right: r.right, top: r.top,
                                                                        bottom: r.bottom})),
              score: box(top.querySelector('.top-score')), nameText: (closest || name).textContent},
        bars: [...document.querySelectorAll(`${scope} [data-testid=confidence-bar]`)].map(li => {
            const label = li.querySelector('.bar-label');
            const tail = label.querySelector('.name-cut-tail');
            return {label: li.dataset.label, text: label.textContent, title: label.title, box: box(label),
                    tail: tail ? box(tail) : null, tailText: tail ? tail.textContent : null,
                    value: box(li.querySelector('.bar-value')), track: box(li.querySelector('.bar-track'))};
        }),
    };
}"""


def assert_readable(page: Page, scope: str) -> None:
    """The whole long name is in the top line, wrapped, never under its score; each bar's label keeps its
    start and end on screen and no percentage or bar sits on it."""
    seen = page.evaluate(BOXES, scope)
    top = seen["top"]
    assert LONG in top["text"] and top["nameText"] == LONG
    assert top["scroll"] <= top["client"] + 1, "the top line is cut off"
    assert top["box"]["right"] <= seen["vw"] + 0.5
    for rect in top["names"]:
        assert no_overlap(rect, top["score"]), f"the score covers the name: {rect} {top['score']}"
        assert rect["right"] <= seen["vw"] + 0.5
    for bar in seen["bars"]:
        assert bar["text"] == bar["label"] == bar["title"], "the whole name stays in the text (screen readers)"
        assert no_overlap(bar["box"], bar["value"]), f"the percentage covers {bar['label'][:20]}…"
        assert no_overlap(bar["box"], bar["track"])
        assert bar["box"]["right"] <= seen["vw"] + 0.5
        if bar["label"] == LONG:
            assert bar["tailText"] == LONG[-10:], "the end of the name (what tells classes apart) is kept"
            assert bar["tail"]["right"] <= bar["box"]["right"] + 0.5, "the end of the name is clipped"
            assert bar["tail"]["left"] >= bar["box"]["left"] + 40, "too little of the start is left"


def test_long_class_names_stay_readable_at_phone_width_with_class_colours(phone_page: Page, api: httpx.Client,
                                                                         hymenoptera: Path, tmp_path: Path):
    pid, ids = make_project(api, "Long names", classes=("ants", LONG))
    add_photos(api, ids["ants"], sorted((hymenoptera / "train" / "ants").glob("*.jpg"))[:PER_CLASS])
    add_photos(api, ids[LONG], sorted((hymenoptera / "train" / "bees").glob("*.jpg"))[:PER_CLASS])
    r = api.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 5})
    assert r.status_code == 202, r.text
    assert wait_job(api, r.json()["job_id"])["status"] == "succeeded"
    colors = class_colors(api, pid)
    assert len(set(colors.values())) == 2
    page = phone_page
    page.goto(f"/projects/{pid}")
    top = page.get_by_test_id("predict-top")
    for bee in sorted((hymenoptera / "val" / "bees").glob("*.jpg"))[:4]:  # one the model takes for the long class
        page.get_by_test_id("predict-input").set_input_files(bee)
        expect(top).to_have_attribute("data-label", re.compile("."))
        expect(page.get_by_test_id("predict-panel")).not_to_have_attribute("data-busy", "true")
        if top.get_attribute("data-label") == LONG:
            break
    assert top.get_attribute("data-label") == LONG, "no bee photo looked like the bee class"
    expect(page.locator("#predict-panel [data-testid=confidence-bar]")).to_have_count(2)
    page.get_by_test_id("predict-panel").scroll_into_view_if_needed()
    assert fill_colors(page, "#predict-panel") == colors
    assert_readable(page, "#predict-panel")
    page.get_by_test_id("predict-panel").screenshot(path=str(tmp_path / "long-names-phone.png"))

    # The public share page: the same bars, coloured by the project's classes, and as readable.
    url = api.post(f"/api/projects/{pid}/share").json()["url"]
    page.goto(httpx.URL(url).path)
    page.get_by_test_id("share-input").set_input_files(bee)
    expect(page.locator("#share-result [data-testid=confidence-bar]")).to_have_count(2)
    assert fill_colors(page, "#share-result") == colors
    assert_readable(page, "#share-result")


TOASTS = """([n, kind, text]) => import('/static/js/ui.js').then(m => {
    for (let i = 1; i <= n; i++) m.toast(`${text} ${i}`, kind);
})"""
ACTION = """(text) => import('/static/js/ui.js').then(m => {
    window.__undone = 0;
    m.toast(text, 'info', {action: {label: 'Undo', onClick: () => { window.__undone += 1; }}});
})"""
STACK = """() => {
    const shown = [...document.querySelectorAll('[data-testid=toast], [data-testid=toast-more]')]
        .filter(el => el.checkVisibility());
    const rects = shown.map(el => el.getBoundingClientRect());
    return {vw: document.documentElement.clientWidth, vh: window.innerHeight, count: shown.length,
            left: Math.min(...rects.map(r => r.left)), right: Math.max(...rects.map(r => r.right)),
            top: Math.min(...rects.map(r => r.top)), bottom: Math.max(...rects.map(r => r.bottom))};
}"""


def visible_toasts(page: Page):
    return page.locator("[data-testid=toast]:visible")


def train_button_box(page: Page) -> dict:
    return page.get_by_test_id("train-button").evaluate(
        "el => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top,"
        " bottom: r.bottom}; }")


def test_toasts_keep_to_a_corner_expire_and_offer_an_action(page: Page, api: httpx.Client, tmp_path: Path):
    pid = api.post("/api/projects", json={"name": "Toasts"}).json()["id"]
    page.goto(f"/projects/{pid}")
    page.mouse.move(5, 5)
    t0 = time.monotonic()
    page.evaluate(TOASTS, [6, "error", "Could not upload photo"])
    expect(visible_toasts(page)).to_have_count(3)
    expect(page.locator("[data-testid=toast]")).to_have_count(6)
    expect(page.get_by_test_id("toast-more")).to_have_text("+3 earlier messages")
    expect(visible_toasts(page).last).to_have_text("Could not upload photo 6")
    assert set(page.locator("[data-testid=toast]").evaluate_all("els => els.map(e => e.role)")) == {"alert"}
    stack = page.evaluate(STACK)
    assert stack["right"] >= stack["vw"] - 24 and stack["bottom"] >= stack["vh"] - 24, f"not in the corner: {stack}"
    assert stack["right"] - stack["left"] <= min(420, 0.4 * stack["vw"]), stack
    assert stack["bottom"] - stack["top"] <= 0.5 * stack["vh"], stack
    assert no_overlap(stack, train_button_box(page)), "the messages cover the Train button"
    page.screenshot(path=str(tmp_path / "toasts-desktop.png"))

    # An info message with an action: hovering it holds it past its 5 s.
    page.evaluate(ACTION, "Photo deleted.")
    info = page.locator("[data-testid=toast][data-kind=info]")
    expect(info).to_be_visible()
    assert info.get_attribute("role") == "status"
    info.hover()
    expect(info).to_have_attribute("data-paused", "true")
    page.wait_for_timeout(max(0, 6000 - (time.monotonic() - t0) * 1000))
    assert page.locator("[data-testid=toast][data-kind=error]").count() > 0, "errors stay longer than 6 s"
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_have_count(0, timeout=5000)
    gone = time.monotonic() - t0
    assert 7.5 <= gone <= 10.5, f"errors lasted {gone:.1f} s"
    expect(page.get_by_test_id("toast-more")).to_be_hidden()
    assert time.monotonic() - t0 > 8
    expect(info).to_be_visible()  # still held: more than its 5 s since it came
    page.mouse.move(5, 5)
    expect(info).to_have_count(0, timeout=6000)  # the rest of its 5 s

    # The action runs once and closes its message; a close button closes any message.
    page.evaluate(ACTION, "Photo deleted.")
    page.get_by_test_id("toast-action").click()
    expect(page.locator("[data-testid=toast]")).to_have_count(0)
    assert page.evaluate("() => window.__undone") == 1
    page.evaluate(TOASTS, [1, "error", "Training failed"])
    page.locator("[data-testid=toast]").get_by_role("button", name="Dismiss message").click()
    expect(page.locator("[data-testid=toast]")).to_have_count(0)


def test_toasts_on_a_phone_are_short_and_move_off_the_train_button(phone_page: Page, api: httpx.Client,
                                                                   tmp_path: Path):
    page = phone_page
    # Enough classes that Train (under them on a phone) starts below the fold.
    pid, _ = make_project(api, "Phone toasts", classes=("one", "two", "three", "four"))
    page.goto(f"/projects/{pid}")
    page.evaluate(TOASTS, [6, "error", "Could not upload photo"])
    expect(visible_toasts(page)).to_have_count(3)
    stack = page.evaluate(STACK)
    assert stack["left"] <= 12 and stack["right"] >= stack["vw"] - 12, f"not full width: {stack}"
    assert stack["bottom"] >= stack["vh"] - 12, f"not at the bottom: {stack}"
    assert stack["bottom"] - stack["top"] <= 0.36 * stack["vh"], f"too tall: {stack}"
    page.screenshot(path=str(tmp_path / "toasts-phone.png"))
    # Scrolled so that Train sits at the bottom of the screen, the messages go to the top instead.
    page.get_by_test_id("train-button").evaluate("el => el.scrollIntoView({block: 'end'})")
    page.wait_for_function("() => document.querySelector('.toasts').classList.contains('toasts-moved')")
    stack = page.evaluate(STACK)
    assert stack["top"] <= 12 and stack["left"] <= 12 and stack["right"] >= stack["vw"] - 12, stack
    assert no_overlap(stack, train_button_box(page)), "the messages cover the Train button"
    page.screenshot(path=str(tmp_path / "toasts-phone-moved.png"))
    # Scrolled back, they return to the bottom.
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_function("() => !document.querySelector('.toasts').classList.contains('toasts-moved')")
