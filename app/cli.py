"""The `snapclass` command."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="snapclass", description="Self-hosted image-classifier trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data-dir", default=None, help="default: $SNAPCLASS_DATA_DIR or ./data")
    args = parser.parse_args(argv)

    if args.command == "serve":
        import uvicorn

        from app.config import Settings
        from app.main import create_app

        overrides = {"data_dir": args.data_dir} if args.data_dir else {}
        settings = Settings(**overrides)
        # One process: the worker thread that owns the device lives inside it.
        uvicorn.run(create_app(settings), host=args.host, port=args.port, workers=1,
                    log_level=os.environ.get("SNAPCLASS_LOG_LEVEL", "info"))
