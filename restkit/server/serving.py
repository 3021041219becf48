"""Running a server as a program: ``serve()``, its signals, and the plain-HTTP redirect."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..logformat import formatter_for
from .loop import Server, WSGIApp, access_logger, error_logger
from .sockets import raise_descriptor_limit

__all__ = ["make_server", "redirect_to_https", "run_startup_hooks", "serve"]


def make_server(host: str, port: int, app: WSGIApp, **options: Any) -> Server:
    """Create (and bind) a :class:`Server`; call ``serve_forever()`` to run it."""
    return Server((host, port), app, **options)


def serve(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    redirect_http: int | None = None,
    log_format: str = "text",
    workers: int = 1,
    worker_timeout: float = 30.0,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
    **options: Any,
) -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM, then stop gracefully.

    Binds 127.0.0.1 unless told otherwise (``host="0.0.0.0"`` or ``"::"``
    serves the network).  Options are those of :class:`Server`.  The first
    signal starts a graceful stop (in-flight requests get ``grace`` seconds);
    a second one stops at once.  Access-log lines go to standard error
    unless logging is already configured.  ``log_format="json"`` writes
    them, and error records, as one JSON object a line
    (:class:`restkit.logformat.JsonFormatter`); with logging already
    configured, give your own handler that formatter instead.

    A restkit App's startup hooks run first (``app.startup()``), before the
    port is bound; if one fails, a line ``restkit: startup failed: ...``
    goes to standard error and the process exits with status 1.

    ``workers`` other than 1 (0: one per core), or ``max_requests``, runs
    the app in that many pre-forked processes (:mod:`restkit.server.supervisor`);
    the app object imported before the fork is shared, and its startup hooks
    run in each worker.

    ``redirect_http=PORT`` (with TLS) also listens for plain HTTP on
    ``PORT`` and answers every request there with ``308`` to the same URL
    on HTTPS.
    """
    setup_logging(log_format)
    if workers != 1 or max_requests:
        from .supervisor import WorkerPlan, supervise  # PERF(lazy-import): only with workers

        plan = WorkerPlan(workers, worker_timeout, max_requests, max_requests_jitter)
        if redirect_http is not None:
            options["redirect_http"] = redirect_http
        if supervise(lambda: app, (host, port), options, plan) != 0:
            raise SystemExit(1)
        return
    run_startup_hooks(app)
    raise_descriptor_limit()
    server = make_server(host, port, app, **options)
    servers = [server]
    if redirect_http is not None:
        if server.ssl_context is None:
            raise ValueError("redirect_http needs TLS (certfile/keyfile or ssl_context)")
        plain = {key: options[key] for key in ("threads", "timeout", "keepalive_timeout", "access_log", "grace")
                 if key in options}
        servers.append(make_server(host, redirect_http, redirect_to_https(int(server.server_address[1])), **plain))
    restore = _stop_on_signals(servers)
    for each in servers:
        print(f"restkit: serving on {each.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    helpers = [
        threading.Thread(target=each.serve_forever, name="restkit-redirect", daemon=True) for each in servers[1:]
    ]
    for thread in helpers:
        thread.start()
    try:
        server.serve_forever()
    finally:
        for each in servers:
            each.begin_shutdown()
        for thread in helpers:
            thread.join(timeout=max(server.grace, 1.0))
        for each in servers:
            each.server_close()
        restore()
    print("restkit: stopped", file=sys.stderr, flush=True)


def setup_logging(log_format: str = "text") -> None:
    """Access and error lines to standard error, unless logging is already configured.

    Args:
        log_format: ``"text"`` (the message alone) or ``"json"`` (one JSON object a line).

    Raises:
        ValueError: another ``log_format``.
    """
    formatter = formatter_for(log_format, "%(message)s")
    if not logging.getLogger().handlers and not access_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        for log in (access_logger, error_logger, logging.getLogger("restkit")):
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False


def run_startup_hooks(app: WSGIApp) -> None:
    """Run a restkit App's startup hooks; a failure ends the process with one line (exit status 1)."""
    startup = getattr(app, "startup", None)
    if callable(startup) and hasattr(app, "startup_hooks"):
        try:
            startup()
        except Exception as exc:
            print(f"restkit: startup failed: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None


def redirect_to_https(https_port: int) -> WSGIApp:
    """A WSGI app that answers every request with 308 to the same URL on HTTPS at ``https_port``.

    308 (not 301) keeps the method and body of a POST (RFC 9110 section 15.4.9).
    """
    from urllib.parse import quote

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST") or environ["SERVER_NAME"]
        if host.startswith("["):
            host = host[: host.index("]") + 1]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        port = "" if https_port == 443 else f":{https_port}"
        path = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/%:@!$&'()*+,;=-._~")
        query = environ.get("QUERY_STRING", "")
        location = f"https://{host}{port}{path}" + (f"?{query}" if query else "")
        body = b'{"error": "this site is served over HTTPS"}'
        start_response("308 Permanent Redirect", [
            ("Location", location), ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
        ])
        return [body]

    return app


def _stop_on_signals(servers: list[Server]) -> Callable[[], None]:
    """SIGINT and SIGTERM stop the servers gracefully; a second one stops them at once.

    A shell starts background jobs with SIGINT ignored, and SIGTERM (what
    process managers send) would otherwise end the process without cleanup.
    Only the main thread may install handlers; elsewhere this does nothing.
    Returns a function that puts the previous handlers back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    main = servers[0]

    def on_signal(signum: int, frame: Any) -> None:
        if main.stopping.is_set():
            for server in servers:
                server.stop_now()
            return
        # os.write, not print: a signal that lands while the main thread is
        # inside a print() would make a second print() raise (reentrant call).
        draining = f"draining for {main.drain:g} s, then " if main.drain else ""
        message = f"restkit: stopping ({draining}up to {main.grace:g} s for requests in flight; again to stop now)\n"
        try:
            os.write(sys.stderr.fileno(), message.encode())
        except (OSError, ValueError):
            pass
        for server in servers:
            server.begin_shutdown()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
