"""In Chromium: /docs and /redoc with no other host reachable, and a page on another origin that tries to act."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
from playwright.sync_api import Page, Route, expect  # noqa: E402


def only_this_machine(page: Page) -> list[str]:
    """Aborts every request to a host other than this machine; the list of aborted URLs comes back, and grows
    as the page runs."""
    aborted: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            aborted.append(url)
            route.abort()

    page.route("**/*", route)
    return aborted


def test_swagger_ui_renders_from_this_server_alone(page: Page):
    aborted = only_this_machine(page)
    page.goto("/docs")
    expect(page).to_have_title("snapclass API - Swagger UI")
    health = page.locator(".opblock-summary-path", has_text="/api/health")
    expect(health).to_be_visible()
    expect(page.locator(".opblock")).not_to_have_count(0)
    # Try it out: a same-origin request from the docs page passes the cross-site check.
    page.locator(".opblock-summary", has=health).click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody td.response-col_status")).to_have_text("200")
    assert aborted == []


def test_redoc_renders_and_searches_from_this_server_alone(page: Page):
    aborted = only_this_machine(page)
    page.goto("/redoc")
    expect(page).to_have_title("snapclass API - ReDoc")
    expect(page.get_by_role("heading", level=1)).to_contain_text("snapclass")
    expect(page.locator("[role=menuitem]", has_text="projects").first).to_be_visible()
    # The search index runs in a Web Worker made from a blob: URL (allowed on this page only).
    page.get_by_placeholder("Search...").fill("health")
    expect(page.locator("[data-role='search:results']")).to_contain_text("Health")
    assert aborted == []


# Runs on a page: uploads a real JPEG (a "simple" request: no CORS preflight stops it) and opens the live
# socket; says what came of each. From our own page both work, which proves the script could do harm.
ATTACK = """async ([base, cid, pid]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 400; canvas.height = 300;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#c33"; ctx.fillRect(0, 0, 400, 300);
  const jpeg = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg"));
  const form = new FormData();
  form.append("files", jpeg, "planted.jpg");
  let upload;
  try {
    const r = await fetch(`${base}/api/classes/${cid}/samples`, {method: "POST", body: form, mode: "no-cors",
                                                                 credentials: "include"});
    upload = r.type === "opaque" ? "sent" : r.status;
  } catch (e) { upload = `failed: ${e}`; }
  const socket = await new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace("http", "ws")}/api/projects/${pid}/live`);
    ws.onopen = () => { ws.close(); resolve("open"); };
    ws.onclose = () => resolve("closed");
  });
  return {upload, socket};
}"""


class EvilPage(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"<!doctype html><title>evil</title><p>Nothing to see here.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def evil_port():
    """Another web server on this machine: its pages are another origin, a real one (a page Playwright made up
    would count as a public site, whose requests to loopback Chromium stops before they reach us)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EvilPage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def handshakes(page: Page) -> list[int]:
    """HTTP statuses of the WebSocket handshakes the page makes, as Chromium saw them."""
    statuses: list[int] = []
    cdp = page.context.new_cdp_session(page)
    cdp.on("Network.webSocketHandshakeResponseReceived", lambda e: statuses.append(e["response"]["status"]))
    # A refused handshake comes only as an error message: "… Unexpected response code: 403".
    cdp.on("Network.webSocketFrameError",
           lambda e: statuses.extend(int(code) for code in re.findall(r"response code: (\d+)", e["errorMessage"])))
    cdp.send("Network.enable")
    return statuses


def settled(page: Page, statuses: list[int], timeout_ms: int = 5000) -> list[int]:
    """CDP events arrive after the script that caused them returns: wait for the first one."""
    for _ in range(timeout_ms // 50):
        if statuses:
            break
        page.wait_for_timeout(50)
    return statuses


@pytest.mark.parametrize("attacker", ["another site", "another port"])
def test_a_page_on_another_origin_cannot_upload_or_open_the_live_socket(page: Page, server: str,
                                                                        api: httpx.Client, evil_port: int,
                                                                        attacker: str):
    pid = api.post("/api/projects", json={"name": f"target of {attacker}"}).json()["id"]
    cid = api.post(f"/api/projects/{pid}/classes", json={"name": "ants"}).json()["id"]
    # localhost is another site than 127.0.0.1; the same host on another port is another origin of the site.
    host = {"another site": "localhost", "another port": "127.0.0.1"}[attacker]
    aborted = only_this_machine(page)
    statuses = handshakes(page)
    refusals = []
    page.on("response", lambda r: r.status == 403 and refusals.append(r.request.headers.get("origin")))

    page.goto(f"http://{host}:{evil_port}/")
    assert page.evaluate(ATTACK, [server, cid, pid]) == {"upload": "sent", "socket": "closed"}
    assert settled(page, statuses) == [403], "the server itself refused the WebSocket handshake"
    assert api.get(f"/api/classes/{cid}/samples").json() == []
    assert api.get(f"/api/classes/{cid}/samples").json() == []

    # A plain form posted across (no script needed): the browser lands on our refusal.
    page.set_content(f"""<form method="post" enctype="multipart/form-data"
        action="{server}/api/classes/{cid}/samples"><input type="file" name="files"><button>go</button></form>""")
    page.locator("input[type=file]").set_input_files({"name": "a.jpg", "mimeType": "image/jpeg",
                                                     "buffer": b"\xff\xd8not really"})
    page.get_by_role("button", name="go").click()
    expect(page.locator("body")).to_contain_text("cross-site request refused")
    assert api.get(f"/api/classes/{cid}/samples").json() == []
    assert refusals == [f"http://{host}:{evil_port}"] * 2  # the fetch's and the form's

    page.goto("/")  # our own page, under its CSP (connect-src 'self' covers our ws: URL)
    statuses = handshakes(page)  # a new session: the old one went with the other origin's renderer
    assert page.evaluate(ATTACK, [server, cid, pid]) == {"upload": 201, "socket": "open"}
    assert settled(page, statuses) == [101]
    assert [s["filename"] for s in api.get(f"/api/classes/{cid}/samples").json()] == ["planted.jpg"]
    assert aborted == []


def test_behind_a_local_https_proxy_the_https_origin_is_ours(api: httpx.Client, server: str):
    """uvicorn trusts X-Forwarded-Proto from loopback (FORWARDED_ALLOW_IPS' default): a TLS proxy on this
    machine needs no setting. Without the header, the same https Origin is not ours."""
    https_origin = server.replace("http://", "https://")
    proxied = api.post("/api/projects", json={"name": "via proxy"},
                       headers={"Origin": https_origin, "X-Forwarded-Proto": "https"})
    assert proxied.status_code == 201, proxied.text
    direct = api.post("/api/projects", json={"name": "not via proxy"}, headers={"Origin": https_origin})
    assert direct.status_code == 403
    assert direct.json()["detail"] == f"cross-site request refused: origin {https_origin} is not allowed"
