"""Cross-site refusal on every state change and WebSocket, and the security headers on every response."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from app.crosssite import normalize_origin
from app.main import create_app
from tests.conftest import jpeg_bytes, make_project, photos

ALLOWED = "https://school.example, http://lab.example:8080"
OWN = "http://testserver"  # TestClient's base URL: scheme + Host of every request it makes


@pytest.fixture(params=["auto", "off", "required"], ids=["login auto", "login off", "login required"])
def site(request, tmp_path, cache_dir):
    """The client of every cross-site test, in every login mode (signed in where login is required): the
    cross-site rules hold the same whatever the mode."""
    settings = Settings(data_dir=tmp_path / "data", cache_path=cache_dir, allowed_origins=ALLOWED,
                        auth=request.param)
    with TestClient(create_app(settings)) as c:
        if request.param == "required":
            code = c.app.state.services.setup_code
            r = c.post("/api/auth/setup", json={"code": code, "username": "admin", "password": "long enough"})
            assert r.status_code == 201, r.text
            assert c.get("/api/projects").status_code == 200
        yield c


def world(client: TestClient) -> dict:
    """Everything a cross-site request could change, as the API shows it (sent with no Origin: a script)."""
    projects = client.get("/api/projects").json()
    classes = {p["id"]: client.get(f"/api/projects/{p['id']}").json()["classes"] for p in projects}
    samples = {c["id"]: [s["id"] for s in client.get(f"/api/classes/{c['id']}/samples").json()]
               for cs in classes.values() for c in cs}
    return {"projects": projects, "classes": classes, "samples": samples}


def seeded(client: TestClient) -> tuple[int, int, int]:
    pid, (cid, _) = make_project(client, "mine", classes=("ants", "bees"))
    r = client.post(f"/api/classes/{cid}/samples", files=[("files", ("a.jpg", jpeg_bytes()))])
    return pid, cid, r.json()["added"][0]["id"]


def state_changes(client: TestClient, pid: int, cid: int, sid: int, headers: dict) -> list:
    """One of each kind of state-changing request a page on another site could make a browser send."""
    ant = photos("hymenoptera", "train", "ants", limit=1)[0]
    return [
        client.post("/api/projects", json={"name": "planted"}, headers=headers),
        client.patch(f"/api/projects/{pid}", json={"name": "renamed"}, headers=headers),
        client.post(f"/api/projects/{pid}/classes", json={"name": "wasps"}, headers=headers),
        client.patch(f"/api/classes/{cid}", json={"name": "renamed"}, headers=headers),
        client.post(f"/api/classes/{cid}/samples", files=[("files", (ant.name, ant.read_bytes()))], headers=headers),
        client.delete(f"/api/samples/{sid}", headers=headers),
        client.delete(f"/api/classes/{cid}", headers=headers),
        client.delete(f"/api/projects/{pid}", headers=headers),
    ]


FOREIGN = {
    "another site": ({"Origin": "https://evil.example"}, "https://evil.example"),
    "Origin null": ({"Origin": "null"}, "null"),
    "a look-alike host": ({"Origin": "http://testserver.evil.example"}, "http://testserver.evil.example"),
    "another port": ({"Origin": "http://testserver:8000"}, "http://testserver:8000"),
    "https, not http": ({"Origin": "https://testserver"}, "https://testserver"),
    "a listed origin on another port": ({"Origin": "http://lab.example"}, "http://lab.example"),
    "Referer only": ({"Referer": "https://evil.example/page?x=1"}, "https://evil.example"),
    "Sec-Fetch-Site only": ({"Sec-Fetch-Site": "cross-site"}, "(unknown, Sec-Fetch-Site: cross-site)"),
    "own Origin but cross-site fetch": ({"Origin": OWN, "Sec-Fetch-Site": "cross-site"}, OWN),
}


@pytest.mark.parametrize(("headers", "named"), FOREIGN.values(), ids=FOREIGN.keys())
def test_cross_site_state_changes_are_refused_and_change_nothing(site, headers, named):
    pid, cid, sid = seeded(site)
    before = world(site)
    for r in state_changes(site, pid, cid, sid, headers):
        assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        assert r.json() == {"detail": f"cross-site request refused: origin {named} is not allowed"}
    assert world(site) == before


SAME_SITE = {
    "own origin": {"Origin": OWN},
    "own origin, default port and capitals": {"Origin": "HTTP://TestServer:80"},
    "own origin, same-origin fetch": {"Origin": OWN, "Sec-Fetch-Site": "same-origin"},
    "own Referer only": {"Referer": f"{OWN}/projects/1"},
    "listed origin": {"Origin": "https://school.example"},
    "listed origin with a port": {"Origin": "http://lab.example:8080", "Sec-Fetch-Site": "cross-site"},
    "listed Referer only": {"Referer": "https://school.example:443/page"},
    "no Origin nor Referer (a script)": {},
}


@pytest.mark.parametrize("headers", SAME_SITE.values(), ids=SAME_SITE.keys())
def test_same_origin_listed_origins_and_scripts_pass(site, headers):
    pid, cid, sid = seeded(site)
    codes = [r.status_code for r in state_changes(site, pid, cid, sid, headers)]
    assert codes == [201, 200, 201, 200, 201, 204, 204, 204]
    assert [p["name"] for p in world(site)["projects"]] == ["planted"]


def test_reading_is_not_refused_from_another_site(site):
    """GET/HEAD/OPTIONS change nothing; what they may read is the login's business, not the Origin's."""
    pid, *_ = seeded(site)
    foreign = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert site.get(f"/api/projects/{pid}", headers=foreign).status_code == 200
    assert site.head("/api/health", headers=foreign).status_code in (200, 405)
    assert site.options("/api/projects", headers=foreign).status_code != 403


@pytest.mark.parametrize(("headers", "named"), FOREIGN.values(), ids=FOREIGN.keys())
def test_cross_site_websocket_is_closed_before_it_opens(site, headers, named):
    pid, *_ = seeded(site)
    with pytest.raises(WebSocketDisconnect) as refused, site.websocket_connect(f"/api/projects/{pid}/live",
                                                                              headers=headers) as ws:
        ws.send_bytes(jpeg_bytes())
        ws.receive_json()
    assert refused.value.code == 1008


@pytest.mark.parametrize("headers", SAME_SITE.values(), ids=SAME_SITE.keys())
def test_same_origin_websocket_opens_and_answers(site, headers):
    pid, *_ = seeded(site)
    with site.websocket_connect(f"/api/projects/{pid}/live", headers=headers) as ws:
        ws.send_bytes(jpeg_bytes())
        assert ws.receive_json() == {"frame": 1, "error": "this project has no trained model yet: train it first"}


def test_behind_an_https_proxy_the_https_origin_is_ours(tmp_path, cache_dir):
    """uvicorn sets the scope's scheme from X-Forwarded-Proto when it trusts the proxy; TestClient does the same
    from its base URL: the page's https origin is then our own, its http twin is not."""
    settings = Settings(data_dir=tmp_path / "data", cache_path=cache_dir)
    with TestClient(create_app(settings), base_url="https://snapclass.example") as c:
        ok = c.post("/api/projects", json={"name": "p"}, headers={"Origin": "https://snapclass.example"})
        assert ok.status_code == 201
        assert c.post("/api/projects", json={"name": "q"}, headers={"Origin": "http://snapclass.example"}
                      ).status_code == 403
        with c.websocket_connect(f"wss://snapclass.example/api/projects/{ok.json()['id']}/live",
                                 headers={"Origin": "https://snapclass.example"}) as ws:
            ws.send_bytes(jpeg_bytes())
            assert "no trained model" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect), c.websocket_connect(
                f"wss://snapclass.example/api/projects/{ok.json()['id']}/live",
                headers={"Origin": "http://snapclass.example"}):
            pass


