"""The command line: ``python -m restkit package.module:app [--host H] [--port P]``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from .server import serve

__all__ = ["load_app", "main"]


def load_app(spec: str) -> Any:
    """Import ``package.module:name`` and return the WSGI app it names.

    Raises:
        ValueError: the spec is malformed, the module or name is missing, or
            the object is not callable.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'package.module:app', got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(f"no module named {module_name!r} (run from the directory that contains it)") from None
        raise
    try:
        app = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(app):
        raise ValueError(f"{spec} is not a WSGI application (not callable)")
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restkit", description="Serve a WSGI application with restkit's threaded server.")
    parser.add_argument("app", help="the application, as package.module:name")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument("--threads", type=int, default=256, help="most connections served at once (default 256)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a client may stall mid-request (default 30)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log a line per request")
    args = parser.parse_args(argv)
    try:
        app = load_app(args.app)
    except ValueError as exc:
        print(f"restkit: {exc}", file=sys.stderr)
        return 2
    try:
        serve(app, args.host, args.port, threads=args.threads, timeout=args.timeout, access_log=not args.no_access_log)
    except OSError as exc:
        print(f"restkit: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
