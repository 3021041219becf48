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
    from restkit import App

    app = App()

    @app.get("/hello/<name>")
    def hello(request, name):
        return {"hello": name}

    not_an_app = 42
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "tests_app_module.py").write_text(APP_MODULE)
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


def request(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
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
    ("no-colon", "tests_app_module", "expected 'package.module:app'"),
    ("empty-attr", "tests_app_module:", "expected 'package.module:app'"),
    ("empty-module", ":app", "expected 'package.module:app'"),
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
    with pytest.raises(ValueError):
        load_app("tests_app_module")
    # an import error inside the module is not hidden behind "no module named"
    with pytest.raises(ModuleNotFoundError, match="nonexistent_dependency_xyz"):
        load_app("broken_module:app")
    sys.modules.pop("tests_app_module", None)


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
