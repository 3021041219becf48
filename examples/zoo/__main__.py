"""``python -m examples.zoo``: serve the zoo API.

.. code-block:: text

    python -m examples.zoo [--host 127.0.0.1] [--port 8000] [--db zoo.db | --db postgresql://user@host/dbname]
        [--create] [--empty] [--token T] [--readonly-token R] [--rate-limit N] [--max-body BYTES]
        [--deadline SECONDS] [--durability full|normal] [--cors-origin ORIGIN ...]
        [--certfile cert.pem --keyfile key.pem] [--trust-proxy ADDR[,ADDR...]]
        [--v1-sunset DATE [--v1-deprecated DATE]]

Every option starts from its ``ZOO_*`` variable (:class:`examples.zoo.settings.ZooSettings`,
the settings ``examples.zoo.wsgi`` reads too) and wins over it.  Without
``--token`` (or ``ZOO_TOKEN``) a random token is made up and printed; a token
that was given is never printed.  An SQLite file that does not exist is an
error unless ``--create`` is given.  Ctrl-C (SIGINT) or SIGTERM stops the
server (``restkit.serve`` handles both), exit status 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys

from restkit import serve
from restkit.settings import Secret, SettingsError

from .engine import describe
from .settings import ZooSettings, build_app, describe_settings, read_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options given; ``.settings`` holds the settings they make with the environment's."""
    parser = argparse.ArgumentParser(prog="python -m examples.zoo", description="Serve the zoo REST API.",
                                     epilog="environment variables (the options win over them):\n"
                                     + describe_settings(), formatter_class=argparse.RawDescriptionHelpFormatter)
    try:
        env = read_settings()
    except (SettingsError, ValueError) as exc:
        parser.error(str(exc))
    parser.add_argument("--host", default=env.host, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=env.port, help="port to listen on (default 8000)")
    parser.add_argument("--db", default=env.db,
                        help="SQLite database file, or postgresql://user@host:port/dbname (default zoo.db)")
    parser.add_argument("--create", action="store_true", default=env.create,
                        help="make the SQLite file (with demo data unless --empty) when it does not exist")
    parser.add_argument("--token", default=None, help="Bearer token for writes (env ZOO_TOKEN)")
    parser.add_argument("--readonly-token", default=None, help="a token that may only read")
    parser.add_argument("--rate-limit", type=int, default=env.rate_limit, metavar="N",
                        help="requests per minute per client (0: off)")
    parser.add_argument("--max-body", type=int, default=env.max_body, metavar="BYTES",
                        help="request body limit (default 1 MiB)")
    parser.add_argument("--empty", action="store_true", default=env.empty, help="a new database gets no demo data")
    parser.add_argument("--deadline", type=float, default=env.deadline, metavar="SECONDS",
                        help="longest a request waits for the database, from its arrival; then 503 (default 5)")
    parser.add_argument("--durability", choices=["full", "normal"], default=env.durability,
                        help="full: every commit synced to disk (default);"
                             " normal: faster, an OS crash may lose the last commits")
    parser.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                        help="an origin whose pages may call the API, e.g. http://localhost:3000"
                             " (repeatable; * for any)")
    parser.add_argument("--certfile", default=None, help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--keyfile", default=None, help="the certificate's PEM private key")
    parser.add_argument("--trust-proxy", default=None, metavar="ADDR[,ADDR...]",
                        help="balancers whose X-Forwarded-For/-Proto/-Host are believed"
                             " (env ZOO_TRUST_PROXY; only ones you run)")
    parser.add_argument("--v1-sunset", default=env.v1_sunset, metavar="DATE",
                        help="deprecate v1: every v1 answer carries Deprecation, Sunset (this date: YYYY-MM-DD"
                        " or ISO-8601) and a successor-version Link to /v2 (env ZOO_V1_SUNSET)")
    parser.add_argument("--v1-deprecated", default=env.v1_deprecated, metavar="DATE",
                        help="since when v1 is deprecated (default: the start; env ZOO_V1_DEPRECATED)")
    args = parser.parse_args(argv)
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    try:
        settings = dataclasses.replace(
            env,
            host=args.host, port=args.port, db=args.db, create=args.create, empty=args.empty,
            token=Secret(args.token) if args.token else env.token,
            readonly_token=Secret(args.readonly_token) if args.readonly_token else env.readonly_token,
            rate_limit=args.rate_limit, max_body=args.max_body, deadline=args.deadline, durability=args.durability,
            cors_origins=args.cors_origin if args.cors_origin is not None else env.cors_origins,
            trust_proxy=[a.strip() for a in args.trust_proxy.split(",") if a.strip()]
            if args.trust_proxy is not None else env.trust_proxy,
            v1_sunset=args.v1_sunset, v1_deprecated=args.v1_deprecated,
        )
    except ValueError as exc:
        parser.error(str(exc))
    args.settings = settings
    # the options as they were before the settings: their values with the environment's filled in
    args.cors_origin, args.trust_proxy = list(settings.cors_origins), ",".join(settings.trust_proxy) or None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings: ZooSettings = args.settings
    made_up = None if settings.token else secrets.token_urlsafe(24)
    try:
        app = build_app(settings, token=made_up)
    except Exception as exc:  # missing, unreadable, not a database, unreachable...
        print(f"zoo: cannot open the database {describe(settings.db)}: {exc}", file=sys.stderr)
        return 1
    scheme = "https" if args.certfile else "http"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"zoo: serving {scheme}://{host}:{settings.port}/v1 (database {describe(settings.db)})", flush=True)
    if made_up:  # a token the operator gave is theirs: not printed
        print(f"zoo: write token: {made_up}", flush=True)
    if app.deprecation is not None:
        print(f"zoo: v1 is deprecated since {app.deprecation.deprecated.isoformat()},"
              f" sunset {app.deprecation.sunset.isoformat()}; its successor is /v2", flush=True)
    try:
        serve(app, host=settings.host, port=settings.port, certfile=args.certfile, keyfile=args.keyfile)
    except OSError as exc:  # the port is taken, the address is not ours...
        print(f"zoo: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting up
        pass
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