def test_allowed_origins_come_from_the_environment_and_are_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("SNAPCLASS_ALLOWED_ORIGINS", "https://A.example:443/, http://b:8080,,http://[::1]:80")
    assert Settings(data_dir=tmp_path).allowed_origins == ["https://a.example", "http://b:8080", "http://[::1]"]
    for bad in ("https://a.example/path", "a.example", "*", "https://user@a.example", "http://a:99999"):
        monkeypatch.setenv("SNAPCLASS_ALLOWED_ORIGINS", bad)
        with pytest.raises(ValidationError, match="is not an origin"):
            Settings(data_dir=tmp_path)


@pytest.mark.parametrize(("raw", "origin"), [
    ("http://Example.COM:80", "http://example.com"), ("https://example.com:443/x", "https://example.com"),
    ("https://example.com:8443", "https://example.com:8443"), ("http://[::1]:8000", "http://[::1]:8000"),
    ("null", None), ("", None), ("http://", None), ("http://a:notaport", None)])
def test_origins_are_compared_normalized(raw, origin):
    assert normalize_origin(raw) == origin


# --- Security headers ------------------------------------------------------------------------------------

PAGE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def policy(response) -> dict[str, str]:
    csp = response.headers["content-security-policy"]
    return dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))


def assert_guarded(response, **directives: str) -> None:
    for name, value in PAGE_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    csp = policy(response)
    assert {"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "object-src": "'none'",
            "base-uri": "'none'", "frame-ancestors": "'none'", "form-action": "'self'", "connect-src": "'self'",
            **{k.replace("_", "-"): v for k, v in directives.items()}}.items() <= csp.items()
    # No other host, no inline code, no eval, anywhere.
    assert not any(w.startswith(("http", "'unsafe-", "*")) or w.endswith(":") and w not in ("data:", "blob:")
                   for v in csp.values() for w in v.split()), csp


