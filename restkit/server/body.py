"""Request bodies: ``wsgi.input``.

By default the event loop reads a body whole before any worker runs the
app (:class:`BodySpool`): bytes in memory up to ``SPOOL_MEMORY``, then in
an anonymous temporary file, as waitress does.  A client that sends its
body slowly, or never, costs a buffer and a descriptor, not a thread.

An app that wants a body as it arrives (an upload streamed to storage)
asks for it with ``Server(stream_request_body=True)``: then a body over
``BUFFERED_BODY``, or one behind ``Expect: 100-continue``, goes to a worker
straight after its head, and :class:`StreamingInput` reads it from the
socket as the app asks.  The cost: a slow uploader holds that worker for up
to ``timeout`` seconds.
"""

from __future__ import annotations

import io
import socket
import ssl
import tempfile
import time
from typing import IO, TYPE_CHECKING

from ..http11 import ChunkedReader, LengthReader, ProtocolError
from .sockets import wait_readable, wait_writable

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["BodySpool", "RequestBodyError", "RequestBodyTimeout", "StreamingInput", "SPOOL_MEMORY"]

SPOOL_MEMORY = 1 << 20  # bodies up to this size stay in memory; larger ones go to a temporary file
RECV_SIZE = 65536


class RequestBodyError(OSError):
    """``wsgi.input`` could not deliver the body; ``status`` is the answer the server gives."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestBodyTimeout(RequestBodyError, TimeoutError):
    """The body did not arrive before the request's deadline."""


class BodySpool:
    """A body as it arrives: memory first, a temporary file past ``limit`` bytes."""

    __slots__ = ("_memory", "_file", "_limit", "size")

    def __init__(self, limit: int = SPOOL_MEMORY) -> None:
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self._limit = limit
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
        elif len(self._memory) + len(data) <= self._limit:
            self._memory += data
        else:
            self._file = tempfile.TemporaryFile(prefix="restkit-body-")
            self._file.write(self._memory)
            self._file.write(data)
            self._memory = bytearray()

    def as_input(self) -> IO[bytes]:
        """The body, readable from its start, for ``wsgi.input``."""
        if self._file is None:
            return io.BytesIO(self._memory)
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class StreamingInput:
    """``wsgi.input`` for a body that arrives while the app runs (``stream_request_body=True``).

    Reads wait (up to the request's deadline) until the body's framing says
    it is complete; the first read sends ``100 Continue`` when the client
    waits for it.  A body cut short or malformed raises
    :class:`RequestBodyError` and is remembered, so the server answers it and
    closes the connection whatever the app did with the error.
    """

    def __init__(self, conn: Connection, prefix: bytes, reader: LengthReader | ChunkedReader,
                 send_continue: bool) -> None:
        self._conn = conn
        self._prefix = prefix
        self._reader = reader
        self._send_continue = send_continue
        self.failure: RequestBodyError | None = None

    @property
    def complete(self) -> bool:
        return not self._prefix and self._reader.done

    @property
    def awaiting_continue(self) -> bool:
        return self._send_continue

    def unread_estimate(self) -> int:
        """Bytes of body still to come (a chunked body counts as unknown: -1)."""
        if isinstance(self._reader, LengthReader):
            return self._reader.remaining
        return 0 if self._reader.done else -1

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None or size < 0 else size
        out = bytearray()
        if self._prefix:
            take = len(self._prefix) if want < 0 else min(want, len(self._prefix))
            out += self._prefix[:take]
            self._prefix = self._prefix[take:]
            if want >= 0 and len(out) >= want:
                return bytes(out)
        while not self._reader.done and (want < 0 or len(out) < want):
            try:
                data = self._reader.read(self._conn.buffer, -1 if want < 0 else want - len(out))
            except ProtocolError as exc:
                raise self._fail(RequestBodyError(exc.status, exc.message)) from None
            if data:
                out += data
                if want >= 0:
                    break  # a partial read is fine: return what there is
                continue
            self._receive()
        return bytes(out)

    def _receive(self) -> None:
        sock = self._conn.sock
        if self._send_continue:
            self._send_continue = False
            if not _send_all(sock, b"HTTP/1.1 100 Continue\r\n\r\n", self._conn.request_deadline):
                raise self._fail(RequestBodyError(400, "the client went away"))
        remaining = self._conn.request_deadline - time.monotonic()
        if remaining <= 0 or not wait_readable(sock, remaining):
            raise self._fail(RequestBodyTimeout(408, "timed out waiting for the request body"))
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError):
            return  # a TLS record not yet whole: wait again
        except OSError:
            raise self._fail(RequestBodyError(400, "the client went away")) from None
        if not data:
            self._conn.eof = True
            raise self._fail(RequestBodyError(400, "request body ended early"))
        self._conn.buffer += data

    def _fail(self, error: RequestBodyError) -> RequestBodyError:
        self.failure = error
        return error

    def drain(self, limit: int) -> bool:
        """Read and drop up to ``limit`` unread body bytes; True when the body is then complete."""
        if self.failure is not None or self._send_continue:
            return False
        self._prefix = b""
        dropped = 0
        try:
            while not self._reader.done and dropped <= limit:
                dropped += len(self.read(RECV_SIZE))
        except RequestBodyError:
            return False
        return self._reader.done

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            byte = self.read(1)
            if not byte:
                break
            line += byte
            if byte == b"\n":
                break
        return bytes(line)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> StreamingInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _send_all(sock: socket.socket, data: bytes, deadline: float) -> bool:
    """Send ``data`` on a non-blocking socket, waiting for room until ``deadline``; False on failure."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, ssl.SSLWantWriteError):
            if not wait_writable(sock, deadline - time.monotonic()):
                return False
        except OSError:
            return False
    return True
