"""Schema migrations on real SQLite files: release 0.1.0's data dir upgrades in place with nothing lost, ids are
never given out twice, a newer database is refused untouched, and the models and the migrations agree."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Integer

from app import migrate
from app.db import init_db, make_engine
from app.migrate import SchemaError
from app.models import Base
from tests.conftest import REPO, jpeg_bytes, make_client, make_project, photos, train, upload

FIXTURE = Path(__file__).parent / "fixtures" / "data-0.1.0.tar.xz"
HEAD = migrate.head()


def old_data_dir(tmp_path: Path) -> Path:
    """A copy of the data dir release 0.1.0 wrote (tests/fixtures/README.md)."""
    data = tmp_path / "data"
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(data, filter="data")
    return data


def connect(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data / 'snapclass.db'}?mode=ro", uri=True)


def rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table of 0.1.0, in 0.1.0's columns (later releases add columns, never change these)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {t: conn.execute(f"SELECT {', '.join(COLUMNS_0_1_0[t])} FROM {t} ORDER BY 1").fetchall()
                for t in sorted(migrate.RELEASE_0_1_0_TABLES)}


def _columns_0_1_0() -> dict[str, list[str]]:
    with tarfile.open(FIXTURE) as tar:
        db = tar.extractfile("./snapclass.db").read()
    with tempfile.NamedTemporaryFile(suffix=".db") as f:
        f.write(db)
        f.flush()
        with sqlite3.connect(f.name) as conn:
            return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in migrate.RELEASE_0_1_0_TABLES}


COLUMNS_0_1_0 = _columns_0_1_0()


def schema(db: Path) -> dict[str, str]:
    """CREATE statements by name, whitespace and quoting normalized; SQLite's own objects and Alembic's left out."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    return {name: re.sub(r"\s+", " ", sql.replace('"', "")) for name, sql in found
            if not name.startswith(("sqlite_", "alembic_"))}


