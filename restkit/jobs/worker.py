"""``python -m restkit worker SPEC [--threads N]``: run an app's job runners and nothing else.

It imports the app as serving would, runs its startup hooks (pools the job
functions need; a :class:`~restkit.jobs.Jobs` with ``threads=0`` starts no
runner there), starts ``--threads`` runners for every ``Jobs`` the app uses,
and on SIGTERM or Ctrl-C runs the shutdown hooks (running jobs get their
``grace`` to stop) and exits 0.  Serve the app with ``Jobs(threads=0)`` to
keep job work out of the processes answering requests.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from ..cli import load_restkit_app, configure_logging
from .feature import find_jobs

__all__ = ["main"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m restkit worker",
                                     description="Run the job runners of a restkit App (restkit.jobs), "
                                                 "without serving it.")
    parser.add_argument("app", help="the restkit App: package.module:name, package.module or "
                                    "package.module:create_app()")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="runner threads per Jobs (default: its threads=, at least 1)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    configure_logging(args.log_level)
    app = load_restkit_app(args.app)
    if app is None:
        return 1
    found = find_jobs(app)
    if not found:
        print(f"restkit: {args.app} uses no restkit.jobs.Jobs (app.use(Jobs(...))): nothing to run", file=sys.stderr)
        return 1
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        app.startup()
    except Exception as exc:
        print(f"restkit: startup failed: {exc}", file=sys.stderr)
        return 1
    for jobs in found:
        jobs.start(args.threads or max(1, jobs.threads))
    kinds = sorted(kind for jobs in found for kind in jobs.kinds)
    print(f"restkit: worker running jobs of {', '.join(kinds) or 'no kind'}", file=sys.stderr, flush=True)
    while not stop.wait(3600):
        pass
    for hook in list(getattr(app, "shutdown_hooks", ())):
        try:
            hook()
        except Exception as exc:  # noqa: BLE001 - the other hooks still run
            print(f"restkit: shutdown hook failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    for jobs in found:
        jobs.stop()  # when the app's shutdown hooks were not its own (a Jobs installed twice...)
    return 0
