"""Fixtures for the real-browser tests: the real server in a subprocess, Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATASETS = Path(os.environ.get("SNAPCLASS_TEST_DATASETS") or ROOT.parent / "shared" / "datasets")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
START_TIMEOUT_S = 60


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def _serve(tmp_path_factory, name: str, *args: str) -> Iterator[tuple[str, Path]]:
    """`python -m app serve ARGS` on a free port with its own data dir: (base URL, log file); stopped at the end."""
    data_dir = tmp_path_factory.mktemp(name)
    log_path = data_dir.parent / f"{name}.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # snapclass.test: the name test_webcam maps to 127.0.0.1 to get a page that is not a secure context. Without
    # login a server answers only names of this machine (DNS rebinding), or names the admin listed, as here.
    env = {**os.environ, "SNAPCLASS_LOG_LEVEL": "warning", "SNAPCLASS_ALLOWED_ORIGINS": f"http://snapclass.test:{port}"}
    env.pop("DATABASE_URL", None)
    env.pop("SNAPCLASS_AUTH", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /api/health in {START_TIMEOUT_S} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> str:
    """Base URL of the server as most people start it: on loopback, so login is off (auth "auto")."""
    with _serve(tmp_path_factory, "snapclass-data") as (url, _log):
        yield url


@dataclass(frozen=True)
class AuthServer:
    url: str
    setup_code: str  # the one-time code for the first account, as `serve` printed it in its log


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory) -> AuthServer:
    """A second server with login required (`--auth required`) on its own data dir, for the accounts UI."""
    with _serve(tmp_path_factory, "snapclass-auth-data", "--auth", "required") as (url, log_path):
        found = re.search(r"one-time code (\d{4}-\d{4}-\d{4})", log_path.read_text())
        if found is None:
            pytest.fail(f"no one-time setup code in the log of a server without accounts:\n{log_path.read_text()}")
        yield AuthServer(url=url, setup_code=found.group(1))


@pytest.fixture(scope="session")
def api(server):
    """An HTTP client on the live server, for setting up what a test does not do through the page."""
    with httpx.Client(base_url=server, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def playwright_sync():
    """The one Playwright driver of the session (the sync API allows one per thread)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright_sync, args=CHROMIUM_ARGS):
    return playwright_sync.chromium.launch(executable_path=str(CHROMIUM), args=args)


@pytest.fixture(scope="session")
def browser(playwright_sync):
    browser = launch(playwright_sync)
    yield browser
    browser.close()


def _page(browser, server, request, tmp_path, **context_args):
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    context = browser.new_context(base_url=server, accept_downloads=True, **context_args)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The pages run under a strict CSP (app/headers.py): anything it refuses is a bug of the page.
    page.on("console", lambda message: csp_violation(message.text) and errors.append(message.text))
    yield page
    # A screenshot of how every test ended (also a failing one), to look at.
    try:
        page.screenshot(path=str(tmp_path / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors or CSP violations: {errors}"


def csp_violation(text: str) -> bool:
    return "Content Security Policy" in text


@pytest.fixture
def page(browser, server, request, tmp_path):
    yield from _page(browser, server, request, tmp_path, viewport=DESKTOP)


@pytest.fixture
def phone_page(browser, server, request, tmp_path):
    yield from _page(browser, server, request, tmp_path, viewport=PHONE, device_scale_factor=2,
                     is_mobile=True, has_touch=True)


@pytest.fixture(scope="session")
def hymenoptera() -> Path:
    path = DATASETS / "hymenoptera"
    if not (path / "train" / "ants").is_dir():
        pytest.skip(f"the hymenoptera photos are missing: {path}")
    return path
