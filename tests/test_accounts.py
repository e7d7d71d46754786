"""Accounts over HTTP on a real SQLite file: sign-in, sessions, tokens, throttling, roles, isolation, sharing."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from app.main import create_app
from app.security import SESSION_COOKIE
from tests.conftest import photos, sqlite_only, upload, wait_job

PASSWORD = "correct horse battery"
CAT, SHIP = (photos("cifar10-mini", "train", name, limit=6) for name in ("cat", "ship"))


class Team:
    """One app with login required; a signed-in client per user (cookies kept per client)."""

    def __init__(self, main: TestClient):
        self.main, self.app = main, main.app
        code = self.app.state.services.setup_code
        r = main.post("/api/auth/setup", json={"code": code, "username": "Admin", "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.clients = {"admin": main}
        for name in ("alice", "bob", "carol"):
            assert main.post("/api/users", json={"username": name, "password": PASSWORD}).status_code == 201
            self.clients[name] = self.sign_in(name)

    def sign_in(self, name: str, password: str = PASSWORD) -> TestClient:
        client = TestClient(self.app)  # not entered: shares the running app's services, has its own cookies
        r = client.post("/api/auth/login", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        return client

    def __getitem__(self, name: str) -> TestClient:
        return self.clients[name]


def required_app(tmp_path, cache_dir, **settings) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir, auth="required",
                                          **settings)))


@pytest.fixture
def team(tmp_path, cache_dir):
    with required_app(tmp_path, cache_dir) as main:
        yield Team(main)


def make_trained_project(client: TestClient, name: str = "alice's") -> dict:
    pid = client.post("/api/projects", json={"name": name}).json()["id"]
    cids = [client.post(f"/api/projects/{pid}/classes", json={"name": n}).json()["id"] for n in ("cat", "ship")]
    upload(client, cids[0], CAT)
    upload(client, cids[1], SHIP)
    r = client.post(f"/api/projects/{pid}/train", json={"mode": "head", "folds": 1, "epochs": 10})
    job = wait_job(client, r.json()["job_id"], follow_ups=True)
    assert job["status"] == "succeeded", job
    sid = client.get(f"/api/classes/{cids[0]}/samples").json()[0]["id"]
    return {"project_id": pid, "class_id": cids[0], "sample_id": sid, "job_id": job["id"],
            "model_id": job["model_id"], "username": "carol", "token_id": 1}


def multipart(route_path: str) -> dict:
    if route_path.endswith("/samples"):
        return {"files": [("files", (CAT[0].name, CAT[0].read_bytes()))]}
    return {"files": {"file": (CAT[1].name, CAT[1].read_bytes())}}


BODIES = {
    ("POST", "/api/projects/{project_id}/classes"): {"json": {"name": "new class"}},
    ("PATCH", "/api/classes/{class_id}"): {"json": {"name": "renamed"}},
    ("POST", "/api/classes/{class_id}/samples"): "multipart",
    ("POST", "/api/projects/{project_id}/predict"): "multipart",
    ("POST", "/api/projects/{project_id}/train"): {"json": {"mode": "head", "folds": 1, "epochs": 5}},
    ("PATCH", "/api/projects/{project_id}"): {"json": {"name": "renamed"}},
    ("PATCH", "/api/models/{model_id}"): {"json": {"unknown_threshold": 0.2}},
    ("POST", "/api/projects/{project_id}/members"): {"json": {"username": "carol", "role": "viewer"}},
}
ORDER = {"GET": 0, "POST": 1, "PATCH": 1, "DELETE": 2}


def project_routes(app) -> list[tuple[str, str]]:
    """Every API route that names something inside a project, from the app's schema: a new route is covered."""
    keys = ("{project_id}", "{class_id}", "{sample_id}", "{job_id}", "{model_id}")
    found = [(method.upper(), path) for path, operations in app.openapi()["paths"].items()
             if path.startswith("/api/") and any(k in path for k in keys) for method in operations]
    # Deletes last, the containers after what they contain, so every route still has something to act on.
    containers = ("/api/classes/{class_id}", "/api/projects/{project_id}")
    return sorted(found, key=lambda mp: (ORDER[mp[0]], containers.index(mp[1]) if mp[1] in containers else -1,
                                         mp[1]))


