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
