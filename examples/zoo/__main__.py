"""``python -m examples.zoo``: serve the zoo API.

    python -m examples.zoo [--host 127.0.0.1] [--port 8000] [--db zoo.db | --db postgresql://user@host/dbname]
        [--token T] [--readonly-token R] [--rate-limit N] [--max-body BYTES] [--empty]
        [--deadline SECONDS] [--durability full|normal] [--cors-origin ORIGIN ...]
        [--certfile cert.pem --keyfile key.pem] [--trust-proxy ADDR[,ADDR...]]
        [--v1-sunset DATE [--v1-deprecated DATE]]

Without ``--token`` (or ``ZOO_TOKEN`` in the environment) a random token is
made up and printed.  Ctrl-C (SIGINT) or SIGTERM stops the server (``restkit.serve`` handles both), exit status 0.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from restkit import serve
from restkit.proxy import ProxyHeaders

from .app import make_app
from .deprecation import parse_moment
from .engine import describe


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.zoo", description="Serve the zoo REST API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--db", default="zoo.db", help="SQLite database file, or postgresql://user@host:port/dbname (default zoo.db)")
    parser.add_argument("--token", default=os.environ.get("ZOO_TOKEN"), help="Bearer token for writes (env ZOO_TOKEN)")
    parser.add_argument("--readonly-token", default=None, help="a token that may only read")
    parser.add_argument("--rate-limit", type=int, default=600, metavar="N", help="requests per minute per client (0: off)")
    parser.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", help="request body limit (default 1 MiB)")
    parser.add_argument("--empty", action="store_true", help="a new database gets no demo data")
    parser.add_argument("--deadline", type=float, default=5.0, metavar="SECONDS",
                        help="longest wait of a write for the database; then 503 (default 5)")
    parser.add_argument("--durability", choices=["full", "normal"], default="full",
                        help="full: every commit synced to disk (default); normal: faster, an OS crash may lose the last commits")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="an origin whose pages may call the API, e.g. http://localhost:3000 (repeatable; * for any)")
    parser.add_argument("--certfile", default=None, help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--keyfile", default=None, help="the certificate's PEM private key")
    parser.add_argument("--trust-proxy", default=os.environ.get("ZOO_TRUST_PROXY"), metavar="ADDR[,ADDR...]",
                        help="balancers whose X-Forwarded-For/-Proto/-Host are believed (env ZOO_TRUST_PROXY; only ones you run)")
    parser.add_argument("--v1-sunset", default=os.environ.get("ZOO_V1_SUNSET"), metavar="DATE",
                        help="deprecate v1: every v1 answer carries Deprecation, Sunset (this date: YYYY-MM-DD"
                        " or ISO-8601) and a successor-version Link to /v2 (env ZOO_V1_SUNSET)")
    parser.add_argument("--v1-deprecated", default=os.environ.get("ZOO_V1_DEPRECATED"), metavar="DATE",
                        help="since when v1 is deprecated (default: the start; env ZOO_V1_DEPRECATED)")
    args = parser.parse_args(argv)
    if args.deadline <= 0:
        parser.error("--deadline must be > 0")
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    if args.trust_proxy:
        try:
            ProxyHeaders(args.trust_proxy)
        except ValueError as exc:
            parser.error(f"--trust-proxy: {exc}")
    if args.v1_deprecated and not args.v1_sunset:
        parser.error("--v1-deprecated needs --v1-sunset")
    for option, value in (("--v1-sunset", args.v1_sunset), ("--v1-deprecated", args.v1_deprecated)):
        if value:
            try:
                parse_moment(value)
            except ValueError as exc:
                parser.error(f"{option}: {exc}")
    if args.v1_sunset and args.v1_deprecated and parse_moment(args.v1_sunset) < parse_moment(args.v1_deprecated):
        parser.error("--v1-sunset is before --v1-deprecated")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = args.token or secrets.token_urlsafe(24)
    try:
        app = make_app(
            args.db,
            token=token,
            readonly_token=args.readonly_token,
            rate_limit=args.rate_limit,
            max_body=args.max_body,
            empty=args.empty,
            deadline=args.deadline,
            durability=args.durability,
            cors_origins=args.cors_origin,
            trust_proxy=args.trust_proxy or (),
            v1_sunset=args.v1_sunset,
            v1_deprecated=args.v1_deprecated,
        )
    except Exception as exc:  # an unreadable file, not a database...
        print(f"zoo: cannot open the database {describe(args.db)}: {exc}", file=sys.stderr)
        return 1
    scheme = "https" if args.certfile else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"zoo: serving {scheme}://{host}:{args.port}/v1 (database {describe(args.db)})", flush=True)
    print(f"zoo: write token: {token}", flush=True)
    if app.deprecation is not None:
        print(f"zoo: v1 is deprecated since {app.deprecation.deprecated.isoformat()},"
              f" sunset {app.deprecation.sunset.isoformat()}; its successor is /v2", flush=True)
    try:
        serve(app, host=args.host, port=args.port, certfile=args.certfile, keyfile=args.keyfile)
    except OSError as exc:  # the port is taken, the address is not ours...
        print(f"zoo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting up
        pass
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
