"""The clients :mod:`benchmarks.server` holds open on a server while wrk loads it.

Each opens its connections when it is made, says what became of them after
the run (a note, or counts), and closes them with ``close()``.
"""

from __future__ import annotations

import re
import selectors
import socket
import threading
import time
from collections.abc import Iterable

PATH = "/zoos/123/animals/456"  # what wrk loads (scenario 2)
STREAM_PATH = "/bench/stream"
STREAM_INTERVAL = 0.1  # seconds between chunks of a stream
BIG_PATH = "/bench/big"  # 8 MiB, for --stalled readers
UPLOAD_PATH = "/bench/upload"  # POST: answers the body's length, for --slow-uploads
UPLOAD_SIZE = 1_000_000  # the Content-Length a slow upload announces
STALLED_RCVBUF = 4096  # the receive buffer of a stalled reader


class Streams:
    """``count`` clients each reading a long-lived stream, counting chunks."""

    def __init__(self, port: int, count: int) -> None:
        self.counts = [0] * count
        self._socks: list[socket.socket] = []
        self._threads = []
        for slot in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            self._socks.append(sock)
            thread = threading.Thread(target=self._read, args=(slot, sock), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, slot: int, sock: socket.socket) -> None:
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                self.counts[slot] += data.count(b"tick ")
        except OSError:
            return

    def snapshot(self) -> list[int]:
        return list(self.counts)

    def close(self) -> None:
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)


class IdleConnections:
    """``count`` keep-alive connections, each made one request and now idle, held open.

    Opening stops at the first connection the server does not answer within
    5 s (a server that holds a thread per connection runs out of them).
    """

    REQUEST = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    def __init__(self, port: int, count: int) -> None:
        self.wanted = count
        self.socks: list[socket.socket] = []
        self.problem = ""
        deadline = time.monotonic() + 60
        for _ in range(count):
            if time.monotonic() > deadline:
                self.problem = "opening took over 60 s"
                break
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError as exc:
                self.problem = f"connect: {exc}"
                break
            self.socks.append(sock)
            try:
                sock.sendall(self.REQUEST)
                if not self._read_answer(sock):
                    self.problem = "a connection was not answered 200"
                    break
            except OSError as exc:
                self.problem = f"request: {exc}"
                break

    @staticmethod
    def _read_answer(sock: socket.socket) -> bool:
        """Read one response with a Content-Length; True if it was a 200."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        remaining = int(length[1]) - len(body) if length else 0
        while remaining > 0:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            remaining -= len(chunk)
        return head.split(b" ", 2)[1:2] == [b"200"]

    def survivors(self) -> tuple[int, int]:
        """``(still open, answered a new request within 10 s)`` after the load run."""
        with selectors.DefaultSelector() as selector:
            for sock in self.socks:
                selector.register(sock, selectors.EVENT_READ)
            readable = {key.fileobj for key, _ in selector.select(0)}
        # anything readable on an idle connection is a close (or a late error)
        still_open = [sock for sock in self.socks if sock not in readable]
        answers: dict[socket.socket, bytes] = {}
        with selectors.DefaultSelector() as selector:
            for sock in still_open:
                try:
                    sock.sendall(self.REQUEST)
                except OSError:
                    continue
                answers[sock] = b""
                selector.register(sock, selectors.EVENT_READ)
            deadline = time.monotonic() + 10
            waiting = set(answers)
            while waiting and (left := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    sock = key.fileobj  # type: ignore[assignment]
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        chunk = b""
                    answers[sock] += chunk
                    if not chunk or b"\r\n\r\n" in answers[sock]:
                        waiting.discard(sock)
                        selector.unregister(sock)
        answered = sum(1 for data in answers.values() if data.split(b" ", 2)[1:2] == [b"200"])
        return len(still_open), answered

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def still_open(sock: socket.socket) -> bool | None:
    """True while the server has neither closed nor reset ``sock``; None where this cannot be told.

    A stalled reader's socket is always readable (the answer it does not
    read), so a close is seen in the kernel's TCP state (Linux ``TCP_INFO``,
    whose first byte is the state: 1 is ESTABLISHED; a FIN from the server
    makes it CLOSE_WAIT, a reset CLOSE), not by reading.
    """
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return None
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 8)[0] == 1
    except OSError:
        return False


def count_open(socks: list[socket.socket], failed: Iterable[socket.socket] = ()) -> str:
    """``"N"`` of ``socks`` still open (not in ``failed``), or why it cannot be told."""
    gone = set(failed)
    states = [still_open(sock) for sock in socks if sock not in gone]
    if any(state is None for state in states):
        return "? (no TCP_INFO on this system)"
    return str(sum(1 for state in states if state))


def open_clients(port: int, count: int, first: bytes, rcvbuf: int = 0) -> tuple[list[socket.socket], str]:
    """``count`` connections to ``port`` that each sent ``first``, and why opening stopped early ("" if not).

    ``rcvbuf``: a receive buffer size, set before connecting (so that it also sets the TCP window).
    """
    socks: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(first)
        except OSError as exc:
            sock.close()
            return socks, str(exc)
        socks.append(sock)
    return socks, ""


class StalledReaders:
    """``count`` clients that each ask for ``BIG_PATH`` (8 MiB) with a 4 KiB receive buffer, and never read."""

    REQUEST = f"GET {BIG_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    def __init__(self, port: int, count: int) -> None:
        self.wanted = count
        self.socks, self.problem = open_clients(port, count, self.REQUEST, STALLED_RCVBUF)

    def note(self) -> str:
        problem = f", opening stopped: {self.problem}" if self.problem else ""
        return (f"stalled readers (GET {BIG_PATH}, 8 MiB, never read): {len(self.socks)} of {self.wanted} "
                f"opened{problem}; after the run {count_open(self.socks)} still open")

    def close(self) -> None:
        for sock in self.socks:
            sock.close()  # unread data: the kernel resets the connection, the server sees it at once


class SlowUploads:
    """``count`` clients that each begin ``POST UPLOAD_PATH`` of 1,000,000 bytes and send one byte a second.

    One background thread sends every client's byte each second.
    """

    HEAD = (f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {UPLOAD_SIZE}\r\n\r\n").encode()

    def __init__(self, port: int, count: int) -> None:
        self.wanted = count
        self.socks, self.problem = open_clients(port, count, self.HEAD)
        self.failed: set[socket.socket] = set()  # written by the sending thread only, read after it stopped
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(1.0):
            for sock in self.socks:
                if sock in self.failed:
                    continue
                try:
                    sock.send(b"x")
                except OSError:
                    self.failed.add(sock)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def note(self) -> str:
        self.stop()
        problem = f", opening stopped: {self.problem}" if self.problem else ""
        return (f"slow uploads (POST {UPLOAD_PATH}, 1 byte/s of {UPLOAD_SIZE:,}): {len(self.socks)} of "
                f"{self.wanted} opened{problem}; after the run {count_open(self.socks, self.failed)} still open")

    def close(self) -> None:
        self.stop()
        for sock in self.socks:
            sock.close()
