"""The `webapp` download: a zip with exactly the page, the float ONNX model, its metadata and ONNX Runtime Web's
pinned files; its parity is the ONNX file's; without ORT Web's files it is refused in words, the rest unaffected.
(tests/browser/test_webapp.py runs the page itself in Chromium.)"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import zipfile
from html.parser import HTMLParser

import onnxruntime as ort
import pytest

from app import webapp
from tests.conftest import make_client, make_project, photos, train, upload

pytestmark = pytest.mark.slow  # a training and an ONNX export: about a minute on 2 cores

ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
EXPECTED = {"index.html", "README.txt", "app.js", "style.css", "model.onnx", "model.json",
            *(f"ort/{name}" for name in ORT_FILES)}
# model.json: the ONNX metadata, these values decoded from their JSON text, the others as they are.
JSON_VALUED = {"labels", "input_size", "preprocessing", "unknown_threshold", "snapclass_model_id",
               "snapclass_model_version"}


def pins() -> dict[str, str]:
    lines = webapp.PINS.read_text().splitlines()
    assert "# onnxruntime-web 1.30.0" in lines
    return {name: digest for digest, name in (line.split() for line in lines if line and not line.startswith("#"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small project trained on real photos; the webapp download refused while ORT Web's files are missing or
    altered, then built; and the onnx download beside it."""
    if not all((webapp.RUNTIME_DIR / name).is_file() for name in ORT_FILES):
        pytest.skip(f"ONNX Runtime Web's files are not in {webapp.RUNTIME_DIR}: run scripts/fetch-web-runtime")
    # A cache of its own: another test's identical model (same photos, seed and id) would have left this file built.
    with make_client(tmp_path_factory.mktemp("webapp"), tmp_path_factory.mktemp("webapp-cache")) as client:
        pid, (ants, bees) = make_project(client, "Ants & bees", ("ants", "bees"))
        upload(client, ants, photos("hymenoptera", "train", "ants", limit=10))
        upload(client, bees, photos("hymenoptera", "train", "bees", limit=10))
        job = train(client, pid, epochs=5)
        assert job["status"] == "succeeded", job
        url = f"/api/projects/{pid}/model/download"

        refused, installed = {}, webapp.RUNTIME_DIR
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(webapp, "RUNTIME_DIR", tmp_path_factory.mktemp("no-runtime"))
            refused["missing"] = client.get(url, params={"format": "webapp"})
            # The other formats do not need those files.
            onnx = client.get(url, params={"format": "onnx"})
            altered = tmp_path_factory.mktemp("altered-runtime")
            for name in ORT_FILES:
                shutil.copy(installed / name, altered / name)
            with (altered / "ort-wasm-simd-threaded.mjs").open("ab") as f:
                f.write(b"\n// one more line\n")
            mp.setattr(webapp, "RUNTIME_DIR", altered)
            refused["altered"] = client.get(url, params={"format": "webapp"})
        assert onnx.status_code == 200, onnx.text

        r = client.get(url, params={"format": "webapp"})
        assert r.status_code == 200, r.text
        yield {"client": client, "pid": pid, "model_id": job["model_id"], "response": r, "onnx": onnx.content,
               "refused": refused, "dir": tmp_path_factory.mktemp("unzipped")}


def test_without_ort_web_files_the_webapp_is_refused_in_words_and_the_rest_unaffected(built):
    missing, altered = built["refused"]["missing"], built["refused"]["altered"]
    assert missing.status_code == 409
    assert "ONNX Runtime Web" in missing.json()["detail"] and "run scripts/setup" in missing.json()["detail"]
    assert altered.status_code == 409
    assert "ort-wasm-simd-threaded.mjs is not the pinned one" in altered.json()["detail"]


def test_the_zip_holds_exactly_the_page_the_model_its_metadata_and_the_pinned_runtime(built):
    r = built["response"]
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="ants-bees-v1.webapp.zip"' in r.headers["content-disposition"]
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.testzip() is None
    infos = z.infolist()
    names = [i.filename for i in infos]
    assert len(names) == len(set(names)) and set(names) == EXPECTED
    for info in infos:
        assert not info.filename.startswith(("/", "\\")) and ".." not in info.filename.split("/"), info.filename
        assert not info.is_dir() and stat.S_ISREG(info.external_attr >> 16), info.filename

    # ONNX Runtime Web's files are the pinned ones, byte for byte, of the pinned version.
    for name, digest in pins().items():
        assert hashlib.sha256(z.read(f"ort/{name}")).hexdigest() == digest, name
    assert set(pins()) == set(ORT_FILES)
    assert b"ONNX Runtime Web v1.30.0" in z.read("ort/ort.wasm.min.js")[:200]

    # The model is the onnx download itself, and model.json its metadata.
    assert z.read("model.onnx") == built["onnx"]
    model_path = built["dir"] / "model.onnx"
    model_path.write_bytes(z.read("model.onnx"))
    onnx_meta = ort.InferenceSession(str(model_path)).get_modelmeta().custom_metadata_map
    meta = json.loads(z.read("model.json"))
    assert meta == {k: json.loads(v) if k in JSON_VALUED else v for k, v in onnx_meta.items()}
    assert meta["labels"] == ["ants", "bees"] and meta["project"] == "Ants & bees"
    assert isinstance(meta["input_size"], int) and isinstance(meta["unknown_threshold"], float)
    assert meta["snapclass_model_version"] == 1

    # The page names the project and loads only its own files, by relative paths.
    page = _Page()
    page.feed(z.read("index.html").decode())
    assert page.title == "Ants & bees" and "Ants &amp; bees" in z.read("index.html").decode()
    assert set(page.refs) == {"style.css", "app.js", "ort/ort.wasm.min.js"}
    assert set(page.refs) <= set(names)
    assert "Ants & bees" in z.read("README.txt").decode()  # plain text: not HTML-escaped


def test_the_model_lists_the_webapp_with_the_onnx_files_parity_and_the_zips_size(built):
    client, pid = built["client"], built["pid"]
    exports = {e["format"]: e for e in client.get(f"/api/models/{built['model_id']}").json()["exports"]}
    assert {"onnx", "webapp"} <= set(exports)
    web, onnx = exports["webapp"], exports["onnx"]
    assert web["size_bytes"] == len(built["response"].content)
    assert web["offered"] and web["reason"] is None and web["photos"] == onnx["photos"] > 0
    assert web["agreement"] == onnx["agreement"] == 1.0
    assert web["max_prob_diff"] == onnx["max_prob_diff"] < 1e-4
    # Built once: the next download is the cached zip.
    again = client.get(f"/api/projects/{pid}/model/download", params={"format": "webapp"})
    assert again.content == built["response"].content


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.title, self.refs, self._in_title = "", [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_title = tag == "title"
        for key in ("src", "href"):
            if attrs.get(key):
                self.refs.append(attrs[key])

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
