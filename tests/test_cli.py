"""``python -m restkit module:app``: serving, bad specs, Ctrl-C."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from restkit.cli import load_app
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 15.0

APP_MODULE = textwrap.dedent(
    """
    import logging

    from restkit import App

    if __import__("os").environ.get("LOG_AT_IMPORT"):
        logging.getLogger("tests_app_module").info("app module imported")
    app = App()

    @app.get("/hello/<name>")
    def hello(request, name):
        logging.getLogger("tests_app_module").info("saying hello to %s", name)
        return {"hello": name}

    @app.get("/fail")
    def fail(request):
        raise RuntimeError("boom")

    @app.get("/whoami")
    def whoami(request):
        return {"addr": request.remote_addr, "base_url": request.base_url}

    not_an_app = 42

    def create_app(greeting="hi"):
        made = App()

        @made.get("/hello/<name>")
        def hello(request, name):
            return {greeting: name}

        return made
    """
)

APPLICATION_MODULE = textwrap.dedent(
    """
    from restkit import App

    application = App()

    @application.get("/")
    def index(request):
        return {"found": "application"}
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "tests_app_module.py").write_text(APP_MODULE)
    (tmp_path / "application_module.py").write_text(APPLICATION_MODULE)
    (tmp_path / "no_app_module.py").write_text("x = 1\n")
    (tmp_path / "broken_module.py").write_text("import nonexistent_dependency_xyz\napp = None\n")
    return tmp_path


def env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = str(ROOT)
    environ.pop("PYTHONWARNINGS", None)
    return environ


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "restkit", *args], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=TIMEOUT)


def wait_until_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


