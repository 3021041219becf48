"""Relay another screencast: ``--source http://host:port/stream`` as a :class:`Source`.

The relay's broadcaster opens one connection to the upstream stream while
it has viewers (its capture thread is the only reader), so any number of
local viewers cost the upstream one viewer; relays of relays make a tree.
Each upstream part (a JPEG) is decoded and handed to the broadcaster like a
grabbed screen: it skips unchanged pictures (the upstream's keep-alive
re-sends) and encodes with the relay's own ``--quality`` and ``--width``.

The stream is ``multipart/x-mixed-replace`` whose parts carry
``Content-Length`` (what restkit's ``multipart_stream`` sends).
"""

from __future__ import annotations

import http.client
import io
import ssl
from urllib.parse import urlsplit

from PIL import Image

from .capture import CaptureError, Grabber, NoScreenError, RawImage

__all__ = ["RelaySource"]

MAX_PART = 64 << 20  # the largest JPEG taken from upstream


class RelaySource:
    """The stream of another screencast at ``url`` (``http://`` or ``https://``)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the source must be an http:// or https:// URL, not {url!r}")
        self.url = url
        self.name = f"relay of {url}"
        self.timeout = timeout

    def open(self) -> Grabber:
        """Connect to the upstream stream (one connection per capture run)."""
        parts = urlsplit(self.url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"Accept": "multipart/x-mixed-replace, image/jpeg"})
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise NoScreenError(f"cannot reach the upstream stream {self.url}: {exc}") from None
        content_type = response.getheader("Content-Type", "")
        boundary = ""
        for param in content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip('"')
        if response.status != 200 or not content_type.startswith("multipart/") or not boundary:
            conn.close()
            raise NoScreenError(f"{self.url} is not a screencast stream ({response.status} {content_type or '-'})")
        return _RelayGrabber(conn, response, boundary.encode("latin-1"))


class _RelayGrabber:
    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, boundary: bytes) -> None:
        self._conn = conn
        self._response = response
        self._delimiter = b"--" + boundary

    def _line(self) -> bytes:
        line = self._response.readline(8192)
        if not line:
            raise CaptureError("the upstream stream ended")
        return line.rstrip(b"\r\n")

    def grab(self) -> RawImage:
        """The next picture of the upstream stream (waits for it)."""
        while self._line() != self._delimiter:  # skip to the next part (a preamble, a part's trailing CRLF)
            pass
        length = -1
        while line := self._line():
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if not 0 < length <= MAX_PART:
            raise CaptureError("an upstream part without a usable Content-Length")
        data = self._response.read(length)
        if len(data) != length:
            raise CaptureError("the upstream stream ended inside a picture")
        try:
            image = Image.open(io.BytesIO(data)).convert("RGB")
        except (OSError, ValueError) as exc:
            raise CaptureError(f"an upstream part is not a picture: {exc}") from None
        return RawImage(image.tobytes(), image.size, "RGB")

    def close(self) -> None:
        self._response.close()
        self._conn.close()
