"""A threaded HTTP/1.1 WSGI server from the standard library alone.

Theory of operation
-------------------
``wsgiref.simple_server`` answers one request at a time and closes every
connection, so one open stream blocks everyone.  This server keeps the same
standard-library footing (:mod:`socketserver` for the listening socket and
the accept loop) and adds what a small production-minded server needs:

* a pool of daemon worker threads, one per open connection, created on
  demand up to ``threads`` and reused (a long-lived stream holds one thread;
  the rest keep serving); connections beyond that wait in the queue;
* a listen backlog of 1024 instead of :mod:`socketserver`'s 5;
* HTTP/1.1 keep-alive when the response has a ``Content-Length``; a body of
  unknown length (a stream) is sent until the connection closes;
* a socket timeout, so a client that stalls mid-request gets 408 and loses
  its thread, and an idle keep-alive connection is closed after
  ``keepalive_timeout`` seconds;
* a body the app did not read is drained when small, and otherwise the
  connection is closed *lingering* (write side shut, input discarded for a
  moment), so a client that sent too much still reads its 413 instead of a
  connection reset, as nginx and Apache do;
* ``Expect: 100-continue`` is answered only when the app reads the body, so
  an upload refused with 413 is never sent;
* one access-log line per request on the ``restkit.access`` logger.

Request bodies sent with ``Transfer-Encoding: chunked`` are refused with 411
(send ``Content-Length``), and header names containing ``_`` are dropped (they
would share an environ key with their ``-`` twin); every other part of the
app sees plain PEP 3333.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

__all__ = ["Server", "make_server", "serve"]

access_logger = logging.getLogger("restkit.access")
error_logger = logging.getLogger("restkit.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# CTLs (RFC 5234): never valid in a request target or a header value (HTAB aside)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_LINE = 8192 + 64  # request line: an 8 KiB URL plus method and version
MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
DRAIN_LIMIT = 1 << 16  # unread body we read through to keep the connection
LINGER_BYTES = 1 << 24  # unread body we discard before closing, at most...
LINGER_SECONDS = 2.0  # ...and for at most this long
SERVER_SOFTWARE = "restkit"
SERVER_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"  # the answer to OPTIONS *


class _Input:
    """``wsgi.input``: reads stop at Content-Length; the first read sends 100 Continue."""

    __slots__ = ("_rfile", "remaining", "_continue")

    def __init__(self, rfile: Any, length: int, send_continue: Callable[[], None] | None) -> None:
        self._rfile = rfile
        self.remaining = length
        self._continue = send_continue

    def _start(self) -> None:
        if self._continue is not None:
            send, self._continue = self._continue, None
            send()

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        self._start()
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data: bytes = self._rfile.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    @property
    def awaiting_continue(self) -> bool:
        """True while a client that sent ``Expect: 100-continue`` has not been asked for its body."""
        return self._continue is not None

    def readline(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        self._start()
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data: bytes = self._rfile.readline(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> _Input:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Pool:
    """Daemon worker threads, started on demand up to ``size`` and reused."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._jobs.put((fn, args))
        if self._idle.acquire(timeout=0):
            return
        with self._lock:
            if len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"restkit-worker-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args = job
            try:
                fn(*args)
            except Exception:  # a job must never kill its worker
                error_logger.exception("unexpected error in a worker thread")
            del job, fn, args
            self._idle.release()

    @property
    def thread_count(self) -> int:
        return len(self._threads)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class _ClientError(Exception):
    """A request the server refuses before the app sees it."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Server(socketserver.TCPServer):
    """Serve a WSGI app on ``address`` with a pool of worker threads.

    Args:
        address: ``(host, port)``; port 0 picks a free one (see ``server_address``).
        app: any WSGI application.
        threads: the most connections served at once (each holds a thread).
        timeout: seconds a client may stall while sending a request or reading a response.
        keepalive_timeout: seconds an idle keep-alive connection is kept open.
        access_log: log one line per request on the ``restkit.access`` logger.
    """

    allow_reuse_address = True
    request_queue_size = 1024
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        app: WSGIApp,
        *,
        threads: int = 256,
        timeout: float = 30.0,
        keepalive_timeout: float = 5.0,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.timeout_seconds = timeout
        self.keepalive_timeout = keepalive_timeout
        self.access_log = access_log
        self._pool = _Pool(threads)
        self._stopping = False
        super().__init__(address, None)  # type: ignore[arg-type]
        host, port = str(self.server_address[0]), int(self.server_address[1])
        self.base_environ: dict[str, Any] = {
            "SERVER_NAME": socket.getfqdn(host) if host not in ("", "0.0.0.0", "127.0.0.1", "::") else host,
            "SERVER_PORT": str(port),
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
        }

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]!s}:{self.server_address[1]}"

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._serve_connection, request, client_address)

    def shutdown(self) -> None:
        self._stopping = True
        super().shutdown()

    # -- one connection -------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, address: Any) -> None:
        linger = False
        rfile = None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rfile = sock.makefile("rb", 65536)
            first = True
            while not self._stopping:
                sock.settimeout(self.timeout_seconds if first else self.keepalive_timeout)
                keep, linger = self._serve_request(sock, rfile, address, first)
                first = False
                if not keep:
                    break
        except (OSError, ValueError):
            pass  # the client went away or stalled; nothing left to tell it
        finally:
            # The file holds a reference to the socket: until it is closed,
            # sock.close() does not close the connection (and a logged
            # traceback that keeps this frame alive would keep it open).
            if rfile is not None:
                rfile.close()
            self._close(sock, linger)

    def _close(self, sock: socket.socket, linger: bool) -> None:
        try:
            if linger:
                sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + LINGER_SECONDS
                discarded = 0
                while discarded < LINGER_BYTES and time.monotonic() < deadline:
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    discarded += len(chunk)
        except OSError:
            pass
        finally:
            sock.close()

    def _serve_request(self, sock: socket.socket, rfile: Any, address: Any, first: bool) -> tuple[bool, bool]:
        """Serve one request; return ``(keep_alive, linger_on_close)``."""
        try:
            line = rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):  # RFC 9112: ignore one empty line before a request
                line = rfile.readline(MAX_LINE + 1)
        except TimeoutError:
            if first:
                self._send_error(sock, "408 Request Timeout", "timed out waiting for the request")
            return False, False
        if not line:
            return False, False
        sock.settimeout(self.timeout_seconds)
        try:
            environ, http11 = self._parse(line, rfile, address)
        except _ClientError as exc:
            self._send_error(sock, exc.status, exc.message)
            self._log(address, line.decode("latin-1").strip()[:200], exc.status[:3], 0)
            return False, True
        except TimeoutError:
            self._send_error(sock, "408 Request Timeout", "timed out reading the request headers")
            return False, False
        if environ["PATH_INFO"] == "*":  # OPTIONS * asks about the server, not a resource
            sock.sendall(
                f"HTTP/1.1 204 No Content\r\nAllow: {SERVER_METHODS}\r\nDate: {_http_date()}\r\n"
                f"Server: {SERVER_SOFTWARE}\r\nConnection: {'keep-alive' if http11 else 'close'}\r\n\r\n".encode("latin-1")
            )
            self._log(address, _request_line(environ), "204", 0)
            return http11, False
        return self._run_app(sock, rfile, environ, http11, address)

    def _parse(self, line: bytes, rfile: Any, address: Any) -> tuple[dict[str, Any], bool]:
        if len(line) > MAX_LINE:
            raise _ClientError("414 URI Too Long", "request line is too long")
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            raise _ClientError("400 Bad Request", "malformed request line") from None
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            if not version.startswith("HTTP/"):
                raise _ClientError("400 Bad Request", "malformed request line")
            raise _ClientError("505 HTTP Version Not Supported", f"{version} is not supported")
        if not method.isalpha() or not method.isupper():
            raise _ClientError("400 Bad Request", f"malformed method {method[:20]!r}")
        if _CONTROL.search(target):  # RFC 9112: no bare CR, NUL or other controls
            raise _ClientError("400 Bad Request", "control character in the request target")
        environ = dict(self.base_environ)
        headers_seen = 0
        while True:
            raw = rfile.readline(MAX_HEADER_LINE + 1)
            if len(raw) > MAX_HEADER_LINE:
                raise _ClientError("431 Request Header Fields Too Large", "a header line is too long")
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:
                raise _ClientError("400 Bad Request", "connection closed inside the headers")
            headers_seen += 1
            if headers_seen > MAX_HEADERS:
                raise _ClientError("431 Request Header Fields Too Large", f"more than {MAX_HEADERS} headers")
            text = raw.decode("latin-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or not name or name != name.strip() or " " in name or text[0] in " \t":
                raise _ClientError("400 Bad Request", "malformed header line")
            if "_" in name:
                # X_Forwarded_For would land in the same environ key as
                # X-Forwarded-For and could pass for it: drop it (as nginx
                # and gunicorn do).
                continue
            key = name.upper().replace("-", "_")
            value = value.strip(" \t")
            if _VALUE_CONTROL.search(value):
                raise _ClientError("400 Bad Request", f"control character in the {name[:40]} header")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                if key == "CONTENT_LENGTH" and key in environ and environ[key] != value:
                    raise _ClientError("400 Bad Request", "conflicting Content-Length headers")
                environ[key] = value
                continue
            key = "HTTP_" + key
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value
        if "HTTP_TRANSFER_ENCODING" in environ:
            raise _ClientError("411 Length Required", "chunked request bodies are not supported; send Content-Length")
        length_text = environ.get("CONTENT_LENGTH", "")
        if length_text and not (length_text.isdigit() and len(length_text) < 19):
            raise _ClientError("400 Bad Request", "invalid Content-Length")
        path, _, query = target.partition("?")
        if not path.startswith("/"):
            if path == "*" and method == "OPTIONS":
                path = "*"
            elif "://" in path:  # absolute form: keep the path only
                path = "/" + path.split("://", 1)[1].partition("/")[2]
            else:
                raise _ClientError("400 Bad Request", "request target must start with '/'")
        environ["REQUEST_METHOD"] = method
        environ["PATH_INFO"] = unquote(path, "latin-1")
        environ["QUERY_STRING"] = query
        environ["RAW_URI"] = target
        environ["SERVER_PROTOCOL"] = version
        environ["REMOTE_ADDR"] = address[0] if isinstance(address, tuple) else ""
        environ["REMOTE_PORT"] = str(address[1]) if isinstance(address, tuple) else ""
        http11 = version == "HTTP/1.1"
        if http11 and "HTTP_HOST" not in environ:
            raise _ClientError("400 Bad Request", "an HTTP/1.1 request needs a Host header")
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep = ("close" not in connection) if http11 else ("keep-alive" in connection)
        return environ, keep

    def _run_app(
        self, sock: socket.socket, rfile: Any, environ: dict[str, Any], keep: bool, address: Any
    ) -> tuple[bool, bool]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        expects = environ.get("HTTP_EXPECT", "").lower() == "100-continue"
        send_continue = (lambda: sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")) if expects and length else None
        body_in = _Input(rfile, length, send_continue)
        environ["wsgi.input"] = body_in
        head_only = environ["REQUEST_METHOD"] == "HEAD"
        state: dict[str, Any] = {}
        sent = 0

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None:
                try:
                    if state.get("head_sent"):
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif "status" in state:
                raise AssertionError("start_response called twice without exc_info")
            state["status"] = status
            state["headers"] = headers
            return write

        def head_bytes() -> bytes:
            nonlocal keep
            status = state["status"]
            lines = [f"HTTP/1.1 {status}\r\n"]
            has_length = False
            for name, value in state["headers"]:
                lowered = name.lower()
                if lowered == "content-length":
                    has_length = True
                elif lowered == "connection" and "close" in value.lower():
                    keep = False
                lines.append(f"{name}: {value}\r\n")
            code = status[:3]
            if not has_length and not head_only and code not in ("204", "205", "304") and code[0] != "1":
                keep = False  # the body ends when the connection does
            if body_in.remaining > DRAIN_LIMIT or body_in.awaiting_continue:
                # too much to drain, or a body the client holds back until a
                # 100 Continue that must not come after the final response
                keep = False
            lines.append(f"Date: {_http_date()}\r\nServer: {SERVER_SOFTWARE}\r\n")
            lines.append("Connection: keep-alive\r\n\r\n" if keep else "Connection: close\r\n\r\n")
            state["head_sent"] = True
            return "".join(lines).encode("latin-1")

        def write(data: bytes) -> None:
            nonlocal sent
            if "status" not in state:
                raise AssertionError("write() before start_response()")
            out = data if state.get("head_sent") else head_bytes() + (b"" if head_only else data)
            if head_only and state.get("head_sent") and out is data:
                return
            sock.sendall(out)
            sent += len(data)

        result: Any = None
        try:
            result = self.app(environ, start_response)
            for chunk in result:
                if chunk:
                    write(chunk)
                if self._stopping:  # shutting down: end open streams too
                    keep = False
                    break
            if not state.get("head_sent"):
                if "status" not in state:
                    raise AssertionError("the app returned without calling start_response()")
                sock.sendall(head_bytes())
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) or "closed file" in str(exc):
                keep = False
                self._log(address, _request_line(environ), state.get("status", "000")[:3], sent, disconnected=True)
                return False, False
            raise
        except Exception:
            error_logger.exception("error from the WSGI app for %s", _request_line(environ))
            if not state.get("head_sent"):
                self._send_error(sock, "500 Internal Server Error", "internal server error")
            return False, False
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    error_logger.exception("error closing the app's response")
        if self.access_log:  # the request line is not built when nobody logs it
            self._log(address, _request_line(environ), state["status"][:3], sent)
        unread = body_in.remaining
        if unread and keep:
            try:
                while body_in.remaining and body_in.read(65536):
                    pass
            except OSError:
                return False, False
        return keep and not self._stopping, bool(unread) and not keep

    def _send_error(self, sock: socket.socket, status: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nDate: {_http_date()}\r\nServer: {SERVER_SOFTWARE}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            sock.sendall(head.encode("latin-1") + body)
        except OSError:
            pass

    def _log(self, address: Any, request_line: str, code: str, size: int, *, disconnected: bool = False) -> None:
        if self.access_log:
            host = address[0] if isinstance(address, tuple) else "-"
            note = " (client disconnected)" if disconnected else ""
            access_logger.info('%s - - [%s] "%s" %s %d%s', host, time.strftime("%d/%b/%Y %H:%M:%S"), request_line, code, size, note)


def _request_line(environ: dict[str, Any]) -> str:
    return f"{environ.get('REQUEST_METHOD')} {environ.get('RAW_URI', '')} {environ.get('SERVER_PROTOCOL')}"


def make_server(host: str, port: int, app: WSGIApp, **options: Any) -> Server:
    """Create (and bind) a :class:`Server`; call ``serve_forever()`` to run it."""
    return Server((host, port), app, **options)


def serve(app: WSGIApp, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``app`` until Ctrl-C, then stop cleanly.

    Binds 127.0.0.1 unless told otherwise (``host="0.0.0.0"`` serves the
    network).  Options are those of :class:`Server`.  Access-log lines go
    to standard error unless logging is already configured.
    """
    if not logging.getLogger().handlers and not access_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        for log in (access_logger, error_logger, logging.getLogger("restkit")):
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
    server = make_server(host, port, app, **options)
    _stop_on_signals()
    print(f"restkit: serving on {server.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("restkit: stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Make SIGINT and SIGTERM stop ``serve`` cleanly.

    A shell starts background jobs with SIGINT ignored, and SIGTERM (what
    process managers send) would otherwise end the process without cleanup.
    Only the main thread may install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
