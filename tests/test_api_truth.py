"""The API answers what its schema says, through the real app over HTTP on real SQLite files: concurrent
deletes are 404 (never 500), timestamps are UTC-aware however they were read, JSON types are taken as they
are, and names that only look alike are the same name."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import jpeg_bytes, make_project, wait_job


def _photos(rgb: tuple[int, int, int], n: int = 3) -> list:
    return [("files", (f"p{i}.jpg", jpeg_bytes(tuple(max(0, c - 30 * i) for c in rgb), (96, 80)))) for i in range(n)]


def trained_project(client) -> tuple[int, dict]:
    """A project with two classes of (synthetic) photos and one trained version; returns it and the job."""
    pid, (red, blue) = make_project(client, "trained", ("red", "blue"))
    assert client.post(f"/api/classes/{red}/samples", files=_photos((220, 30, 30))).status_code == 201
    assert client.post(f"/api/classes/{blue}/samples", files=_photos((30, 30, 220))).status_code == 201
    r = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "epochs": 2, "folds": 1})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return pid, job


# --- 1. A row deleted by one request while another changes it ---


def test_renaming_or_adding_to_a_project_while_it_is_deleted_is_404_never_500(tmp_path, cache_dir):
    """Real concurrent requests, as a user double-clicking in two tabs would send them. Before the fix, about
    one round in three answered 500 (StaleDataError, ObjectDeletedError, a foreign key failure)."""
    app = create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir))
    allowed = {"rename project": {200, 404}, "rename class": {200, 404}, "add class": {201, 404},
               "upload": {201, 404}, "delete project": {204}}
    seen: Counter = Counter()
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(20):
            pid, (cid,) = make_project(client, "race", ("a",))
            requests = {
                "rename project": lambda p=pid: client.patch(f"/api/projects/{p}", json={"name": "renamed"}),
                "rename class": lambda c=cid: client.patch(f"/api/classes/{c}", json={"name": "b"}),
                "add class": lambda p=pid: client.post(f"/api/projects/{p}/classes", json={"name": "c"}),
                "upload": lambda c=cid: client.post(f"/api/classes/{c}/samples", files=_photos((9, 99, 9), 1)),
                "delete project": lambda p=pid: client.delete(f"/api/projects/{p}"),
            }
            start = threading.Barrier(len(requests))

            def send(name, request, start=start):
                start.wait()
                response = request()
                seen[name, response.status_code] += 1
                if response.status_code >= 400:
                    assert isinstance(response.json()["detail"], str)

            threads = [threading.Thread(target=send, args=item) for item in requests.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert client.get(f"/api/projects/{pid}").status_code == 404
    wrong = {key: n for key, n in seen.items() if key[1] not in allowed[key[0]]}
    assert not wrong, f"unexpected answers: {wrong} (all: {dict(seen)})"


def test_look_alike_class_names_sent_at_the_same_moment_make_one_class(client):
    """Both requests pass the first name check before either has written; the second check, made once the
    write holds the lock, refuses all but one (before: 95 rounds in 100 made two or more classes)."""
    for _ in range(10):
        pid = client.post("/api/projects", json={"name": "race"}).json()["id"]
        names = ["Dup", "dup", "DUP", "d\u200bup"]
        start, codes = threading.Barrier(len(names)), []

        def create(name, pid=pid, start=start, codes=codes):
            start.wait()
            codes.append(client.post(f"/api/projects/{pid}/classes", json={"name": name}).status_code)

        threads = [threading.Thread(target=create, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [201, 409, 409, 409]
        assert len(client.get(f"/api/projects/{pid}").json()["classes"]) == 1


# --- 2. Timestamps ---


def _timestamps(body) -> list[str]:
    """Every non-null `*_at` value anywhere in a JSON body."""
    if isinstance(body, list):
        return [t for item in body for t in _timestamps(item)]
    if isinstance(body, dict):
        found = [v for k, v in body.items() if k.endswith("_at") and isinstance(v, str)]
        return found + [t for k, v in body.items() if not k.endswith("_at") for t in _timestamps(v)]
    return []


def test_every_timestamp_is_utc_aware_and_reads_back_as_it_was_written(client):
    created = client.post("/api/projects", json={"name": "clock"}).json()
    fetched = client.get(f"/api/projects/{created['id']}").json()
    assert fetched["created_at"] == created["created_at"]  # SQLite handed back a naive one before
    listed = client.get("/api/projects").json()[0]
    assert listed["created_at"] == created["created_at"]

    pid, job = trained_project(client)
    cid = client.get(f"/api/projects/{pid}").json()["classes"][0]["id"]
    answers = [
        fetched, listed, job, client.get(f"/api/jobs/{job['id']}").json(),
        client.get(f"/api/projects/{pid}").json(), client.get(f"/api/projects/{pid}/models").json(),
        client.get(f"/api/models/{job['model_id']}").json(), client.get(f"/api/classes/{cid}/samples").json(),
        client.get(f"/api/projects/{pid}/jobs/latest").json(),
    ]
    stamps = _timestamps(answers)
    assert len(stamps) >= 12  # created/started/finished of the job, models, samples, projects
    for stamp in stamps:
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0), stamp
    assert job["started_at"] <= job["finished_at"]


# --- 3. JSON types are taken as they are ---


@pytest.mark.parametrize("body", [
    {"name": "p", "base_model_id": False},  # was taken as model 0
    {"name": "p", "base_model_id": True},
    {"name": "p", "base_model_id": "1"},
    {"name": "p", "base_model_id": 1.5},
    {"name": 5},
    {"name": "p", "backbone": 0},
])
def test_creating_a_project_refuses_values_of_the_wrong_json_type(client, body):
    r = client.post("/api/projects", json=body)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)  # FastAPI's field errors, as documented
    assert client.get("/api/projects").json() == []


def test_training_and_model_settings_refuse_wrong_json_types_but_take_integers_for_numbers(client):
    pid, job = trained_project(client)
    client.post(f"/api/projects/{pid}/classes", json={"name": "empty"})  # now untrainable: 409 once valid
    train = f"/api/projects/{pid}/train"
    for bad in ({"epochs": "5"}, {"epochs": True}, {"augment": 1}, {"augment": "true"}, {"learning_rate": "0.1"},
                {"learning_rate": False}, {"seed": 1.5}, {"mode": 1}):
        r = client.post(train, json=bad)
        assert r.status_code == 422, (bad, r.text)
    for good in ({"epochs": 5}, {"learning_rate": 1}, {"learning_rate": 0.01, "augment": True, "seed": 0}):
        r = client.post(train, json=good)
        assert r.status_code == 409 and "every class needs" in r.json()["detail"], (good, r.text)

    model = f"/api/models/{job['model_id']}"
    for bad in ({"unknown_threshold": "0.5"}, {"unknown_threshold": True}, {"reset_unknown_threshold": 1}):
        assert client.patch(model, json=bad).status_code == 422, bad
    assert client.patch(model, json={"unknown_threshold": 0}).json()["unknown_threshold"] == 0
    assert client.patch(model, json={"reset_unknown_threshold": True}).status_code == 200


# --- 5. Names ---


@pytest.mark.parametrize("lookalike", [
    "Dup", "DUP", "d\u200bup", "\ufeffdup", "du\u00adp", "\u202edup\u202c", "ｄｕｐ", "  dup  ", "dup\n",
])
def test_class_names_that_only_look_alike_are_the_same_name(client, lookalike):
    pid, (dup,) = make_project(client, classes=("dup",))
    r = client.post(f"/api/projects/{pid}/classes", json={"name": lookalike})
    assert r.status_code == 409, r.text
    assert "dup" in r.json()["detail"]
    other = client.post(f"/api/projects/{pid}/classes", json={"name": "other"}).json()["id"]
    assert client.patch(f"/api/classes/{other}", json={"name": lookalike}).status_code == 409
    # A class may change the case of its own name.
    assert client.patch(f"/api/classes/{dup}", json={"name": "Dup"}).json()["name"] == "Dup"
    assert [c["name"] for c in client.get(f"/api/projects/{pid}").json()["classes"]] == ["Dup", "other"]


def test_names_are_stored_normalized_and_compared_beyond_ascii(client):
    pid = client.post("/api/projects", json={"name": "ｆｒｕｉｔ\u200b   box\u00ad"}).json()["id"]
    assert client.get(f"/api/projects/{pid}").json()["name"] == "fruit box"
    r = client.post(f"/api/projects/{pid}/classes", json={"name": "Straße"})
    assert r.status_code == 201 and r.json()["name"] == "Straße"
    assert client.post(f"/api/projects/{pid}/classes", json={"name": "STRASSE"}).status_code == 409  # casefold
    assert client.post(f"/api/projects/{pid}/classes", json={"name": "ÉTÉ"}).status_code == 201
    assert client.post(f"/api/projects/{pid}/classes", json={"name": "e\u0301te\u0301"}).status_code == 409
    # Project names need not be unique.
    assert client.post("/api/projects", json={"name": "fruit box"}).status_code == 201


@pytest.mark.parametrize("name", ["du\x00p", "a\x07b", "tab\tinside", "line\nbreak", "\x1b[31mred"])
def test_control_characters_in_names_are_a_clear_422(client, name):
    pid, (cid,) = make_project(client, classes=("a",))
    for r in (client.post(f"/api/projects/{pid}/classes", json={"name": name}),
              client.patch(f"/api/classes/{cid}", json={"name": name}),
              client.post("/api/projects", json={"name": name}),
              client.patch(f"/api/projects/{pid}", json={"name": name})):
        assert r.status_code == 422, r.text
        assert "control characters" in r.json()["detail"][0]["msg"]
    assert [c["name"] for c in client.get(f"/api/projects/{pid}").json()["classes"]] == ["a"]


@pytest.mark.parametrize("raw", ['"\\ud800"', '"\\u200b\\u200b"', '"   "', '"\\u00ad"'])
def test_names_with_nothing_visible_or_lone_surrogates_are_422_not_500(client, raw):
    r = client.post("/api/projects", content=f'{{"name": {raw}}}', headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert client.get("/api/projects").json() == []


# --- 4. What the schema says about errors ---


def test_schema_documents_the_error_shapes_on_the_routes_that_answer_them(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorOut"]["properties"]["detail"] == {"type": "string", "title": "Detail"}
    assert schemas["InvalidRequestOut"]["properties"]["detail"]["type"] == "array"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if "{" in path:
                assert op["responses"]["404"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}, (method, path)
                shapes = json.dumps(op["responses"]["422"]["content"]["application/json"]["schema"])
                assert "InvalidRequestOut" in shapes and ("ErrorOut" in shapes or "UploadRefusedOut" in shapes)
            if "requestBody" in op:
                assert "400" in op["responses"], (method, path)
    assert "409" in spec["paths"]["/api/projects/{project_id}/classes"]["post"]["responses"]
