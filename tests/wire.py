"""Raw-socket helpers for the hostile-client, shutdown, TLS and IPv6 server tests.

Every socket made here has a timeout, so a server that hangs fails a test
instead of hanging it.  Responses are parsed with h11 where completeness
matters (a chunked stream cut before its final 0-chunk is *not* complete).
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11

TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parents[1]


def connect(port: int, host: str = "127.0.0.1", timeout: float = TIMEOUT) -> socket.socket:
    """A TCP connection to ``host:port`` with ``timeout`` on every operation."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_close(sock: Any) -> bytes:
    """Everything received until the peer closes; a reset counts as a close."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
            return data
        if not chunk:
            return data
        data += chunk


@dataclass
class Answer:
    """One response as h11 saw it: ``complete`` is False when the body was cut short."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool
    error: str = ""
    chunked: bool = False


def parse_response(raw: bytes, method: str = "GET") -> Answer:
    """Parse the one response in ``raw`` (all bytes up to the close) with h11."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")  # the peer closed after ``raw``
    status, headers, body, complete, error = 0, {}, b"", False, ""
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                complete = True
                break
            elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                break
    except h11.RemoteProtocolError as exc:
        error = str(exc)
    chunked = headers.get("transfer-encoding", "").lower() == "chunked"
    return Answer(status, headers, body, complete, error, chunked)


def read_response(sock: Any, method: str = "GET") -> Answer:
    """Read exactly one response from a keep-alive connection (no wait for a close)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
    conn.send(h11.EndOfMessage())
    status, headers, body = 0, {}, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(sock.recv(65536))
            except (ConnectionResetError, ssl.SSLEOFError):
                conn.receive_data(b"")
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return Answer(status, headers, body, True)
        elif isinstance(event, h11.ConnectionClosed):
            raise AssertionError(f"connection closed before a whole response: {status} {body[:200]!r}")


def get(port: int, path: str = "/", host: str = "127.0.0.1", timeout: float = TIMEOUT,
        context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """``GET path`` on a fresh connection: status and body."""
    if context is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_json(port: int, path: str = "/", **options: Any) -> tuple[int, Any]:
    status, body = get(port, path, **options)
    return status, json.loads(body)


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed (a failure guard, not a measure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def rss_mib() -> float:
    """This process's resident set size (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def raise_open_files(needed: int) -> str | None:
    """Raise the soft RLIMIT_NOFILE to at least ``needed``; None if done, else why not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            return f"needs {needed} open files; the hard limit is {hard}"
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        except (ValueError, OSError) as exc:
            return f"cannot raise the open-file limit to {needed}: {exc}"
    return None


def restkit_threads() -> set[threading.Thread]:
    """The live threads the server named ``restkit-*``."""
    return {t for t in threading.enumerate() if t.name.startswith("restkit-") and t.is_alive()}


def ipv6_loopback() -> str | None:
    """None if ::1 can be bound here, else why not."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback on this machine: {exc}"
    return None


# -- `python -m restkit` in a subprocess -------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = str(ROOT)
    environ.pop("PYTHONWARNINGS", None)
    return environ


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "restkit", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_listening(port: int, proc: subprocess.Popen[str], host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early ({proc.returncode}): {proc.communicate()}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


def finish(proc: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str]:
    """Wait for ``proc`` to exit (kill it after ``timeout``): its exit status and stderr."""
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate(timeout=10)
        return -9, stderr + "\n[killed by the test: it did not exit in time]"
    return proc.returncode, stderr
