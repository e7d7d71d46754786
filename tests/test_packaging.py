"""The built wheel is the whole product: installed into a fresh venv and started from another directory,
`snapclass serve` serves every page, style sheet and script from the installed package, not from this checkout.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from bench.common import free_port

REPO = Path(__file__).resolve().parent.parent
# What the Dockerfile's build stage copies: the build must need nothing else.
BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "app", "templates", "static"]
# Where each source folder lands inside the wheel.
IN_WHEEL = {"app": "app", "templates": "app/templates", "static": "app/static"}
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc")

pytestmark = pytest.mark.slow  # a wheel build, a venv and a server start: about a minute on 2 cores


def _source_files() -> dict[str, Path]:
    """Every file the product is made of, keyed by its path inside the wheel."""
    out = {}
    for folder, target in IN_WHEEL.items():
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out[f"{target}/{path.relative_to(REPO / folder).as_posix()}"] = path
    return out


def _run(cmd: list, **kw) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the build inputs, as in the Dockerfile, so that nothing else in the checkout helps."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=JUNK)
        else:
            shutil.copy2(REPO / name, src / name)
    # No build isolation: it would download setuptools; the venv running the tests has it.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp / "dist", src])
    (built,) = (tmp / "dist").glob("snapclass-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> dict:
    """A fresh venv with the wheel installed. Its dependencies come from the venv running the tests, through a
    .pth file (nothing downloaded); .pth files there are not read, so that venv's editable snapclass stays out."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    # No pip inside: the test venv's pip installs into it (--python), which is quicker than ensurepip.
    _run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    ours = sysconfig.get_paths()
    shared = dict.fromkeys([ours["purelib"], ours["platlib"]])
    (site / "_snapclass_test_deps.pth").write_text("".join(f"{p}\n" for p in shared))
    # --ignore-installed: the test venv's own (editable) snapclass is visible through the .pth; leave it be.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--ignore-installed",
          wheel])
    return {"python": python, "site": site, "bin": root / "bin"}


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["SNAPCLASS_LOG_LEVEL"] = "warning"
    return env


def test_the_wheel_carries_the_templates_static_files_and_every_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _source_files()
    assert {"app/templates/base.html", "app/templates/project.html", "app/static/style.css",
            "app/static/js/project.js", "app/migrations/env.py", "app/migrations/script.py.mako",
            "app/migrations/versions/0001_initial.py"} <= set(expected)
    missing = sorted(set(expected) - names)
    assert not missing, f"not in the wheel: {missing}"
    # Non-Python files of app's own packages (Alembic's script.py.mako, once app/migrations exists) ship too.
    def package_data(paths):
        return sorted(n for n in paths if not n.endswith(".py") and not n.startswith(("app/templates/", "app/static/"))
                      and n.startswith("app/"))

    assert package_data(expected) == package_data(names)
    with zipfile.ZipFile(wheel) as z:
        for name, path in expected.items():
            assert z.read(name) == path.read_bytes(), name


def test_the_installed_wheel_serves_the_whole_ui_from_site_packages(venv, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env()

    # The installed package is what runs, and the checkout is not on its path.
    probe = ("import json, sys, app, app.assets; print(json.dumps({'app': app.__file__, "
             "'templates': str(app.assets.TEMPLATES), 'static': str(app.assets.STATIC), 'path': sys.path}))")
    seen = json.loads(_run([venv["python"], "-c", probe], cwd=elsewhere, env=env))
    site = venv["site"].resolve()
    for key in ("app", "templates", "static"):
        assert Path(seen[key]).resolve().is_relative_to(site), (key, seen[key])
    assert not any(p and Path(p).resolve() == REPO for p in seen["path"]), seen["path"]
    installed_static = Path(seen["static"])
    installed_templates = Path(seen["templates"])

    # Mark the installed copies, so that what is served can only have come from them.
    marker = f"installed-{secrets.token_hex(6)}"
    with (installed_templates / "base.html").open("a") as f:
        f.write(f"\n<!-- {marker} -->\n")
    with (installed_static / "style.css").open("a") as f:
        f.write(f"\n/* {marker} */\n")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([venv["bin"] / "snapclass", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", tmp_path / "data"], cwd=elsewhere, env=env)
    try:
        _wait_healthy(url, proc)
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/api/health").json()["status"] == "ok"
            pid = client.post("/api/projects", json={"name": "packaged"}).json()["id"]
            referenced = set()
            for page in ("/", f"/projects/{pid}", f"/projects/{pid}/models", f"/projects/{pid}/live"):
                r = client.get(page)
                assert r.status_code == 200, (page, r.status_code)
                assert marker in r.text, page
                referenced |= set(re.findall(r'(?:href|src)="(/static/[^"?]+)', r.text))
            assert {"/static/style.css", "/static/js/project.js", "/static/models.css"} <= referenced

            # Every static file (each page's CSS and JS, and the modules they import) as installed, byte for byte.
            files = sorted(p for p in installed_static.rglob("*") if p.is_file())
            served = {f"/static/{p.relative_to(installed_static).as_posix()}" for p in files}
            assert referenced <= served, referenced - served
            for path in files:
                r = client.get(f"/static/{path.relative_to(installed_static).as_posix()}")
                assert r.status_code == 200, path
                assert r.content == path.read_bytes(), path
            assert marker in client.get("/static/style.css").text
            for name in re.findall(r'from "\./([^"]+)"', client.get("/static/js/project.js").text):
                assert client.get(f"/static/js/{name}").status_code == 200, name
        # The installed package's Alembic revisions made the database (the project above is in it).
        assert (tmp_path / "data" / "snapclass.db").is_file()
        assert not list(elsewhere.iterdir()), "the server wrote into its working directory"
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"snapclass serve exited with {proc.returncode}"
        assert time.monotonic() < deadline, "snapclass serve did not answer /api/health within 120 s"
        time.sleep(0.2)
