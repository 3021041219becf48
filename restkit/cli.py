"""The command line: ``python -m restkit package.module[:app] [--reload] [--debug] [--port P] ...``.

Three subcommands look at an app without serving it: ``routes SPEC`` (the
route table), ``openapi SPEC [-o FILE]`` (the document of ``/openapi.json``)
and ``check SPEC`` (it imports and sets up; ``ok: N routes``).  A first
argument that is exactly one of their names is the subcommand, so a module
called ``routes``, ``openapi`` or ``check`` is served as ``routes:app``.

With ``--reload`` this process becomes a watcher (as Werkzeug's stat
reloader): it serves nothing itself, but runs the server in a child process
and polls the modification times of the ``.py`` files under the current
directory.  When one changes it stops the child and starts a new one.  A
child that dies (a syntax error, an exception at import) is reported and
restarted on the next change, so the watcher outlives every mistake.

With ``--workers N`` (other than 1) or ``--max-requests``, this process is
the supervisor of :mod:`restkit.server.supervisor`: it never imports the app; each
worker loads it after the fork, so SIGHUP serves new code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .logformat import LOG_FORMATS, formatter_for

if TYPE_CHECKING:
    from .server.supervisor import WorkerPlan

__all__ = ["SUBCOMMANDS", "load_app", "main"]

_CHILD = "RESTKIT_RELOAD_CHILD"  # set in the environment of the server a watcher runs
_POLL_SECONDS = 0.5
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "build", "dist"})


def load_app(spec: str) -> Any:
    """Import the WSGI app that ``spec`` names and return it.

    ``spec`` is ``package.module:name``, ``package.module`` (the module's
    ``app`` or else ``application``) or ``package.module:factory()`` (called,
    with literal arguments if given, e.g. ``create_app("dev")``).

    Raises:
        ValueError: the spec is malformed, the module or name is missing, or
            the object is not callable.
    """
    module_name, name, args, kwargs = _split_spec(spec)
    expression = spec.partition(":")[2]
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(f"no module named {module_name!r} (run from the directory that contains it)") from None
        raise
    if name is None:
        name = next((found for found in ("app", "application") if hasattr(module, found)), None)
        if name is None:
            raise ValueError(
                f"module {module_name!r} has neither 'app' nor 'application'; name yours: {module_name}:my_app"
            )
    try:
        app = getattr(module, name)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {name!r}") from None
    if args is not None:
        if not callable(app):
            raise ValueError(f"{module_name}:{name} is not callable, so {expression} cannot be called")
        app = app(*args, **kwargs)
    if not callable(app):
        raise ValueError(f"{spec} is not a WSGI application (not callable)")
    return app


def _split_spec(spec: str) -> tuple[str, str | None, list[Any] | None, dict[str, Any]]:
    """The module, the name and the call's arguments of an app spec; imports nothing.

    The name is None for ``app`` or ``application``; the arguments are None when there is no call.

    Raises:
        ValueError: the spec is malformed.
    """
    module_name, sep, expression = spec.partition(":")
    if not module_name or (sep and not expression.strip()):
        raise ValueError(f"expected 'package.module' or 'package.module:app', got {spec!r}")
    name, args, kwargs = _parse_target(expression.strip(), spec) if sep else (None, None, {})
    return module_name, name, args, kwargs


def _parse_target(expression: str, spec: str) -> tuple[str, list[Any] | None, dict[str, Any]]:
    """``name`` or ``factory(literal, key=literal)``: the name, and the call's arguments (None: no call).

    Parsed with :mod:`ast`, never evaluated, so a spec runs no code of its own.
    """
    import ast

    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        node = None
    if isinstance(node, ast.Name):
        return node.id, None, {}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ValueError(f"expected a name or a call such as create_app() after ':', got {spec!r}")
    try:
        args = [ast.literal_eval(arg) for arg in node.args]
        kwargs = {str(kw.arg): ast.literal_eval(kw.value) for kw in node.keywords}
    except ValueError:
        raise ValueError(f"the arguments of {expression} must be literals (strings, numbers...)") from None
    return node.func.id, args, kwargs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m restkit", description="Serve a WSGI application with restkit's threaded server."
    )
    parser.add_argument(
        "app",
        help="the application: package.module:name, package.module (its app or application)"
        " or package.module:create_app()",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind, 0-65535 (default 8000)")
    parser.add_argument("--reload", action="store_true",
                        help="restart when a .py file under the current directory changes")
    parser.add_argument("--debug", action="store_true",
                        help="tracebacks in 500 bodies and checks of responses= (never in production)")
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error"),
        help="least severe log lines shown (default info)",
    )
    parser.add_argument(
        "--log-format", default="text", choices=LOG_FORMATS,
        help="text lines (default) or json: one JSON object a line, for log collectors",
    )
    parser.add_argument("--threads", type=int, default=8,
                        help="worker threads running the app (default 8; see the README on tuning)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds a client may stall mid-request (default 30)")
    parser.add_argument("--keepalive-timeout", type=float, default=5.0,
                        help="seconds an idle keep-alive connection stays open (default 5)")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds in-flight requests get to finish on Ctrl-C or SIGTERM (default 10)")
    parser.add_argument("--drain", type=float, default=0.0, metavar="SECONDS",
                        help="on SIGTERM, keep serving this long with readiness at 503 before closing the listener"
                             " (default 0)")
    parser.add_argument("--max-connections", type=int, default=4096,
                        help="most connections open at once (default 4096)")
    parser.add_argument("--certfile", default=None,
                        help="serve HTTPS with this PEM certificate (chain); needs --keyfile")
    parser.add_argument("--keyfile", default=None, help="the private key of --certfile (PEM)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log a line per request")
    parser.add_argument("--hsts", type=int, default=0, metavar="SECONDS",
                        help="with HTTPS: send Strict-Transport-Security: max-age=SECONDS on every answer"
                             " (default: not sent)")
    parser.add_argument("--redirect-http", type=int, default=None, metavar="PORT",
                        help="with HTTPS: also listen for plain HTTP on PORT and answer 308 to the same URL on HTTPS")
    parser.add_argument("--stream-request-body", action="store_true",
                        help="give the app large bodies as they arrive (a slow uploader then holds a worker thread)")
    parser.add_argument(
        "--workers", type=_worker_count, default=1, metavar="N|auto",
        help="processes serving the app (default 1: this process; 0 or auto: one per core)",
    )
    parser.add_argument("--worker-timeout", type=float, default=30.0,
                        help="seconds a worker may go unresponsive before it is killed and replaced (default 30)")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="replace a worker after about this many requests (default 0: never)")
    parser.add_argument("--max-requests-jitter", type=int, default=0,
                        help="up to this many more requests, drawn per worker, so they are not replaced together")
    parser.add_argument(
        "--trust-proxy", default=None, metavar="ADDR[,ADDR...]",
        help="believe X-Forwarded-For/-Proto/-Host from these proxy addresses or networks (only proxies you run)",
    )
    return parser


def _worker_count(text: str) -> int:
    """``--workers``: a count, with 0 or ``auto`` for one per core."""
    if text == "auto":
        return 0
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line; None if nothing (checked in the order of ``--help``)."""
    for check in (_serving_problem, _workers_problem, _waits_problem, _https_problem, _proxy_problem):
        problem = check(args)
        if problem is not None:
            return problem
    return None


