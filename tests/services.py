"""Real services for the tests, each a private instance in a temp dir, torn down after: Debian's PostgreSQL and
redis-server, and moto's standalone S3 server (reached only over HTTP, as MinIO or AWS would be).

A test that needs one skips, saying why, when its program is not installed (scripts/test installs them).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} in {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pg_bin(name: str) -> str | None:
    """Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres_user() -> tuple[list[str], int | None, int | None]:
    """PostgreSQL refuses to run as root (CI runs as root): then run it as Debian's `postgres` user."""
    if os.geteuid() != 0:
        return [], None, None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"], entry.pw_uid, entry.pw_gid


@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """A private PostgreSQL cluster; yields a URL of its `postgres` database (make more with new_database)."""
    initdb, postgres = pg_bin("initdb"), pg_bin("postgres")
    if not initdb or not postgres:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; scripts/test installs it)")
    prefix, uid, gid = _as_postgres_user()
    if uid is not None:  # pytest's tmp dirs are private to root: the cluster lives in a dir of its own
        root = Path(tempfile.mkdtemp(prefix="snapclass-pg-"))
        os.chown(root, uid, gid)
    data = root / "pgdata"
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "snap", "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    # fsync off: a test cluster is thrown away; unix sockets in our own dir (not /var/run/postgresql).
    log = (root / "postgres.log").open("wb")  # closed in the finally below, after the server stopped
    proc = subprocess.Popen([*prefix, postgres, "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                             "-k", str(root), "-c", "fsync=off", "-c", "max_connections=200"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_port(port, proc, "postgres")
        url = f"postgresql+psycopg://snap@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while True:  # the port opens before the server accepts logins
            try:
                new_database(url, None)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        _stop(proc)
        log.close()
        if uid is not None:
            shutil.rmtree(root, ignore_errors=True)


def new_database(server_url: str, name: str | None) -> str:
    """CREATE DATABASE `name` (a fresh one per test keeps tests apart); with None only checks the server."""
    import psycopg

    base = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        if name:
            conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}" if name else server_url


@contextmanager
def redis_server(root: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed (Debian package redis-server; scripts/test installs it)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@contextmanager
def s3_server(root: Path) -> Iterator[dict[str, str]]:
    """moto's standalone S3 server; yields the environment the app's S3 client reads (AWS_ENDPOINT_URL & co)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        pytest.skip("moto[server] is not installed (a dev dependency)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = (root / "moto.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_port(port, proc, "moto.server")
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        _stop(proc)
        log.close()


def new_bucket(env: dict[str, str]) -> str:
    import boto3

    name = f"snap-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                 region_name=env["AWS_DEFAULT_REGION"]).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture
def pg_url(pg_server) -> str:
    return new_database(pg_server, f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    with s3_server(tmp_path_factory.mktemp("s3")) as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@dataclass
class Cluster:
    """snapclass as a deployment runs it: web processes and worker processes on shared services."""

    root: Path
    env: dict[str, str]
    urls: list[str] = field(default_factory=list)
    webs: list[subprocess.Popen] = field(default_factory=list)
    workers: list[subprocess.Popen] = field(default_factory=list)
    data_dirs: list[Path] = field(default_factory=list)

    def _data_dir(self, name: str) -> Path:
        path = self.root / name
        self.data_dirs.append(path)
        return path

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("wb")
        try:
            return subprocess.Popen([sys.executable, "-m", "app", *args, "--data-dir", str(self._data_dir(name))],
                                    cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()  # the child holds its own copy

    def start_web(self) -> str:
        from bench.common import wait_healthy

        port = free_port()
        name = f"web{len(self.webs) + 1}"
        proc = self._spawn(["serve", "--port", str(port)], name)
        self.webs.append(proc)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log(name)}") from None
        self.urls.append(url)
        return url

    def start_worker(self, *more: str) -> subprocess.Popen:
        proc = self._spawn(["worker", *more], f"worker{len(self.workers) + 1}")
        self.workers.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in [*self.webs, *self.workers]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.webs, *self.workers]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def cluster(root: Path, database_url: str, queue_url: str, s3: dict[str, str] | None = None,
            bucket: str | None = None, webs: int = 2, workers: int = 2) -> Iterator[Cluster]:
    """`snapclass migrate` once, then `webs` serve and `workers` worker processes, each on its own empty data dir
    (only caches may land there): the database, the queue and, with `bucket`, the photos are shared services."""
    env = {**os.environ, "DATABASE_URL": database_url, "SNAPCLASS_QUEUE_URL": queue_url,
           "SNAPCLASS_LOG_LEVEL": os.environ.get("SNAPCLASS_CLUSTER_LOG_LEVEL", "warning"), **(s3 or {})}
    if bucket:
        env["SNAPCLASS_BLOB_URL"] = f"s3://{bucket}/snapclass"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "app", "migrate", "--data-dir", str(root / "migrate")], cwd=REPO, env=env,
                   check=True, capture_output=True)
    shutil.rmtree(root / "migrate")  # a SQLite-less migrate leaves an empty dir: not one of the processes' dirs
    c = Cluster(root=root, env=env)
    try:
        for _ in range(workers):
            c.start_worker()
        for _ in range(webs):
            c.start_web()
        yield c
    finally:
        c.stop()
