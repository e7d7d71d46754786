"""The real `snapclass serve` process over a real socket."""

from __future__ import annotations

import httpx
import pytest

from bench.common import server


@pytest.fixture
def served(tmp_path):
    with server(tmp_path / "data") as (url, _):
        yield url, tmp_path / "data"


def test_serve_answers_health_ui_and_docs_and_keeps_its_data_in_the_data_dir(served):
    url, data = served
    assert httpx.get(f"{url}/api/health").json()["status"] == "ok"
    assert "snapclass" in httpx.get(f"{url}/").text
    assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "snapclass"
    assert (data / "snapclass.db").is_file()


def test_a_created_row_is_readable_as_soon_as_its_201_arrives(served):
    """The commit happens before the response is sent, never after."""
    url, _ = served
    with httpx.Client(base_url=url) as client:
        for i in range(120):
            pid = client.post("/api/projects", json={"name": f"p{i}"}).json()["id"]
            r = client.post(f"/api/projects/{pid}/classes", json={"name": "c"})
            assert r.status_code == 201, (i, r.text)
            assert client.patch(f"/api/classes/{r.json()['id']}", json={"name": "d"}).status_code == 200
            assert client.get(f"/api/projects/{pid}").json()["classes"][0]["name"] == "d"


def test_without_login_only_a_local_host_name_gets_in(served):
    """DNS rebinding: a site whose name resolves to 127.0.0.1 must not become the login-free local user."""
    url, _ = served
    port = url.rsplit(":", 1)[1]
    for host, allowed in ((f"127.0.0.1:{port}", True), (f"localhost:{port}", True), (f"[::1]:{port}", True),
                          (f"evil.example:{port}", False), ("evil.example", False)):
        r = httpx.get(f"{url}/api/projects", headers={"Host": host})
        assert (r.status_code == 200) is allowed, (host, r.status_code, r.text)
        if not allowed:
            assert r.status_code == 401 and "loopback" in r.json()["detail"]
            page = httpx.get(f"{url}/", headers={"Host": host})
            assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_host_name_the_admin_listed_counts_as_this_machine(tmp_path):
    with server(tmp_path / "data", env={"SNAPCLASS_ALLOWED_ORIGINS": "http://snap.lan:8000"}) as (url, _):
        assert httpx.get(f"{url}/api/projects", headers={"Host": "snap.lan:8000"}).status_code == 200
        assert httpx.get(f"{url}/api/projects", headers={"Host": "evil.example:8000"}).status_code == 401