def call(client: TestClient, method: str, path: str, ids: dict):
    url = path.format(**ids)
    body = BODIES.get((method, path), {})
    if body == "multipart":
        body = multipart(path)
    if method in ("POST", "PATCH") and not body and not path.endswith(("/cancel", "/activate", "/share", "/exports")):
        pytest.fail(f"{method} {path} is new: give it a valid body in BODIES so its access check is tested")
    return client.request(method, url, **body)


def test_another_users_project_is_404_on_every_route(team):
    alice, bob = team["alice"], team["bob"]
    ids = make_trained_project(alice)
    routes = project_routes(team.app)
    assert len(routes) >= 20, routes
    before = alice.get(f"/api/projects/{ids['project_id']}").json()
    for method, path in routes:
        r = call(bob, method, path, ids)
        assert r.status_code == 404, f"bob {method} {path}: {r.status_code} {r.text[:200]}"
        assert r.json()["detail"].endswith("is not shared with you"), r.text
    assert alice.get(f"/api/projects/{ids['project_id']}").json() == before  # bob changed nothing
    assert bob.get("/api/projects").json() == []
    with pytest.raises(WebSocketDisconnect), bob.websocket_connect(f"/api/projects/{ids['project_id']}/live"):
        pass
    # The same calls are valid for the owner (so the 404s above came from the access check, not the input).
    for method, path in routes:
        r = call(alice, method, path, ids)
        assert r.status_code not in (401, 403, 404, 422), f"alice {method} {path}: {r.status_code} {r.text[:200]}"