def _serving_problem(args: argparse.Namespace) -> str | None:
    """The port, threads, connections and request timeout."""
    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535, not {args.port}"
    if args.threads < 1:
        return f"--threads must be at least 1, not {args.threads}"
    if args.max_connections < 1:
        return f"--max-connections must be at least 1, not {args.max_connections}"
    if not args.timeout > 0:
        return f"--timeout must be more than 0 seconds, not {args.timeout}"
    return None


def _workers_problem(args: argparse.Namespace) -> str | None:
    """The worker processes: how many, their timeout, their recycling, and --reload (one process)."""
    if args.workers < 0:
        return f"--workers must be 0 or more (0 or auto: one per core), not {args.workers}"
    if not args.worker_timeout > 0:
        return f"--worker-timeout must be more than 0 seconds, not {args.worker_timeout}"
    for flag in ("max_requests", "max_requests_jitter"):
        if getattr(args, flag) < 0:
            return f"--{flag.replace('_', '-')} must be 0 or more, not {getattr(args, flag)}"
    if args.reload and args.workers != 1:
        return "--reload runs one server process for development: drop --workers (or use --workers 1)"
    return None


def _waits_problem(args: argparse.Namespace) -> str | None:
    """The durations that may be 0: keep-alive, grace and drain."""
    for flag in ("keepalive_timeout", "grace", "drain"):
        value = getattr(args, flag)
        if not value >= 0:
            return f"--{flag.replace('_', '-')} must be 0 or more seconds, not {value}"
    return None


