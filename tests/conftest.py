"""Shared fixtures: a validated WebTest client; ``live_server`` comes from restkit's pytest plugin.

Every in-process WSGI call goes through :func:`wsgiref.validate.validator`,
so a PEP 3333 violation fails the test that caused it.

Tests that need a part this machine lacks (Xvfb, Chromium, gunicorn...)
skip with a reason.  With ``RESTKIT_REQUIRE_ALL=1`` (set by ``.ci/run``) any
skip fails the run: CI installs every part and must run every test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
import webtest

from restkit import pytest_plugin
from restkit.pytest_plugin import LiveServer as LiveServer  # re-exported: tests import it from here

ROOT = Path(__file__).resolve().parent.parent


def make_client(app: Callable[..., Any]) -> webtest.TestApp:
    """A WebTest client for ``app``, with every call checked by wsgiref.validate."""
    return webtest.TestApp(validator(app))


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout: float = 15) -> int:
    """Stop a server started by a test: ``sig`` first (Ctrl-C), then kill; return its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
    return process.returncode


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_source_tree(target: Path) -> Path:
    """Copy the repository to ``target`` for pip to build, without its caches, databases or git history."""
    ignore = shutil.ignore_patterns(".venv", ".git", "*.db*", "__pycache__", ".mypy_cache", ".pytest_cache", "build",
                                    "*.egg-info")
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def pytest_configure(config: pytest.Config) -> None:
    """Register restkit's pytest plugin (``live_server``), unless its entry point already did.

    These tests run from the source tree, where restkit is not installed, so
    the ``pytest11`` entry point may not have loaded the plugin.  Where it
    did (restkit installed), registering the module again would be a
    ValueError: pytest keys plugins by name, and the entry point's name is
    ``restkit``, so the check is on the module object itself.
    """
    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "restkit.pytest_plugin")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("RESTKIT_REQUIRE_ALL") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(f"RESTKIT_REQUIRE_ALL=1: {skipped} test(s) skipped; every test must run here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def wsgi_call(
    app: Callable[..., Any], method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
    **environ: Any,
) -> tuple[int, dict[str, str], bytes]:
    """One request straight through ``wsgiref.validate``: status, headers (as sent) and raw body.

    Unlike WebTest it leaves the body as sent (WebTest un-gzips it).  Repeated
    headers are joined with ", ".  ``QUERY_STRING`` comes from ``path``.
    """
    from io import BytesIO
    from wsgiref.util import setup_testing_defaults

    path, _, query = path.partition("?")
    env: dict[str, Any] = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
                           "REMOTE_ADDR": "127.0.0.1", "wsgi.input": BytesIO(body)}
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    env.update(environ)
    setup_testing_defaults(env)
    got: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, response_headers
        return lambda data: None

    result = validator(app)(env, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    joined: dict[str, str] = {}
    for name, value in got["headers"]:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return int(got["status"][:3]), joined, data
