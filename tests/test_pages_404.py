"""Pages that are not there answer a page (HTML, 404, in the site's style); the API keeps its JSON errors;
the site icon is served where browsers look for it."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.headers import DEFAULT_HEADERS
from app.main import create_app

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}
PASSWORD = "correct horse battery"


class Page(HTMLParser):
    """What a person sees of a page: its heading, links, stylesheets and icons."""

    def __init__(self, html: str):
        super().__init__()
        self.h1, self.links, self.heads, self._in_h1 = "", [], [], False
        self.testids: dict[str, str] = {}
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h1":
            self._in_h1 = True
        if tag == "a":
            self.links.append(a.get("href"))
        if tag == "link":
            self.heads.append((a.get("rel"), a.get("href"), a.get("type")))
        self._open.append(a.get("data-testid", ""))

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._in_h1:
            self.h1 += data
        for testid in filter(None, self._open):
            self.testids[testid] = self.testids.get(testid, "") + data


def assert_not_found_page(r, heading: str) -> Page:
    assert r.status_code == 404, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    for name, value in DEFAULT_HEADERS.items():  # the CSP and the other headers, as on every page
        assert r.headers[name] == value, name
    page = Page(r.text)
    assert page.h1.strip() == heading
    assert "/" in page.links, "a way home"
    assert ("stylesheet", "/static/style.css?v=" + r.text.split("/static/style.css?v=")[1].split('"')[0],
            None) in page.heads, "the site's own style"
    assert "not-found" in page.testids
    return page


def test_an_unknown_page_is_a_page_with_a_way_home(client: TestClient):
    r = client.get("/no/such/page", headers=BROWSER)
    page = assert_not_found_page(r, "Page not found")
    assert page.testids["not-found-path"].strip() == "/no/such/page"
    assert "{" not in r.text[:20], "not the JSON error"


def test_the_api_keeps_json_errors(client: TestClient):
    for path in ("/api/no-such-thing", "/api/projects/999"):
        r = client.get(path, headers=BROWSER)  # even when a browser asks for HTML
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        assert isinstance(r.json()["detail"], str)
    # A script that does not ask for HTML gets the JSON error anywhere, as before.
    r = client.get("/no/such/page", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.get("/projects/999")
    assert r.status_code == 404
    assert r.json()["detail"] == "project 999 was deleted, never existed, or is not shared with you"
    # A bad query on a real page is still the request's fault (422), not a missing page.
    assert client.get("/api/projects/abc", headers=BROWSER).status_code == 422


def test_a_missing_project_is_the_html_404_on_each_of_its_pages(client: TestClient):
    for path in ("/projects/999", "/projects/999/models", "/projects/999/live"):
        assert_not_found_page(client.get(path, headers=BROWSER), "Project not found")
    # A path that cannot name a project is no page either.
    assert_not_found_page(client.get("/projects/not-a-number", headers=BROWSER), "Page not found")
    # The project that does exist still opens.
    pid = client.post("/api/projects", json={"name": "here"}).json()["id"]
    assert client.get(f"/projects/{pid}", headers=BROWSER).status_code == 200


def test_someone_elses_project_looks_like_a_missing_one(tmp_path, cache_dir):
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir, auth="required"))) as admin:
        code = admin.app.state.services.setup_code
        assert admin.post("/api/auth/setup", json={"code": code, "username": "admin", "password": PASSWORD}
                          ).status_code == 201
        assert admin.post("/api/users", json={"username": "bob", "password": PASSWORD}).status_code == 201
        pid = admin.post("/api/projects", json={"name": "the admin's"}).json()["id"]
        bob = TestClient(admin.app)
        assert bob.post("/api/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 200
        theirs = assert_not_found_page(bob.get(f"/projects/{pid}", headers=BROWSER), "Project not found")
        missing = assert_not_found_page(bob.get(f"/projects/{pid + 100}", headers=BROWSER), "Project not found")
        assert theirs.testids["not-found"].replace(str(pid), "N") == \
            missing.testids["not-found"].replace(str(pid + 100), "N"), "nothing tells them apart"
        assert "bob" in bob.get("/nowhere", headers=BROWSER).text, "a signed-in visitor keeps the account menu"
        # Signed out: a project page asks for the login first (as before); an unknown page is just not there.
        stranger = TestClient(admin.app)
        r = stranger.get(f"/projects/{pid}", headers=BROWSER, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert_not_found_page(stranger.get("/nowhere", headers=BROWSER), "Page not found")
        # Browsers ask for the icon before anyone signs in.
        r = stranger.get("/favicon.ico")
        assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"


def test_the_site_icon(client: TestClient):
    r = client.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/x-icon"
    ico = Image.open(io.BytesIO(r.content))
    assert ico.format == "ICO"
    assert {(16, 16), (32, 32)} <= set(ico.info["sizes"])
    r = client.get("/static/favicon.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(r.text).tag == "{http://www.w3.org/2000/svg}svg"
    r = client.get("/static/apple-touch-icon.png")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (180, 180)
    # Every page names them (no more data: placeholder).
    icons = [(rel, href, kind) for rel, href, kind in Page(client.get("/", headers=BROWSER).text).heads
             if rel in ("icon", "apple-touch-icon")]
    hrefs = [href.split("?")[0] for _, href, _ in icons]
    assert hrefs == ["/favicon.ico", "/static/favicon.svg", "/static/apple-touch-icon.png"]
    assert ("icon", icons[1][1], "image/svg+xml") in icons
    for href in (h for _, h, _ in icons):
        assert client.get(href).status_code == 200


@pytest.mark.parametrize("method", ["post", "delete"])
def test_other_methods_on_unknown_paths_stay_json(client: TestClient, method: str):
    r = getattr(client, method)("/no/such/page", headers=BROWSER)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
