"""Photos in an S3 bucket (SNAPCLASS_BLOB_URL=s3://bucket/pre): the real app over HTTP against moto's standalone S3
server, reached only over HTTP through the AWS_* environment (tests/services.py), with real photos."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import timedelta

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import trash
from app.config import Settings
from app.main import create_app
from app.models import Sample
from app.s3store import S3Store, parse_blob_url
from app.storage import ORIGINAL, THUMB, WORK, blob_name
from tests.conftest import make_project, photos, train, upload
from tests.services import new_bucket
from tests.test_trash import expire_all, undo_path

ANTS = photos("hymenoptera", "train", "ants", limit=8)
BEES = photos("hymenoptera", "train", "bees", limit=8)
NAME = re.compile(r"pre/([0-9a-f]{2})/(\1[0-9a-f]{30})\.(orig\.bin|work\.jpg|thumb\.jpg|s\d+\.npy)")


@pytest.fixture
def bucket(s3_env) -> str:
    return new_bucket(s3_env)


@pytest.fixture
def s3(s3_env):
    return boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])


def objects(s3, bucket: str, prefix: str = "") -> dict[str, dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o for page in pages for o in page.get("Contents", [])}


def body(s3, bucket: str, name: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=name)["Body"].read()


def s3_app(tmp_path, cache_dir, blob_url: str) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", cache_path=cache_dir, blob_url=blob_url)))


@pytest.fixture
def client(tmp_path, cache_dir, bucket):
    with s3_app(tmp_path, cache_dir, f"s3://{bucket}/pre") as c:
        yield c


def keys_of(client, samples: list[dict]) -> list[str]:
    with client.app.state.services.session_factory() as s:
        by_id = dict(s.execute(select(Sample.id, Sample.key).where(Sample.id.in_([x["id"] for x in samples]))).all())
    return [by_id[x["id"]] for x in samples]


def names_of(found: dict[str, dict], key: str) -> set[str]:
    return {n for n in found if f"/{key}." in n}


def test_uploads_are_objects_in_the_bucket_served_from_there_and_non_images_add_none(client, s3, s3_env, bucket,
                                                                                     tmp_path):
    store = client.app.state.services.store
    assert store.describe() == f"s3://{bucket}/pre/"
    assert store.client.meta.endpoint_url == s3_env["AWS_ENDPOINT_URL"]  # from the environment, not our settings
    _, (cid, _) = make_project(client)
    r = upload(client, cid, ANTS[:3])
    assert r.status_code == 201, r.text
    added = r.json()["added"]
    keys = keys_of(client, added)
    found = objects(s3, bucket)
    assert all(NAME.fullmatch(n) for n in found), sorted(found)
    assert len(found) == 12 and all(len(names_of(found, k)) == 4 for k in keys)
    assert not any(p.is_file() for p in (tmp_path / "data" / "images").rglob("*"))  # nothing on the disk
    for sample, key, path in zip(added, keys, ANTS[:3], strict=True):
        original = body(s3, bucket, "pre/" + blob_name(key, ORIGINAL))
        assert original == path.read_bytes() == client.get(sample["url"]).content
        thumb = client.get(sample["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.content == body(s3, bucket, "pre/" + blob_name(key, THUMB))
        (crop_name,) = [n for n in names_of(found, key) if n.endswith(".npy")]
        size = int(crop_name.rsplit(".", 2)[1][1:])
        crop = np.load(io.BytesIO(body(s3, bucket, crop_name)), allow_pickle=False)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    with zipfile.ZipFile(io.BytesIO(client.get(f"/api/classes/{cid}/photos.zip").content)) as z:
        assert sorted(z.read(n) for n in z.namelist()) == sorted(p.read_bytes() for p in ANTS[:3])

    r = client.post(f"/api/classes/{cid}/samples", files=[("files", ("notes.txt", b"not a photo")),
                                                          ("files", ("x.jpg", b"\xff\xd8 truncated"))])
    assert r.status_code == 422 and len(r.json()["rejected"]) == 2
    assert objects(s3, bucket).keys() == found.keys()


def test_head_training_and_predict_read_the_photos_from_the_bucket(client):
    pid, (a, b) = make_project(client, classes=("ants", "bees"))
    assert upload(client, a, ANTS).status_code == 201
    assert upload(client, b, BEES).status_code == 201
    job = train(client, pid, epochs=5)
    assert job["status"] == "succeeded", job
    assert job["metrics"]["embedded_new"] == 16
    probe = photos("hymenoptera", "val", "ants", limit=1)[0]
    r = client.post(f"/api/projects/{pid}/predict", files={"file": (probe.name, probe.read_bytes())})
    assert r.status_code == 200, r.text
    assert {p["label"] for p in r.json()["predictions"]} == {"ants", "bees"}


def test_an_export_holds_the_photos_and_imports_back_into_the_bucket(client, s3, bucket):
    pid, (a, b) = make_project(client, name="bugs", classes=("ants", "bees"))
    upload(client, a, ANTS[:3])
    upload(client, b, BEES[:2])
    r = client.get(f"/api/projects/{pid}/export", params={"models": "none"})
    assert r.status_code == 200, r.text
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in ANTS[:3] + BEES[:2]}
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert digests <= {hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}
    before = len(objects(s3, bucket))
    imported = client.post("/api/projects/import", files={"file": ("bugs.snapclass.zip", r.content,
                                                                    "application/zip")})
    assert imported.status_code == 201, imported.text
    assert len(objects(s3, bucket)) == before + 5 * 4
    new = client.get(f"/api/projects/{imported.json()['id']}").json()
    served = [client.get(s["url"]).content for c in new["classes"]
              for s in client.get(f"/api/classes/{c['id']}/samples").json()]
    assert {hashlib.sha256(d).hexdigest() for d in served} == digests


def test_deleting_photos_a_class_and_the_project_removes_their_objects(client, s3, bucket, tmp_path):
    pid, (a, b) = make_project(client)
    added = upload(client, a, ANTS[:3]).json()["added"]
    upload(client, b, BEES[:2])
    keys = keys_of(client, added)
    services = client.app.state.services
    undo_path(client.delete(f"/api/samples/{added[0]['id']}"))
    assert len(objects(s3, bucket)) == 20  # in the trash: the objects stay until it is purged
    expire_all(tmp_path / "data")
    assert trash.purge_expired(services.session_factory, services.store) == 1
    found = objects(s3, bucket)
    assert not names_of(found, keys[0]) and len(found) == 16
    with pytest.raises(FileNotFoundError):
        services.store.read(keys[0], ORIGINAL)
    assert client.get(added[0]["url"]).status_code == 404
    undo_path(client.delete(f"/api/classes/{b}"))
    assert len(objects(s3, bucket)) == 16
    assert client.delete(f"/api/projects/{pid}").status_code == 204
    assert objects(s3, bucket) == {}


def test_remove_orphans_takes_only_old_objects_of_unknown_keys_under_its_prefix(s3_env, s3, bucket):
    store = S3Store(*parse_blob_url(f"s3://{bucket}/pre"))
    assert not store.has_any()
    kept, orphan = "ab" + "1" * 30, "cd" + "2" * 30
    store.put(kept, {ORIGINAL: b"kept", WORK: b"kept work"})
    store.put(orphan, {ORIGINAL: b"orphan", THUMB: b"orphan thumb"})
    other = S3Store(bucket, "pre2/")  # "pre" must not reach into "pre2"
    other.put(orphan, {ORIGINAL: b"another prefix"})
    for name in ("pre/README.txt", "pre/ab/deeper/" + orphan + ".orig.bin", "elsewhere.bin"):
        s3.put_object(Bucket=bucket, Key=name, Body=b"not ours")
    everything = set(objects(s3, bucket))
    assert store.has_any() and len(everything) == 8
    # Young: maybe an upload of another server whose row has not committed yet.
    assert store.remove_orphans({kept}) == 0 and set(objects(s3, bucket)) == everything
    assert store.remove_orphans({kept}, min_age=timedelta(0)) == 2
    assert set(objects(s3, bucket)) == everything - {"pre/" + blob_name(orphan, ORIGINAL),
                                                    "pre/" + blob_name(orphan, THUMB)}
    assert store.read(kept, WORK) == b"kept work" and other.read(orphan, ORIGINAL) == b"another prefix"
    with pytest.raises(FileNotFoundError):
        store.read(orphan, ORIGINAL)
    store.delete(orphan)  # nothing left: fine
    store.delete(kept)
    assert not names_of(objects(s3, bucket), kept)


def test_start_up_sweep_leaves_young_unknown_objects(tmp_path, cache_dir, s3, bucket):
    url = f"s3://{bucket}/pre"
    with s3_app(tmp_path, cache_dir, url) as client:
        _, (cid, _) = make_project(client)
        sample = upload(client, cid, ANTS[:1]).json()["added"][0]
    stray = "pre/" + blob_name("ef" + "3" * 30, ORIGINAL)
    s3.put_object(Bucket=bucket, Key=stray, Body=b"an upload under way elsewhere")
    with s3_app(tmp_path, cache_dir, url) as client:
        assert stray in objects(s3, bucket)
        assert client.get(sample["url"]).content == ANTS[0].read_bytes()


@pytest.mark.parametrize("url", ["s3://", "s3:///pre", "http://bucket/pre", "s3://key:secret@bucket/pre",
                                 "s3://bucket/pre?region=x"])
def test_a_bad_blob_url_fails_at_start(tmp_path, cache_dir, s3_env, url):
    with pytest.raises(ValueError, match="SNAPCLASS_BLOB_URL must look like s3://BUCKET"), \
            s3_app(tmp_path, cache_dir, url):
        pass


def test_a_missing_bucket_fails_at_start(tmp_path, cache_dir, s3_env):
    with pytest.raises(ClientError, match="NoSuchBucket"), s3_app(tmp_path, cache_dir, "s3://no-such-bucket-here/pre"):
        pass