def _https_problem(args: argparse.Namespace) -> str | None:
    """The certificate and key (both or neither, existing files) and what needs them."""
    if (args.certfile is None) != (args.keyfile is None):
        given, missing = ("--certfile", "--keyfile") if args.keyfile is None else ("--keyfile", "--certfile")
        return f"{given} needs {missing} too: HTTPS takes a certificate and its key"
    for flag in ("certfile", "keyfile"):
        path = getattr(args, flag)
        if path is not None and not os.path.isfile(path):
            return f"--{flag} {path}: no such file"
    if args.hsts < 0:
        return f"--hsts must be 0 or more seconds, not {args.hsts}"
    if (args.hsts or args.redirect_http is not None) and args.certfile is None:
        return "--hsts and --redirect-http need HTTPS (--certfile and --keyfile)"
    if args.redirect_http is not None and not 0 <= args.redirect_http <= 65535:
        return f"--redirect-http must be a port between 0 and 65535, not {args.redirect_http}"
    return None


def _proxy_problem(args: argparse.Namespace) -> str | None:
    """The --trust-proxy list, parsed as :class:`restkit.proxy.ProxyHeaders` will parse it."""
    if args.trust_proxy is None:
        return None
    from .proxy import ProxyHeaders  # PERF(lazy-import): only with the option

    try:
        ProxyHeaders(args.trust_proxy)
    except ValueError as exc:
        return f"--trust-proxy: {exc}"
    return None


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword options of :func:`restkit.serve` from the command line."""
    return {
        "threads": args.threads,
        "timeout": args.timeout,
        "keepalive_timeout": args.keepalive_timeout,
        "grace": args.grace,
        "drain": args.drain,
        "max_connections": args.max_connections,
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        "access_log": not args.no_access_log,
        "hsts": args.hsts,
        "redirect_http": args.redirect_http,
        "stream_request_body": args.stream_request_body,
    }


def _uses_workers(args: argparse.Namespace) -> bool:
    return bool(args.workers != 1 or args.max_requests)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Show log lines of ``level`` and above on standard error: restkit's and the app's own.

    ``log_format="json"``: one JSON object a line (:class:`restkit.logformat.JsonFormatter`).
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter_for(log_format, "%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status (2: a mistake in the options or the spec)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:  # a spec is never a subcommand's name: see SUBCOMMANDS
        return SUBCOMMANDS[argv[0]](argv[1:])
    args = _parser().parse_args(argv)
    problem = _problem(args)
    if problem:
        print(f"restkit: {problem}", file=sys.stderr)
        return 2
    if args.reload and not os.environ.get(_CHILD):
        return _watch(argv)
    configure_logging(args.log_level, args.log_format)  # before the import: the app may log while it sets up
    if _uses_workers(args):
        return _serve_workers(args)
    try:
        app = _ready_app(args)
    except ValueError as exc:
        print(f"restkit: {exc}", file=sys.stderr)
        if isinstance(exc.__cause__, SyntaxError) and exc.__cause__.text:
            print(f"    {exc.__cause__.text.strip()}", file=sys.stderr)
        return 2
    from .server import serve  # PERF(lazy-import): not for --reload's watcher

    try:
        serve(app, args.host, args.port, **server_options(args))
    except OSError as exc:
        print(f"restkit: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _ready_app(args: argparse.Namespace) -> Any:
    """The app ``args.app`` names, with ``--debug`` and ``--trust-proxy`` applied.

    Raises:
        ValueError: the app cannot be loaded or used; the message is one line.
    """
    try:
        app = load_app(args.app)
    except SyntaxError as exc:
        raise ValueError(f"cannot import {args.app}: {exc.filename}:{exc.lineno}: {exc.msg}") from exc
    if args.debug:
        if hasattr(app, "debug"):
            app.debug = True
        else:
            print(f"restkit: --debug: {args.app} is not a restkit App; ignored", file=sys.stderr)
    if args.trust_proxy is not None:
        if not hasattr(app, "before_routing"):
            raise ValueError(f"--trust-proxy: {args.app} is not a restkit App")
        from .proxy import ProxyHeaders

        app.use(ProxyHeaders(args.trust_proxy))
    return app


def worker_plan(args: argparse.Namespace) -> WorkerPlan:
    """The :class:`restkit.server.supervisor.WorkerPlan` of the command line."""
    from .server.supervisor import WorkerPlan  # PERF(lazy-import): only with workers

    return WorkerPlan(args.workers, args.worker_timeout, args.max_requests, args.max_requests_jitter)


def _serve_workers(args: argparse.Namespace) -> int:
    """Supervise worker processes that each load the app after the fork (so SIGHUP loads new code)."""
    from .server.supervisor import BootError, supervise

    try:
        _split_spec(args.app)  # a malformed spec is a usage error here too; loading it is the workers' job
    except ValueError as exc:
        print(f"restkit: {exc}", file=sys.stderr)
        return 2

    def load() -> Any:
        try:
            return _ready_app(args)
        except ValueError as exc:
            raise BootError(str(exc)) from exc

    try:
        return supervise(load, (args.host, args.port), server_options(args), worker_plan(args))
    except OSError as exc:
        print(f"restkit: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


# --- the watcher of --reload --------------------------------------------------------


def _sources(root: str) -> Iterator[str]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def _snapshot(root: str) -> dict[str, float]:
    """Modification time of every ``.py`` file under ``root``."""
    stamps = {}
    for path in _sources(root):
        try:
            stamps[path] = os.stat(path).st_mtime
        except OSError:  # removed meanwhile
            continue
    return stamps


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Stop the server: a graceful stop, then a second signal (which cuts it short), then kill."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGINT, 3.0)):
        if child.poll() is not None:
            return
        child.send_signal(sig)
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
    child.kill()
    child.wait()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _watch(argv: list[str]) -> int:
    """Run ``python -m restkit argv`` in a child; restart it when a source file changes."""
    root = os.getcwd()
    command = [sys.executable, "-m", "restkit", *argv]
    environment = {**os.environ, _CHILD: "1"}
    # Ctrl-C, or a process manager's stop, ends the child too (and SIGINT is
    # set even when a shell started this job with it ignored).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    print(f"restkit: watching the .py files under {root} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    child: subprocess.Popen[bytes] | None = None
    try:
        while True:
            stamps = _snapshot(root)
            child = subprocess.Popen(command, env=environment)
            reported = False
            while True:
                time.sleep(_POLL_SECONDS)
                if child.poll() is not None and not reported:
                    print(f"restkit: the server exited (status {child.returncode});"
                          " fix the code, it restarts on the next change", file=sys.stderr, flush=True)
                    reported = True
                now = _snapshot(root)
                if now != stamps:
                    changed = sorted(path for path in now.keys() | stamps.keys() if now.get(path) != stamps.get(path))
                    print(f"restkit: {os.path.relpath(changed[0], root)} changed; restarting", file=sys.stderr,
                          flush=True)
                    _stop(child)
                    break
    except KeyboardInterrupt:
        if child is not None:
            try:
                child.wait(1.0)  # Ctrl-C in a terminal reached the child too: let it stop on its own
            except subprocess.TimeoutExpired:
                _stop(child)
        return 0


# --- subcommands: routes, openapi, check ----------------------------------------------
#
# They import the app as serving would, but never serve it nor run its startup
# hooks.  Exit status: 0, 1 when the app cannot be loaded or inspected (one line
# on standard error), 2 for a mistake in the options (argparse's usage error).


def _command_parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m restkit {name}", description=description)
    parser.add_argument("app",
                        help="the restkit App: package.module:name, package.module or package.module:create_app()")
    return parser


def load_restkit_app(spec: str) -> Any:
    """The App that ``spec`` names, or None after saying on standard error why there is none."""
    try:
        app = load_app(spec)
    except SyntaxError as exc:
        print(f"restkit: cannot import {spec}: {exc.filename}:{exc.lineno}: {exc.msg}", file=sys.stderr)
        return None
    except Exception as exc:  # whatever the app module raises while it sets up is the answer
        kind = "" if type(exc) is ValueError else f"{type(exc).__name__}: "  # load_app's own: already a sentence
        problem = " ".join(str(exc).split())
        print(f"restkit: cannot load {spec}: {kind}{problem}", file=sys.stderr)
        return None
    if not hasattr(app, "router") or not hasattr(app, "openapi"):
        print(f"restkit: {spec} is not a restkit App", file=sys.stderr)
        return None
    return app


def _serves_openapi(app: Any) -> bool:
    """Whether ``app`` answers ``GET /openapi.json`` (``App(openapi=True)``)."""
    return any(route.name == "restkit.openapi" for route in app.router.routes)


def _routes(argv: list[str]) -> int:
    """``python -m restkit routes SPEC``: one row per route, in the order the routes were added."""
    parser = _command_parser("routes", "List the routes of a restkit App: methods, path, name, handler, features.")
    args = parser.parse_args(argv)
    app = load_restkit_app(args.app)
    if app is None:
        return 1
    from .app import describe_handler  # PERF(lazy-import): not for serving
    from .feature import features_of

    rows = [("METHODS", "PATH", "NAME", "HANDLER", "FEATURES")]
    try:
        for route in app.router.routes:
            features = ", ".join(type(feature).__name__ for feature in features_of(app, route)
                                 if feature.applies_to(route)) or "-"
            handler = describe_handler(route.handler)
            rows.append((",".join(sorted(route.methods)), route.path, route.name, handler, features))
    except Exception as exc:  # a route option that is not a feature (TypeError from features_of)
        print(f"restkit: {args.app}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _openapi(argv: list[str]) -> int:
    """``python -m restkit openapi SPEC [-o FILE]``: the bytes ``GET /openapi.json`` answers."""
    parser = _command_parser("openapi", "Write the OpenAPI document that the app serves at /openapi.json.")
    parser.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (default: standard output)")
    parser.add_argument("--indent", type=int, default=None, metavar="N",
                        help="indent by N spaces, for people and diffs (default: compact, the served bytes)")
    args = parser.parse_args(argv)
    app = load_restkit_app(args.app)
    if app is None:
        return 1
    if not _serves_openapi(app):
        print(f"restkit: {args.app} serves no OpenAPI document: create it with App(openapi=True)", file=sys.stderr)
        return 1
    import json

    from .response import json_dumps

    try:
        document = app.openapi()  # what the /openapi.json route answers, without a request
    except Exception as exc:
        print(f"restkit: {args.app}: the OpenAPI document cannot be built: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    data = json_dumps(document) if args.indent is None else json.dumps(document, indent=args.indent).encode() + b"\n"
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        with open(args.output, "wb") as file:
            file.write(data)
    except OSError as exc:
        print(f"restkit: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _check(argv: list[str]) -> int:
    """``python -m restkit check SPEC``: import the app and set up what requests would set up later."""
    parser = _command_parser(
        "check",
        "Import a restkit App and check its setup (its routes, as they are added; its OpenAPI document) without "
        "serving it or running its startup hooks; print 'ok: N routes'.",
    )
    args = parser.parse_args(argv)
    app = load_restkit_app(args.app)
    if app is None:
        return 1
    routes = app.router.routes
    try:
        # Routes and their options were checked as they were added, at import.  The API
        # document is built on request: a model it cannot describe would be a 500 there.
        if _serves_openapi(app):
            app.openapi()
    except Exception as exc:
        print(f"restkit: {args.app}: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"ok: {len(routes)} route{'s' if len(routes) != 1 else ''}")
    return 0


def _worker(argv: list[str]) -> int:
    """``python -m restkit worker SPEC``: the app's job runners alone (:mod:`restkit.jobs.worker`)."""
    from .jobs.worker import main as worker_main  # PERF(lazy-import): only for this subcommand

    return worker_main(argv)


#: ``python -m restkit NAME ...`` runs these instead of serving; a spec that is
#: exactly one of these names must be written with its app (``routes:app``).
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {"routes": _routes, "openapi": _openapi, "check": _check,
                                                      "worker": _worker}