def revision(data: Path) -> list[str]:
    with connect(data) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapclass(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_release_0_1_0_data_dir_opens_with_everything_and_still_predicts(tmp_path, cache_dir):
    data = old_data_dir(tmp_path)
    before, schema_0_1_0 = rows(data / "snapclass.db"), schema(data / "snapclass.db")
    cat_photos = {p.name: p.read_bytes() for p in photos("cifar10-mini", "train", "cat", limit=8)}
    ship_photos = {p.name: p.read_bytes() for p in photos("cifar10-mini", "train", "ship", limit=8)}
    with make_client(data, cache_dir) as client:
        assert rows(data / "snapclass.db") == before  # every row of every table, byte for byte
        assert revision(data) == [HEAD]
        [project] = client.get("/api/projects").json()
        assert (project["id"], project["name"], project["current_model_id"]) == (2, "Cats and ships", 2)
        detail = client.get("/api/projects/2").json()
        assert [(c["id"], c["name"], c["sample_count"]) for c in detail["classes"]] == [
            (1, "cat", 8), (2, "ship", 7), (3, "empty class", 0)]
        assert client.get("/api/projects/1").status_code == 404
        for class_id, originals in ((1, cat_photos), (2, ship_photos)):
            samples = client.get(f"/api/classes/{class_id}/samples").json()
            webcam = [s for s in samples if s["source"] == "webcam"]
            assert {s["burst_id"] for s in webcam} == {"burst-cat" if class_id == 1 else "burst-ship"}
            for s in samples:  # the photos themselves, as uploaded
                assert client.get(s["url"]).content == originals[s["filename"]]
                assert client.get(s["thumbnail_url"]).headers["content-type"] == "image/jpeg"
        models = client.get("/api/projects/2/models").json()
        assert sorted((m["id"], m["version"], m["is_current"]) for m in models) == [(1, 1, False), (2, 2, True)]
        assert next(m for m in models if m["id"] == 2)["unknown_threshold"] == 0.1

        r = client.post("/api/projects/2/predict", files={"file": ("cat.jpg", cat_photos["0000.jpg"])})
        assert r.status_code == 200, r.text
        assert (r.json()["model_id"], r.json()["model_version"], r.json()["label"]) == (2, 2, "cat")
        # Answered by the stored model: nothing was trained.
        assert rows(data / "snapclass.db")["jobs"] == before["jobs"]
    backups = list(data.glob("snapclass.db.bak-*"))
    assert [b.name for b in backups] == ["snapclass.db.bak-0001_initial"]
    assert rows(backups[0]) == before  # the copy is the 0.1.0 file: its rows, its schema, no version table
    assert schema(backups[0]) == schema_0_1_0


def test_an_upgraded_0_1_0_data_dir_never_gives_out_a_surviving_or_still_named_id(tmp_path, cache_dir):
    """What the upgrade can promise for ids 0.1.0 deleted: never an id below the highest surviving one, nor one a
    model still names (its class_ids, its per-photo validation rows). An id deleted above those left no trace in
    0.1.0's file (the fixture's sample 16) and may be given out once; from the upgrade on, none is reused."""
    data = old_data_dir(tmp_path)
    with sqlite3.connect(data / "snapclass.db") as conn:  # as 0.1.0 deleted photos: the model still shows 14
        conn.execute("PRAGMA foreign_keys=ON")
        assert '"sample_id": 14' in conn.execute("SELECT metrics FROM trained_models WHERE id = 2").fetchone()[0]
        conn.execute("DELETE FROM samples WHERE id IN (14, 15)")
    with make_client(data, cache_dir) as client:
        added = upload(client, 2, photos("cifar10-mini", "train", "ship", limit=1)).json()["added"]
        assert added[0]["id"] > 14
        assert client.delete(f"/api/samples/{added[0]['id']}").status_code == 204
        again = upload(client, 2, photos("cifar10-mini", "train", "ship", limit=1)).json()["added"]
        assert again[0]["id"] > added[0]["id"]
        pid, cids = make_project(client, "new", classes=("x",))
        assert pid > 2 and cids[0] > 3


def test_fresh_database_never_reuses_ids(client):
    def build(name):
        pid, cids = make_project(client, name, classes=("red", "blue"))
        sids = []
        for cid, color in zip(cids, [(220, 20, 20), (20, 20, 220)], strict=True):
            files = [("files", (f"{i}.jpg", jpeg_bytes(color, (48, 40)))) for i in range(3)]
            sids += [s["id"] for s in client.post(f"/api/classes/{cid}/samples", files=files).json()["added"]]
        job = train(client, pid, epochs=3, folds=1)
        assert job["status"] == "succeeded", job
        return {"project": pid, "class": max(cids), "sample": max(sids), "job": job["id"], "model": job["model_id"]}

    first = build("first")
    assert client.delete(f"/api/projects/{first['project']}").status_code == 204
    second = build("second")
    assert all(second[kind] > first[kind] for kind in first), (first, second)


def test_a_database_from_a_newer_release_is_refused_and_left_byte_for_byte(tmp_path, cache_dir):
    data = tmp_path / "data"
    with make_client(data, cache_dir) as client:
        client.post("/api/projects", json={"name": "kept"})
    with sqlite3.connect(data / "snapclass.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    db = data / "snapclass.db"
    digest = sha256(db)

    with pytest.raises(SchemaError, match=r"0099_from_the_future.*Upgrade snapclass"), make_client(data, cache_dir):
        pass
    for args in (["serve", "--port", "0"], ["migrate"]):
        done = snapclass(*args, "--data-dir", str(data))
        assert done.returncode == 1, done
        assert "0099_from_the_future" in done.stderr and "Upgrade snapclass" in done.stderr
        assert "Traceback" not in done.stderr
    assert sha256(db) == digest
    assert not list(data.glob("*.bak-*"))


def test_models_and_migrations_agree(tmp_path):
    """A models.py change without a migration fails here: the migrated schema is exactly the ORM's."""
    for db in (tmp_path / "fresh.db", old_data_dir(tmp_path) / "snapclass.db"):
        engine = make_engine(f"sqlite:///{db}")
        init_db(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        engine.dispose()
        for table in Base.metadata.sorted_tables:  # every integer id: AUTOINCREMENT, declared and migrated
            if [type(c.type) for c in table.primary_key.columns] == [Integer]:
                assert table.dialect_options["sqlite"]["autoincrement"], table.name
                assert "PRIMARY KEY AUTOINCREMENT" in schema(db)[table.name], (db, table.name)


def test_first_revision_is_release_0_1_0_schema_and_the_second_goes_back_to_it(tmp_path):
    released = schema(old_data_dir(tmp_path) / "snapclass.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    cfg = migrate.config()
    with migrate._migration_connection(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_initial")
    assert schema(tmp_path / "fresh.db") == released
    init_db(engine)
    assert schema(tmp_path / "fresh.db") != released
    with migrate._migration_connection(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_initial")
    back = schema(tmp_path / "fresh.db")
    assert back.keys() == released.keys() and not [sql for sql in back.values() if "AUTOINCREMENT" in sql]
    engine.dispose()


def test_a_failed_upgrade_rolls_back_to_the_old_file(tmp_path, cache_dir):
    data = old_data_dir(tmp_path)
    with sqlite3.connect(data / "snapclass.db") as conn:  # a row pointing at nothing (foreign keys were off)
        conn.execute("UPDATE samples SET class_id = 99 WHERE id = 1")
    old = schema(data / "snapclass.db")
    with pytest.raises(SchemaError, match="samples row 1 -> classes"), make_client(data, cache_dir):
        pass
    assert schema(data / "snapclass.db") == old
    with connect(data) as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchall()


def test_files_left_by_an_interrupted_upload_are_swept_at_start(tmp_path, cache_dir):
    data = tmp_path / "data"
    with make_client(data, cache_dir) as client:
        _, (cid, _) = make_project(client)
        added = upload(client, cid, photos("cifar10-mini", "train", "cat", limit=2)).json()["added"]
    kept = {p for p in (data / "images").rglob("*") if p.is_file()}
    orphan_key = "ab" + "0" * 30  # written by an upload that was killed before its rows committed
    orphans = [data / "images" / "ab" / f"{orphan_key}.{kind}" for kind in ("orig.bin", "work.jpg", "thumb.jpg")]
    real = next(iter(kept))
    orphans.append(real.with_name(real.name + ".1a2b3c4d.part"))  # a write that never got renamed
    for path in orphans:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"left behind")

    with make_client(data, cache_dir) as client:
        assert {p for p in (data / "images").rglob("*") if p.is_file()} == kept
        for sample in added:
            assert client.get(sample["url"]).status_code == 200


def test_photos_are_left_alone_when_the_database_has_no_samples_at_all(tmp_path, cache_dir):
    """Likely a DATABASE_URL pointing at another database, not a crash: deleting every photo can't be undone."""
    data = tmp_path / "data"
    stray = data / "images" / "cd" / ("cd" + "1" * 30 + ".orig.bin")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"someone's photo")
    with make_client(data, cache_dir):
        assert stray.exists()


def test_migrate_command_upgrades_an_old_data_dir_and_says_from_what_to_what(tmp_path):
    assert snapclass("migrate", "--help").returncode == 0
    data = old_data_dir(tmp_path)
    done = snapclass("migrate", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert f"from 0001_initial (release 0.1.0, no version table) to {HEAD}" in done.stdout
    assert "snapclass.db.bak-0001_initial" in done.stdout
    assert revision(data) == [HEAD]
    again = snapclass("migrate", "--data-dir", str(data))
    assert again.returncode == 0 and f"already at {HEAD}" in again.stdout
    assert len(list(data.glob("*.bak-*"))) == 1



def test_a_0_1_0_data_dir_goes_to_its_first_admin_when_logins_start(tmp_path, cache_dir):
    """One person's server becomes a team's: the old projects belong to the first admin, nobody else sees them."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    data = old_data_dir(tmp_path)
    with TestClient(create_app(Settings(data_dir=data, cache_path=cache_dir, auth="required"))) as client:
        code = client.app.state.services.setup_code
        r = client.post("/api/auth/setup", json={"code": code, "username": "teacher", "password": "long enough"})
        assert r.status_code == 201
        assert [(p["id"], p["name"]) for p in client.get("/api/projects").json()] == [(2, "Cats and ships")]
        assert client.get("/api/projects/2").json()["owner"] == "teacher"
        cat = photos("cifar10-mini", "train", "cat", limit=1)[0]
        answer = client.post("/api/projects/2/predict", files={"file": (cat.name, cat.read_bytes())}).json()
        assert answer["model_id"] == 2
        client.post("/api/users", json={"username": "pupil", "password": "long enough"})
        pupil = TestClient(client.app)
        pupil.post("/api/auth/login", json={"username": "pupil", "password": "long enough"})
        assert pupil.get("/api/projects").json() == []
        assert pupil.get("/api/projects/2").status_code == 404


FIXTURE_0_2_0 = Path(__file__).parent / "fixtures" / "data-0.2.0.tar.xz"


def test_release_0_2_0_data_dir_opens_with_colours_in_order_every_class_on_and_still_predicts(tmp_path, cache_dir):
    """0.2.0 (accounts, no class colours, no trash, no change feed) upgrades to the head with every row kept."""
    data = tmp_path / "data"
    with tarfile.open(FIXTURE_0_2_0) as tar:
        tar.extractall(data, filter="data")
    with sqlite3.connect(data / "snapclass.db") as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    cat = photos("cifar10-mini", "train", "cat", limit=1)[0].read_bytes()
    with make_client(data, cache_dir) as client:
        assert revision(data) == [HEAD]
        with sqlite3.connect(data / "snapclass.db") as conn:
            for t in tables:
                if t == "alembic_version":
                    continue
                now = conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                n_old = len(before[t][0]) if before[t] else 0
                assert [r[:n_old] for r in now] == before[t], t  # added columns come last; old ones unchanged
            assert conn.execute("SELECT count(*) FROM trash").fetchone() == (0,)
        detail = client.get("/api/projects/2").json()
        assert [(c["id"], c["name"], c["sample_count"], c["color"], c["enabled"]) for c in detail["classes"]] == [
            (1, "cat", 8, "#0072B2", True), (2, "ship", 7, "#B34E00", True), (3, "empty class", 0, "#007A59", True)]
        # The next class takes the first colour its project does not use yet.
        r = client.post("/api/projects/2/classes", json={"name": "plane"})
        assert r.status_code == 201 and r.json()["color"] == "#A8527F" and r.json()["id"] > 3
        r = client.post("/api/projects/2/predict", files={"file": ("cat.jpg", cat)})
        assert r.status_code == 200 and (r.json()["model_id"], r.json()["label"]) == (2, "cat"), r.text
    assert [b.name for b in data.glob("snapclass.db.bak-*")] == ["snapclass.db.bak-0003_accounts"]