def request(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serves_and_stops_cleanly_on_ctrl_c(app_dir: Path, signum: int) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restkit", "tests_app_module:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=app_dir, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_listening(port, proc)
        assert request(port, "/hello/zoe") == (200, {"hello": "zoe"})
        assert request(port, "/nothing") == (404, {"error": "no resource at /nothing"})
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert f"serving on http://127.0.0.1:{port}" in stderr
    assert '"GET /hello/zoe HTTP/1.1" 200' in stderr  # the access log
    assert "stopped" in stderr


def test_no_access_log_option(app_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restkit", "tests_app_module:app", "--port", str(port), "--no-access-log",
         "--threads", "4"],
        cwd=app_dir, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_listening(port, proc)
        assert request(port, "/hello/x")[0] == 200
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "GET /hello/x" not in stderr


BAD_SPECS = [
    ("no-app-in-module", "no_app_module", "has neither 'app' nor 'application'; name yours: no_app_module:my_app"),
    ("empty-attr", "tests_app_module:", "expected 'package.module' or 'package.module:app'"),
    ("empty-module", ":app", "expected 'package.module' or 'package.module:app'"),
    ("not-a-name", "tests_app_module:app[0]", "expected a name or a call such as create_app()"),
    ("factory-not-literal", "tests_app_module:create_app(x)", "must be literals"),
    ("missing-factory", "tests_app_module:make_app()", "has no attribute 'make_app'"),
    ("missing-module", "no_such_module_here:app", "no module named 'no_such_module_here'"),
    ("missing-attribute", "tests_app_module:nope", "has no attribute 'nope'"),
    ("not-callable", "tests_app_module:not_an_app", "is not a WSGI application"),
]


@pytest.mark.parametrize("spec, message", [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_exits_2_with_one_line(app_dir: Path, spec: str, message: str) -> None:
    result = run([spec, "--port", str(free_port())], app_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("restkit: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_argument_is_usage_error(app_dir: Path) -> None:
    result = run([], app_dir)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_port_in_use_exits_1(app_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(["tests_app_module:app", "--port", str(port)], app_dir)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_help(app_dir: Path) -> None:
    result = run(["--help"], app_dir)
    assert result.returncode == 0
    assert "package.module:name" in result.stdout


def test_load_app_unit(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(app_dir)
    monkeypatch.syspath_prepend(str(app_dir))
    app = load_app("tests_app_module:app")
    assert callable(app)
    assert load_app("tests_app_module") is app
    assert load_app("application_module") is sys.modules["application_module"].application
    made = load_app('tests_app_module:create_app(greeting="hello")')
    assert made is not app and made.url_for("hello", name="x") == "/hello/x"
    with pytest.raises(ValueError):
        load_app("no_app_module")
    # an import error inside the module is not hidden behind "no module named"
    with pytest.raises(ModuleNotFoundError, match="nonexistent_dependency_xyz"):
        load_app("broken_module:app")
    for name in ("tests_app_module", "application_module", "no_app_module"):
        sys.modules.pop(name, None)


def test_ctrl_c_with_an_open_keep_alive_connection(app_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restkit", "tests_app_module:app", "--port", str(port)],
        cwd=app_dir, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        wait_until_listening(port, proc)
        conn.request("GET", "/hello/a")
        assert conn.getresponse().read()  # the connection stays open (keep-alive) in a worker thread
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def serve_and_get(app_dir: Path, args: list[str], paths: list[str],
                  headers: dict[str, str] | None = None) -> tuple[list[tuple[int, Any]], str]:
    """Start ``python -m restkit *args``, GET each path (with ``headers``), stop it; the answers and its stderr."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "restkit", *args, "--port", str(port)],
                            cwd=app_dir, env={**env(), "LOG_AT_IMPORT": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(port, proc)
        answers = [request(port, path, headers) for path in paths]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    return answers, stderr


@pytest.mark.parametrize(
    "spec, answer",
    [
        ("tests_app_module", (200, {"hello": "a"})),
        ("tests_app_module:create_app()", (200, {"hi": "a"})),
        ("tests_app_module:create_app('hey')", (200, {"hey": "a"})),
    ],
    ids=["module-alone-finds-app", "factory", "factory-with-argument"],
)
def test_app_found_or_made(app_dir: Path, spec: str, answer: tuple[int, Any]) -> None:
    answers, _ = serve_and_get(app_dir, [spec], ["/hello/a"])
    assert answers == [answer]


def test_module_alone_finds_application(app_dir: Path) -> None:
    assert serve_and_get(app_dir, ["application_module"], ["/"])[0] == [(200, {"found": "application"})]


def test_the_apps_own_logging_shows(app_dir: Path) -> None:
    answers, stderr = serve_and_get(app_dir, ["tests_app_module"], ["/hello/zoe", "/fail"])
    assert answers[1] == (500, {"error": "internal server error"})
    assert "app module imported" in stderr  # logged at import, before the server started
    assert "saying hello to zoe" in stderr
    # the 500 names method, path and handler
    assert "500 on GET /fail (handler tests_app_module.fail): RuntimeError: boom" in stderr


def test_log_level_warning_hides_info(app_dir: Path) -> None:
    answers, stderr = serve_and_get(app_dir, ["tests_app_module", "--log-level", "warning"], ["/hello/zoe", "/fail"])
    assert "saying hello" not in stderr and "GET /hello/zoe HTTP/1.1" not in stderr
    assert "500 on GET /fail" in stderr


@pytest.mark.parametrize("args, client", [([], "127.0.0.1"), (["--trust-proxy", "10.0.0.0/8,127.0.0.1"], "198.51.100.7")],
                         ids=["headers-ignored", "trust-proxy"])
def test_trust_proxy(app_dir: Path, args: list[str], client: str) -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    (status, body), = serve_and_get(app_dir, ["tests_app_module", *args], ["/whoami"], headers)[0]
    assert status == 200 and body["addr"] == client
    assert (body["base_url"] == "https://api.example") == bool(args)


def test_trust_proxy_needs_a_restkit_app(app_dir: Path) -> None:
    (app_dir / "raw_wsgi.py").write_text("def app(environ, start_response):\n    return []\n")
    result = run(["raw_wsgi:app", "--trust-proxy", "127.0.0.1"], app_dir)
    assert result.returncode == 2 and result.stderr.strip() == "restkit: --trust-proxy: raw_wsgi:app is not a restkit App"


def test_debug_sends_tracebacks(app_dir: Path) -> None:
    (status, body), = serve_and_get(app_dir, ["tests_app_module", "--debug"], ["/fail"])[0]
    assert status == 500 and body["detail"] == "RuntimeError: boom"
    assert "Traceback" in body["traceback"][0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "restkit: --port must be between 0 and 65535, not 99999"),
        (["--port", "-1"], "restkit: --port must be between 0 and 65535, not -1"),
        (["--threads", "0"], "restkit: --threads must be at least 1, not 0"),
        (["--max-connections", "0"], "restkit: --max-connections must be at least 1, not 0"),
        (["--grace", "-1"], "restkit: --grace must be 0 or more seconds, not -1.0"),
        (["--timeout", "0"], "restkit: --timeout must be more than 0 seconds, not 0.0"),
        (["--keepalive-timeout", "nan"], "restkit: --keepalive-timeout must be 0 or more seconds, not nan"),
        (["--certfile", "cert.pem"], "restkit: --certfile needs --keyfile too: HTTPS takes a certificate and its key"),
        (["--keyfile", "key.pem"], "restkit: --keyfile needs --certfile too: HTTPS takes a certificate and its key"),
        (["--certfile", "nope.pem", "--keyfile", "nope.key"], "restkit: --certfile nope.pem: no such file"),
        (["--trust-proxy", "10.0.0.1/8"],
         "restkit: --trust-proxy: trusted proxy '10.0.0.1/8' is not an address or a network: 10.0.0.1/8 has host bits set"),
        (["--trust-proxy", ","], "restkit: --trust-proxy: no trusted proxy given: name the addresses of the proxies you run"),
        (["--hsts", "-5"], "restkit: --hsts must be 0 or more seconds, not -5"),
        (["--hsts", "600"], "restkit: --hsts and --redirect-http need HTTPS (--certfile and --keyfile)"),
        (["--redirect-http", "8080"], "restkit: --hsts and --redirect-http need HTTPS (--certfile and --keyfile)"),
    ],
    ids=["port-too-large", "port-negative", "no-threads", "no-connections", "negative-grace", "zero-timeout", "nan-keepalive",
         "certfile-alone", "keyfile-alone", "missing-certfile", "trust-proxy-typo", "trust-proxy-empty", "negative-hsts",
         "hsts-without-tls", "redirect-without-tls"],
)
def test_bad_option_is_one_line(app_dir: Path, args: list[str], message: str) -> None:
    result = run(["tests_app_module:app", *args], app_dir)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_server_flags_are_passed_to_serve() -> None:
    from restkit.cli import _parser, server_options

    defaults = server_options(_parser().parse_args(["m:app"]))
    assert defaults == {
        "threads": 8, "timeout": 30.0, "keepalive_timeout": 5.0, "grace": 10.0, "drain": 0.0, "max_connections": 4096,
        "certfile": None, "keyfile": None, "access_log": True, "hsts": 0, "redirect_http": None,
        "stream_request_body": False,
    }
    given = server_options(_parser().parse_args([
        "m:app", "--threads", "8", "--timeout", "3", "--keepalive-timeout", "1.5", "--grace", "2.5",
        "--drain", "1", "--max-connections", "100", "--certfile", "c.pem", "--keyfile", "k.pem", "--no-access-log",
        "--hsts", "31536000", "--redirect-http", "8080", "--stream-request-body",
    ]))
    assert given == {
        "threads": 8, "timeout": 3.0, "keepalive_timeout": 1.5, "grace": 2.5, "drain": 1.0, "max_connections": 100,
        "certfile": "c.pem", "keyfile": "k.pem", "access_log": False, "hsts": 31536000, "redirect_http": 8080,
        "stream_request_body": True,
    }


def test_log_format_is_text_json_or_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from restkit.cli import _parser

    assert _parser().parse_args(["m:app"]).log_format == "text"
    assert _parser().parse_args(["m:app", "--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["m:app", "--log-format", "xml"])
    assert exited.value.code == 2
    assert "--log-format: invalid choice: 'xml'" in capsys.readouterr().err


# --- --reload ---------------------------------------------------------------------------

RELOAD_APP = textwrap.dedent(
    """
    from restkit import App

    app = App()

    @app.get("/version")
    def version(request):
        return {"version": VERSION}

    VERSION = 1
    """
)


def write_source(path: Path, text: str) -> None:
    """Write ``text`` and move the modification time on, so a poll sees it whatever the clock's resolution."""
    before = path.stat().st_mtime if path.exists() else time.time()
    path.write_text(text)
    os.utime(path, (before + 2, before + 2))


def wait_for_answer(port: int, proc: subprocess.Popen[str], want: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the watcher exited"
        try:
            last = request(port, "/version")
            if last == want:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"never answered {want}; last {last}")


def test_reload_restarts_on_change_and_survives_a_syntax_error(tmp_path: Path) -> None:
    source = tmp_path / "reload_app.py"
    source.write_text(RELOAD_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restkit", "reload_app:app", "--reload", "--port", str(port), "--no-access-log"],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_answer(port, proc, (200, {"version": 1}))
        write_source(source, RELOAD_APP.replace("VERSION = 1", "VERSION = 2"))
        wait_for_answer(port, proc, (200, {"version": 2}))
        write_source(source, RELOAD_APP.replace("VERSION = 1", "VERSION = = 3"))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # the old server stops; the new one cannot start
            try:
                request(port, "/version")
            except OSError:
                break
            time.sleep(0.1)
        time.sleep(1)
        assert proc.poll() is None, "a syntax error ended the watcher"
        write_source(source, RELOAD_APP.replace("VERSION = 1", "VERSION = 4"))
        wait_for_answer(port, proc, (200, {"version": 4}))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "reload_app.py changed; restarting" in stderr
    assert f"restkit: cannot import reload_app:app: {source}:10: invalid syntax" in stderr
    assert "VERSION = = 3" in stderr
    assert "the server exited (status 2)" in stderr
    assert "Traceback" not in stderr