def test_every_kind_of_response_carries_the_security_headers(client):
    pid, (cid, _) = make_project(client)
    responses = {
        "page": client.get("/"), "project page": client.get(f"/projects/{pid}"),
        "API": client.get("/api/health"), "static file": client.get("/static/js/api.js"),
        "docs asset": client.get("/static/docs/swagger-ui.css"), "OpenAPI": client.get("/openapi.json"),
        "404 API": client.get("/api/projects/987654"), "404 path": client.get("/no/such/page"),
        "404 static": client.get("/static/nope.js"), "405": client.put("/api/health"),
        "422": client.post("/api/projects", json={"name": 7}),
        "403 cross-site": client.post("/api/projects", json={"name": "x"}, headers={"Origin": "https://evil.example"}),
        "/docs": client.get("/docs"),
    }
    expected = {"page": 200, "project page": 200, "API": 200, "static file": 200, "docs asset": 200, "OpenAPI": 200,
                "404 API": 404, "404 path": 404, "404 static": 404, "405": 405, "422": 422, "403 cross-site": 403,
                "/docs": 200}
    assert {k: r.status_code for k, r in responses.items()} == expected
    for r in responses.values():
        assert_guarded(r)


def test_a_crash_still_carries_the_security_headers(tmp_path, cache_dir):
    """Starlette writes the 500 page outside every middleware added with add_middleware: ours wraps it too."""
    app = create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir))

    @app.get("/crash")
    def crash():
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/crash")
    assert r.status_code == 500
    assert_guarded(r)


def test_redoc_page_allows_only_its_own_nonced_styles_and_a_blob_worker(client):
    pages = [client.get("/redoc"), client.get("/redoc")]
    nonces = []
    for r in pages:
        assert r.status_code == 200
        style = policy(r)["style-src"].split()
        assert style[0] == "'self'" and len(style) == 2 and style[1].startswith("'nonce-")
        nonce = style[1][len("'nonce-"):-1]
        assert len(nonce) >= 22 and f'nonce="{nonce}"' in r.text
        nonces.append(nonce)
        assert_guarded(r, style_src=f"'self' 'nonce-{nonce}'", worker_src="'self' blob:")
    assert nonces[0] != nonces[1]


def test_docs_pages_load_nothing_from_another_host(client):
    for url in ("/docs", "/redoc"):
        page = client.get(url).text
        assert "http://" not in page and "https://" not in page and "<script>" not in page
    bundle = client.get("/static/docs/redoc.standalone.js")
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in bundle.text
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200


def test_uploaded_images_are_sandboxed_and_never_sniffed(client):
    _, (cid, _) = make_project(client)
    ant = photos("hymenoptera", "train", "ants", limit=1)[0]
    sid = client.post(f"/api/classes/{cid}/samples", files=[("files", (ant.name, ant.read_bytes()))]
                      ).json()["added"][0]["id"]
    for kind in ("image", "thumbnail"):
        r = client.get(f"/api/samples/{sid}/{kind}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["content-security-policy"] == "sandbox; default-src 'none'"
        assert r.headers["content-disposition"] == "inline"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/api/samples/{sid}/image").content == ant.read_bytes()
