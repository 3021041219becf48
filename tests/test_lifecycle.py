"""Startup hooks: App.on_startup, App.startup(), the lazy run on the first request, serve() refusing to start."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import restkit
from restkit import App, StartupError
from tests.conftest import free_port, wsgi_call

ROOT = Path(__file__).resolve().parents[1]


def make_app(calls: list[str]) -> App:
    app = App()

    @app.on_startup
    def open_pool() -> None:
        calls.append("open_pool")

    @app.on_startup
    def warm_cache() -> None:
        calls.append("warm_cache")

    @app.get("/calls")
    def show(request: restkit.Request) -> list[str]:
        return list(calls)

    return app


def test_hooks_run_in_order_once() -> None:
    calls: list[str] = []
    app = make_app(calls)
    assert calls == []  # nothing runs at import
    app.startup()
    app.startup()
    assert calls == ["open_pool", "warm_cache"]


def test_startup_error_is_exported() -> None:
    assert "StartupError" in restkit.__all__ and restkit.StartupError is StartupError


def test_startup_runs_once_across_threads() -> None:
    calls: list[str] = []
    app = App()
    entered = threading.Event()
    release = threading.Event()

    @app.on_startup
    def slow() -> None:
        calls.append("slow")
        entered.set()
        release.wait(5)

    threads = [threading.Thread(target=app.startup) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert entered.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert calls == ["slow"]


def test_a_failing_hook_names_itself_and_its_error_in_one_line() -> None:
    calls: list[str] = []
    app = make_app(calls)

    @app.on_startup
    def connect_db() -> None:
        raise ConnectionError("db.internal:5432 refused\nthe connection")

    with pytest.raises(StartupError) as caught:
        app.startup()
    message = str(caught.value)
    assert message == (
        "startup hook tests.test_lifecycle.test_a_failing_hook_names_itself_and_its_error_in_one_line.<locals>.connect_db "
        "raised ConnectionError: db.internal:5432 refused the connection"
    )
    assert isinstance(caught.value.__cause__, ConnectionError)
    # The hooks that had returned are not run again; the failed one is retried.
    with pytest.raises(StartupError):
        app.startup()
    assert calls == ["open_pool", "warm_cache"]


def test_a_retry_goes_on_after_the_hook_that_failed() -> None:
    calls: list[str] = []
    app = App()
    attempts = iter([ConnectionError("not yet"), None])

    @app.on_startup
    def flaky() -> None:
        error = next(attempts)
        if error is not None:
            raise error
        calls.append("flaky")

    @app.on_startup
    def after() -> None:
        calls.append("after")

    with pytest.raises(StartupError, match="not yet"):
        app.startup()
    app.startup()
    assert calls == ["flaky", "after"]


def test_adding_a_hook_after_startup_is_refused() -> None:
    app = App()
    app.startup()
    with pytest.raises(RuntimeError, match="added after the app started"):
        app.on_startup(lambda: None)


def test_the_first_plain_wsgi_request_runs_the_hooks() -> None:
    calls: list[str] = []
    app = make_app(calls)
    status, _, body = wsgi_call(app, "GET", "/calls")  # as gunicorn or waitress would call it
    assert status == 200 and json.loads(body) == ["open_pool", "warm_cache"]
    wsgi_call(app, "GET", "/calls")
    assert calls == ["open_pool", "warm_cache"]


def test_a_lazy_startup_failure_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.on_startup
    def broken() -> None:
        raise RuntimeError("no config")

    @app.get("/")
    def index(request: restkit.Request) -> dict[str, str]:
        return {"served": "yes"}

    with caplog.at_level(logging.ERROR, logger="restkit"):
        status, _, body = wsgi_call(app, "GET", "/")
    assert status == 500 and json.loads(body) == {"error": "internal server error"}
    assert "StartupError: startup hook" in caplog.text and "RuntimeError: no config" in caplog.text


FAILING_APP = textwrap.dedent(
    """
    from restkit import App

    app = App()

    @app.on_startup
    def load_models():
        raise FileNotFoundError("models/zoo.bin is missing")

    @app.get("/")
    def index(request):
        return {}
    """
)


def test_serve_exits_1_with_one_line_when_startup_fails(tmp_path: Path) -> None:
    (tmp_path / "failing_startup.py").write_text(FAILING_APP)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "restkit", "failing_startup:app", "--port", str(free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "restkit: startup failed: startup hook failing_startup.load_models raised FileNotFoundError: models/zoo.bin is missing"
    ]


def test_serve_runs_the_hooks_before_it_listens(tmp_path: Path) -> None:
    import signal

    from tests.conftest import stop_process

    (tmp_path / "starting_app.py").write_text(textwrap.dedent(
        """
        import sys
        from restkit import App

        app = App()

        @app.on_startup
        def announce():
            print("startup hook ran", file=sys.stderr, flush=True)
        """
    ))
    proc = subprocess.Popen([sys.executable, "-m", "restkit", "starting_app:app", "--port", str(free_port())],
                            cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first, second = proc.stderr.readline(), proc.stderr.readline()
        # An answer means the main thread is in its loop, done printing: a SIGINT during the
        # print above would meet the handler's own print ("reentrant call" on stderr).
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(second.split()[3] + "/nothing", timeout=10)
    finally:
        assert stop_process(proc, signal.SIGINT) == 0
    assert first == "startup hook ran\n" and second.startswith("restkit: serving on ")
