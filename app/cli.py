"""The `snapclass` command: serve, and account management that works on a data dir no server has opened yet."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import Settings
    from app.migrate import Upgrade


def _settings(args, **more):
    from app.config import Settings

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    return Settings(**overrides, **more)


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="default: $SNAPCLASS_DATA_DIR or ./data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snapclass", description="Self-hosted image-classifier trainer")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web server (upgrades the database first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--auth", choices=("auto", "required", "off"), default=None,
                       help="login: auto (default; required unless listening on loopback only), required, off")
    _data_dir_arg(serve)

    worker = sub.add_parser(
        "worker", help="run training jobs from the Redis queue (SNAPCLASS_QUEUE_URL), one at a time, on one device",
        description="A worker process: owns one device, takes one job at a time from the queue named by "
                    "SNAPCLASS_QUEUE_URL, with the database (DATABASE_URL) and photo store (SNAPCLASS_BLOB_URL) "
                    "that serve uses. Start as many as you have devices, on any machines. SIGTERM finishes the job "
                    "in hand; a worker killed mid-job loses nothing: another takes the job up.")
    worker.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: $SNAPCLASS_DEVICE or auto)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    _data_dir_arg(worker)

    migrate = sub.add_parser("migrate", help="upgrade the database to this release's schema, then exit",
                             description="Upgrade the database in place, as `serve` does at start, keeping a copy "
                                         "of a SQLite file next to it (snapclass.db.bak-<revision>).")
    _data_dir_arg(migrate)

    users = sub.add_parser("users", help="manage accounts (add, list, passwd, remove)")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="make an account")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage accounts and sees every project")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _data_dir_arg(add)
    listing = users_sub.add_parser("list", help="list the accounts")
    _data_dir_arg(listing)
    passwd = users_sub.add_parser("passwd", help="set an account's password (signs it out everywhere)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _data_dir_arg(passwd)
    remove = users_sub.add_parser("remove", help="remove an account; its projects go to the first admin")
    remove.add_argument("name")
    _data_dir_arg(remove)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        serve(args)
    elif args.command == "worker":
        sys.exit(worker(args))
    elif args.command == "migrate":
        print(upgrade_or_exit(_settings(args)).describe())
    elif args.command == "users":
        sys.exit(users(args))


def upgrade_or_exit(settings: Settings) -> Upgrade:
    """The schema at this release's head, or a one-line reason on stderr and exit status 1."""
    from app.db import init_db, make_engine
    from app.migrate import SchemaError

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        return init_db(engine)
    except SchemaError as exc:
        sys.exit(f"snapclass: {exc}")
    finally:
        engine.dispose()


def serve(args) -> None:
    import uvicorn

    from app.main import create_app

    more = {"listen_host": args.host, "listen_port": args.port}
    if args.auth:
        more["auth"] = args.auth
    settings = _settings(args, **more)
    # Before uvicorn: a database this release must refuse is one clear line, not a failed-startup traceback.
    upgraded = upgrade_or_exit(settings)
    if upgraded.changed:
        print(f"snapclass: {upgraded.describe()}", file=sys.stderr)
    # One process: the worker thread that owns the device lives inside it.
    # timeout_graceful_shutdown: an open page holds a live-update stream (app.api.events) that would keep a stop
    # waiting; after a few seconds it is cut, and the page reconnects to the next server.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, workers=1, timeout_graceful_shutdown=10,
                log_level=os.environ.get("SNAPCLASS_LOG_LEVEL", "info"))


def worker(args) -> int:
    import logging

    from app.jobs import Worker
    from app.main import build_worker_services
    from app.migrate import SchemaError
    from app.queue import run_worker, worker_identity
    from app.training import make_train_handler, make_warm_up

    settings = _settings(args)
    if not settings.queue_url:
        print("snapclass worker: SNAPCLASS_QUEUE_URL is not set (redis://host:6379/0); without a queue, serve "
              "trains in its own worker thread", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("SNAPCLASS_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        services = build_worker_services(settings, args.device)
    except SchemaError as exc:
        print(f"snapclass worker: {exc}", file=sys.stderr)
        return 1
    services.worker = Worker(services.session_factory, {"train": make_train_handler(services)},
                             warm_up=make_warm_up(services), identity=worker_identity())
    logging.getLogger("snapclass").info("worker %s on %s, queue %s", services.worker.identity, services.device,
                                        settings.queue_url)
    try:
        run_worker(services.worker, settings.queue_url, burst=args.burst)
    finally:
        services.engine.dispose()
    # Everything a job wrote is committed by now. Leave at once: a thread pool of the runtimes (ONNX Runtime,
    # torch, the photo decoders) kept the interpreter's exit waiting ~30 s after a SIGTERM, past `docker stop`'s
    # grace period, which then kills the process anyway.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _read_password(args, generate_if_no_tty: bool) -> tuple[str, bool]:
    """(password, generated). stdin when asked; a prompt on a terminal; else a generated one, printed once."""
    from app.accounts import generate_password

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise ValueError("the two passwords differ")
        return first, False
    if generate_if_no_tty:
        return generate_password(), True
    raise ValueError("no terminal to ask for a password: use --password-stdin")


def users(args) -> int:
    from app import accounts
    from app.crud import Conflict, NotFound
    from app.db import init_db, make_engine, make_session_factory, session_scope
    from app.migrate import SchemaError

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        with session_scope(make_session_factory(engine)) as session:
            if args.action == "list":
                owned = accounts.owned_project_counts(session=session)
                for user in accounts.list_users(session=session):
                    role = "admin" if user.is_admin else "user"
                    print(f"{user.username}\t{role}\t{owned.get(user.id, 0)} projects")
            elif args.action == "add":
                password, generated = _read_password(args, generate_if_no_tty=True)
                user = accounts.create_user(session=session, username=args.name, password=password,
                                            is_admin=args.admin)
                print(f"added {user.username}" + (" (admin)" if user.is_admin else ""))
                if generated:
                    print(f"password: {password}")
            elif args.action == "passwd":
                user = accounts.get_user(session=session, username=args.name)
                password, _ = _read_password(args, generate_if_no_tty=False)
                accounts.set_password(session=session, user=user, password=password)
                print(f"password of {user.username} changed; its sessions are signed out")
            elif args.action == "remove":
                user = accounts.get_user(session=session, username=args.name)
                moved = accounts.remove_user(session=session, user=user, heir=None)
                print(f"removed {user.username}; {moved} projects moved to the first admin")
    except (ValueError, Conflict, NotFound, SchemaError) as exc:  # InvalidInput is a ValueError
        print(f"snapclass users {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0