def test_no_login_means_401_for_the_api_and_the_login_page_for_pages(team):
    anon = TestClient(team.app)
    assert anon.get("/api/projects").status_code == 401
    assert anon.post("/api/projects", json={"name": "x"}).status_code == 401
    assert anon.get("/api/auth/me").status_code == 401
    assert anon.get("/api/health").status_code == 200
    page = anon.get("/projects/1?tab=x", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/projects/1%3Ftab%3Dx"
    assert anon.get("/login").status_code == 200
    assert anon.get("/api/auth/status").json() == {"login_required": True, "setup_needed": False, "user": None}


def test_roles_viewer_and_editor(team):
    alice, carol = team["alice"], team["carol"]
    ids = make_trained_project(alice)
    pid = ids["project_id"]
    assert alice.post(f"/api/projects/{pid}/members", json={"username": "Carol", "role": "viewer"}).json() == [
        {"username": "alice", "role": "owner"}, {"username": "carol", "role": "viewer"}]
    assert carol.get(f"/api/projects/{pid}").json()["role"] == "viewer"
    assert [p["id"] for p in carol.get("/api/projects").json()] == [pid]
    assert carol.post(f"/api/projects/{pid}/predict", **multipart("predict")).status_code == 200
    assert carol.get(f"/api/projects/{pid}/model/download?format=onnx").status_code == 200
    with carol.websocket_connect(f"/api/projects/{pid}/live") as ws:
        ws.send_bytes(CAT[0].read_bytes())
        assert ws.receive_json()["model_id"] == ids["model_id"]
    viewer_refused = [
        ("POST", f"/api/projects/{pid}/classes", {"json": {"name": "x"}}),
        ("POST", f"/api/classes/{ids['class_id']}/samples", multipart("/samples")),
        ("DELETE", f"/api/samples/{ids['sample_id']}", {}),
        ("POST", f"/api/projects/{pid}/train", {"json": {"mode": "head"}}),
        ("PATCH", f"/api/models/{ids['model_id']}", {"json": {"unknown_threshold": 0.3}}),
    ]
    owner_only = [
        ("PATCH", f"/api/projects/{pid}", {"json": {"name": "mine now"}}),
        ("POST", f"/api/projects/{pid}/share", {}),
        ("POST", f"/api/projects/{pid}/members", {"json": {"username": "bob", "role": "editor"}}),
        ("DELETE", f"/api/projects/{pid}", {}),
    ]
    for method, url, body in viewer_refused + owner_only:
        r = carol.request(method, url, **body)
        assert r.status_code == 403, f"viewer {method} {url}: {r.status_code} {r.text}"
        assert "viewer" in r.json()["detail"]
    alice.post(f"/api/projects/{pid}/members", json={"username": "carol", "role": "editor"})
    assert carol.post(f"/api/projects/{pid}/classes", json={"name": "plane"}).status_code == 201
    assert carol.post(f"/api/classes/{ids['class_id']}/samples", **multipart("/samples")).status_code == 201
    assert carol.delete(f"/api/samples/{ids['sample_id']}").status_code == 204
    for method, url, body in owner_only:
        assert carol.request(method, url, **body).status_code == 403
    # A member may leave; then the project is gone for them.
    assert carol.delete(f"/api/projects/{pid}/members/carol").status_code == 204
    assert carol.get(f"/api/projects/{pid}").status_code == 404
    # An admin sees and may do everything.
    admin = team["admin"]
    assert pid in [p["id"] for p in admin.get("/api/projects").json()]
    assert admin.patch(f"/api/projects/{pid}", json={"name": "renamed by admin"}).status_code == 200
    assert admin.get(f"/api/projects/{pid}").json()["owner"] == "alice"


@sqlite_only  # reads or writes the SQLite file directly
def test_tokens_are_shown_once_stored_hashed_and_revocable(team, tmp_path):
    alice = team["alice"]
    r = alice.post("/api/tokens", json={"name": "lab laptop"})
    assert r.status_code == 201
    token = r.json()["token"]
    assert token.startswith("sc_") and len(token) > 40
    listed = alice.get("/api/tokens").json()
    assert [t["name"] for t in listed] == ["lab laptop"] and "token" not in listed[0]
    script = TestClient(team.app)
    bearer = {"Authorization": f"Bearer {token}"}
    assert script.get("/api/auth/me", headers=bearer).json() == {"username": "alice", "is_admin": False,
                                                                   "local": False}
    pid = script.post("/api/projects", json={"name": "by script"}, headers=bearer).json()["id"]
    assert alice.get(f"/api/projects/{pid}").json()["owner"] == "alice"
    with sqlite3.connect(tmp_path / "data" / "snapclass.db") as conn:
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchone()[0]
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token.encode() not in (tmp_path / "data" / "snapclass.db").read_bytes()
    assert team["bob"].delete(f"/api/tokens/{listed[0]['id']}").status_code == 404  # not bob's
    assert alice.delete(f"/api/tokens/{listed[0]['id']}").status_code == 204
    r = script.get("/api/auth/me", headers=bearer)
    assert r.status_code == 401 and "not valid" in r.json()["detail"]
    assert script.get("/api/projects", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_logout_and_password_change_revoke_sessions_on_the_server(team):
    alice = team["alice"]
    other = team.sign_in("alice")
    stolen = alice.cookies[SESSION_COOKIE]
    assert alice.post("/api/auth/logout").status_code == 204
    replay = TestClient(team.app, cookies={SESSION_COOKIE: stolen})
    assert replay.get("/api/auth/me").status_code == 401  # revoked, not just forgotten by the browser
    assert other.get("/api/auth/me").status_code == 200
    r = other.post("/api/auth/password", json={"current_password": "wrong password", "new_password": "x" * 10})
    assert r.status_code == 403
    third = team.sign_in("alice")
    r = other.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "new secret 123"})
    assert r.status_code == 204
    assert other.get("/api/auth/me").status_code == 200  # this browser got a fresh session
    assert third.get("/api/auth/me").status_code == 401  # every other session is signed out
    assert TestClient(team.app).post("/api/auth/login", json={"username": "alice", "password": PASSWORD}
                                     ).status_code == 401
    team.sign_in("alice", "new secret 123")


