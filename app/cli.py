"""The `snapclass` command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import Settings
    from app.migrate import Upgrade

DATA_DIR_HELP = "default: $SNAPCLASS_DATA_DIR or ./data"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snapclass", description="Self-hosted image-classifier trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web server (upgrades the database first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    migrate = sub.add_parser("migrate", help="upgrade the database to this release's schema, then exit",
                             description="Upgrade the database in place, as `serve` does at start, keeping a copy "
                                         "of a SQLite file next to it (snapclass.db.bak-<revision>).")
    migrate.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from app.config import Settings

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    if args.command == "migrate":
        print(upgrade_or_exit(settings).describe())
    elif args.command == "serve":
        serve(settings, args.host, args.port)


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


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from app.main import create_app

    # Before uvicorn: a database this release must refuse is one clear line, not a failed-startup traceback.
    upgraded = upgrade_or_exit(settings)
    if upgraded.changed:
        print(f"snapclass: {upgraded.describe()}", file=sys.stderr)
    # One process: the worker thread that owns the device lives inside it.
    uvicorn.run(create_app(settings), host=host, port=port, workers=1,
                log_level=os.environ.get("SNAPCLASS_LOG_LEVEL", "info"))
