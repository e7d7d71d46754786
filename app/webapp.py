"""The `webapp` download: a zip holding a static page that runs the float ONNX model in the browser (ONNX Runtime
Web, wasm backend), on photos and on the webcam, with nothing fetched from elsewhere.

ORT Web cannot read an ONNX file's metadata, so the zip carries it again as model.json (the same keys, JSON values
decoded). ORT Web's own files come from the npm package, fetched at set-up by scripts/fetch-web-runtime into
static/vendor/onnxruntime-web/ and checked here again against the pinned hashes before they go into a zip.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import stat
import zipfile
from pathlib import Path

import jinja2

from app.assets import STATIC, TEMPLATES

PINS = STATIC / "vendor" / "onnxruntime-web.sha256"
RUNTIME_DIR = STATIC / "vendor" / "onnxruntime-web"  # a module global: tests point it elsewhere
PAGE_DIR = STATIC / "webapp"
PAGE_FILES = ("app.js", "style.css")
TEMPLATE = "index.html"  # in templates/webapp/
RUNTIME_IN_ZIP = "ort"
# ONNX metadata values that are JSON text (the others are plain strings).
JSON_KEYS = {"labels", "input_size", "preprocessing", "unknown_threshold", "snapclass_model_id",
             "snapclass_model_version"}
# A fixed time for every entry: the same model and page give the same zip, byte for byte.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES / "webapp"),
                                autoescape=jinja2.select_autoescape(["html"]),
                                keep_trailing_newline=True)


class RuntimeMissing(Exception):
    """ONNX Runtime Web's files are not installed (or not the pinned ones); the message says what to do."""


def pinned() -> tuple[str, dict[str, str]]:
    """(ONNX Runtime Web version, {file name: sha256}) from the pin file."""
    version, hashes = "", {}
    for line in PINS.read_text().splitlines():
        if line.startswith("# onnxruntime-web "):
            version = line.split()[-1]
        elif line.strip() and not line.startswith("#"):
            digest, name = line.split()
            hashes[name] = digest
    return version, hashes


def runtime_files() -> dict[str, Path]:
    """{file name: path} of ORT Web's files, each checked against its pinned sha256; or RuntimeMissing."""
    version, hashes = pinned()
    found = {}
    for name, digest in hashes.items():
        path = RUNTIME_DIR / name
        if not path.is_file():
            raise RuntimeMissing(f"the web app needs ONNX Runtime Web's files, and {name} is not installed: "
                                 "run scripts/setup (it fetches them with npm)")
        if _sha256(path) != digest:
            raise RuntimeMissing(f"the web app needs ONNX Runtime Web {version}'s files, and {name} is not the "
                                 "pinned one: run scripts/setup again")
        found[name] = path
    return found


def content_digest() -> str:
    """What the page, the runtime and this module are made of, for the cache key: a new page makes new zips."""
    h = hashlib.sha256(PINS.read_bytes())
    for path in [Path(__file__), TEMPLATES / "webapp" / TEMPLATE, TEMPLATES / "webapp" / "README.txt",
                 *(PAGE_DIR / n for n in PAGE_FILES)]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def metadata(onnx_path: Path) -> dict:
    """The ONNX file's own metadata, JSON values decoded: what the page reads instead of the file's."""
    import onnx

    props = onnx.load(str(onnx_path), load_external_data=False).metadata_props
    return {p.key: json.loads(p.value) if p.key in JSON_KEYS else p.value for p in props}


def entries(onnx_path: Path) -> dict[str, bytes | Path]:
    """Every file of the zip, by its name in it."""
    meta = metadata(onnx_path)
    version, _ = pinned()
    runtime = runtime_files()
    page = _templates.get_template(TEMPLATE).render(project=meta["project"], version=meta["snapclass_model_version"],
                                                    runtime_dir=RUNTIME_IN_ZIP)
    readme = _templates.get_template("README.txt").render(project=meta["project"],
                                                           version=meta["snapclass_model_version"], ort=version)
    return {
        "index.html": page.encode(),
        "README.txt": readme.encode(),
        **{name: PAGE_DIR / name for name in PAGE_FILES},
        "model.onnx": onnx_path,
        "model.json": (json.dumps(meta, indent=1, ensure_ascii=False) + "\n").encode(),
        **{f"{RUNTIME_IN_ZIP}/{name}": path for name, path in runtime.items()},
    }


def write_zip(onnx_path: Path, dest: Path) -> None:
    """The zip at `dest`, written to a temporary name first; RuntimeMissing before anything is written."""
    files = entries(onnx_path)
    tmp = dest.with_name(dest.name + f".{secrets.token_hex(4)}.part")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for name, content in files.items():
                info = zipfile.ZipInfo(name, ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain file, rw-r--r--
                with z.open(info, "w") as out:
                    if isinstance(content, Path):
                        with content.open("rb") as src:
                            _copy(src, out)
                    else:
                        out.write(content)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _copy(src: io.BufferedIOBase, out) -> None:
    while chunk := src.read(1 << 20):
        out.write(chunk)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