def test_login_cookie_flags_and_wrong_pairs(team):
    anon = TestClient(team.app)
    r = anon.post("/api/auth/login", json={"username": "ALICE", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["username"] == "alice"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    secure = TestClient(team.app, base_url="https://testserver")
    r = secure.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()
    wrong = anon.post("/api/auth/login", json={"username": "alice", "password": "nope nope"})
    unknown = anon.post("/api/auth/login", json={"username": "nobody", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong user name or password"}


def test_unknown_user_costs_the_same_time_as_a_wrong_password(team):
    anon = TestClient(team.app)

    def timed(name: str) -> float:
        start = time.perf_counter()
        anon.post("/api/auth/login", json={"username": name, "password": "not it at all"})
        return time.perf_counter() - start

    # 4 tries each stays under the throttle's 5 free failures per name (the address is shared: reset it).
    wrong = sorted(timed("alice") for _ in range(4))
    team.app.state.services.throttle.succeeded(["ip:testclient"])
    unknown = sorted(timed(f"ghost{i}") for i in range(4))
    assert 0.5 < unknown[1] / wrong[1] < 2.0, (wrong, unknown)


def test_repeated_failures_are_slowed_down(team):
    anon = TestClient(team.app)
    for _ in range(5):
        assert anon.post("/api/auth/login", json={"username": "bob", "password": "guess 1234"}).status_code == 401
    r = anon.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # even the right password must wait
    assert "wait" in r.json()["detail"]
    time.sleep(int(r.headers["retry-after"]) + 0.1)
    assert anon.post("/api/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 200


def test_first_account_setup_needs_the_code_and_happens_once(tmp_path, cache_dir):
    with required_app(tmp_path, cache_dir) as client:
        assert client.get("/api/auth/status").json()["setup_needed"] is True
        assert client.get("/login", follow_redirects=False).headers["location"] == "/setup"
        body = {"code": "0000-0000-0000", "username": "root", "password": PASSWORD}
        assert client.post("/api/auth/setup", json=body).status_code == 403
        body["code"] = client.app.state.services.setup_code
        r = client.post("/api/auth/setup", json=body)
        assert r.status_code == 201 and r.json() == {"username": "root", "is_admin": True, "local": False}
        assert client.get("/api/auth/me").json()["username"] == "root"
        assert client.post("/api/auth/setup", json={**body, "username": "again"}).status_code == 409


def test_login_modes(tmp_path, cache_dir):
    def login_required(**settings) -> bool:
        with TestClient(create_app(Settings(data_dir=tmp_path / "d", cache_path=cache_dir, **settings))) as c:
            status = c.get("/api/projects").status_code
            assert status in (200, 401)
            return status == 401

    assert not login_required()  # auto on loopback: straight in, as the README's first command promises
    assert not login_required(auth="auto", listen_host="::1")
    assert login_required(auth="auto", listen_host="0.0.0.0")
    assert login_required(auth="auto", listen_host="192.0.2.10")
    assert login_required(auth="required")
    assert not login_required(auth="off", listen_host="0.0.0.0")


def test_projects_made_with_login_off_go_to_the_first_admin(tmp_path, cache_dir, monkeypatch):
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir, auth="off"))) as c:
        pid = c.post("/api/projects", json={"name": "before accounts"}).json()["id"]
        assert c.get(f"/api/projects/{pid}").json()["owner"] is None
        assert c.get("/api/auth/me").json() == {"username": "local", "is_admin": True, "local": True}
    from app.cli import main

    for name, admin in (("teacher", True), ("pupil", False)):
        with pytest.raises(SystemExit) as done:
            main(["users", "add", name, "--data-dir", str(tmp_path / "data")] + (["--admin"] if admin else []))
        assert done.value.code == 0
    # `users add` printed generated passwords; give them known ones with `users passwd --password-stdin`.
    for name in ("teacher", "pupil"):
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        with pytest.raises(SystemExit) as done:
            main(["users", "passwd", name, "--password-stdin", "--data-dir", str(tmp_path / "data")])
        assert done.value.code == 0
    with required_app(tmp_path, cache_dir) as app_client:
        teacher, pupil = TestClient(app_client.app), TestClient(app_client.app)
        for client, name in ((teacher, "teacher"), (pupil, "pupil")):
            assert client.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 200
        assert [p["id"] for p in teacher.get("/api/projects").json()] == [pid]
        assert teacher.get(f"/api/projects/{pid}").json()["owner"] == "teacher"
        assert pupil.get("/api/projects").json() == []


def test_share_link_works_with_no_login_and_dies_when_revoked(team):
    alice = team["alice"]
    ids = make_trained_project(alice)
    pid = ids["project_id"]
    assert team["bob"].post(f"/api/projects/{pid}/share").status_code == 404
    r = alice.post(f"/api/projects/{pid}/share")
    assert r.status_code == 201
    url = r.json()["url"]
    assert url.startswith("http://testserver/s/")
    assert alice.post(f"/api/projects/{pid}/share").json()["url"] == url  # same link when asked again
    path = url.removeprefix("http://testserver")
    anon = TestClient(team.app)
    page = anon.get(path)
    assert page.status_code == 200 and "alice&#39;s" in page.text
    shared = anon.post(f"{path}/predict", **multipart("predict"))
    own = alice.post(f"/api/projects/{pid}/predict", **multipart("predict"))
    assert shared.status_code == 200 and shared.json() == own.json()
    assert anon.get(f"/api/projects/{pid}").status_code == 401  # the link opens the model, nothing else
    assert alice.delete(f"/api/projects/{pid}/share").status_code == 204
    assert anon.get(path).status_code == 404
    assert anon.post(f"{path}/predict", **multipart("predict")).status_code == 404
    assert alice.get(f"/api/projects/{pid}/share").json() == {"url": None}
    assert anon.get("/s/" + "x" * 32).status_code == 404


def test_admin_creates_many_users_with_generated_passwords(team):
    admin, alice = team["admin"], team["alice"]
    r = admin.post("/api/users/bulk", json={"usernames": ["Dana", "eli", "dana", "alice", " "]})
    assert r.status_code == 201, r.text
    created = {u["username"]: u["password"] for u in r.json()["created"]}
    assert sorted(created) == ["dana", "eli"]
    assert {s["username"]: s["reason"] for s in r.json()["skipped"]} == {"dana": "repeated in the list",
                                                                          "alice": "exists"}
    team.sign_in("eli", created["eli"])
    assert admin.post("/api/users/bulk", json={"usernames": ["ok", "not ok"]}).status_code == 422
    assert "ok" not in [u["username"] for u in admin.get("/api/users").json()]  # nothing half-made
    assert alice.get("/api/users").status_code == 403
    assert alice.post("/api/users", json={"username": "mallory"}).status_code == 403
    reset = admin.post("/api/users/eli/password", json={}).json()["password"]
    team.sign_in("eli", reset)
    pid = alice.post("/api/projects", json={"name": "kept"}).json()["id"]
    assert admin.delete("/api/users/alice").status_code == 204
    assert admin.get(f"/api/projects/{pid}").json()["owner"] == "admin"  # nothing lost with the account
    assert alice.get("/api/auth/me").status_code == 401
    assert admin.delete("/api/users/admin").status_code == 409  # the last admin stays


def test_users_cli_on_a_data_dir_no_server_has_opened(tmp_path):
    import subprocess
    import sys

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app", *args], input=stdin, capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    data = ["--data-dir", str(tmp_path / "fresh")]
    for command in ([], ["serve"], ["users"], ["users", "add"], ["users", "list"], ["users", "passwd"],
                    ["users", "remove"]):
        assert cli(*command, "--help").returncode == 0, command
    assert cli("users", "add", "Teacher", "--admin", "--password-stdin", *data, stdin=PASSWORD + "\n").returncode == 0
    made = cli("users", "add", "pupil", *data)  # no terminal: a generated password, printed once
    assert made.returncode == 0 and "password: " in made.stdout
    assert cli("users", "list", *data).stdout.splitlines() == ["pupil\tuser\t0 projects", "teacher\tadmin\t0 projects"]
    short = cli("users", "passwd", "pupil", "--password-stdin", *data, stdin="short\n")
    assert short.returncode == 1 and "at least 8" in short.stderr
    assert cli("users", "passwd", "pupil", "--password-stdin", *data, stdin=PASSWORD + "\n").returncode == 0
    assert cli("users", "add", "PUPIL", "--password-stdin", *data, stdin=PASSWORD + "\n").returncode == 1
    last = cli("users", "remove", "teacher", *data)
    assert last.returncode == 1 and "last admin" in last.stderr
    assert cli("users", "remove", "pupil", *data).returncode == 0
    assert cli("users", "list", *data).stdout.splitlines() == ["teacher\tadmin\t0 projects"]
