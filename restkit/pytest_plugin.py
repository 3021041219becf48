"""restkit's pytest plugin: the ``live_server`` fixture, an app served on a real socket.

::

    import urllib.request

    from restkit import App

    app = App()

    @app.get("/ping")
    def ping(request):
        return {"pong": True}

    def test_ping(live_server):
        server = live_server(app)               # restkit's server, 127.0.0.1, a free port
        with urllib.request.urlopen(server.url + "/ping") as answer:
            assert answer.status == 200

Installing restkit registers this module with pytest (the ``pytest11`` entry
point ``restkit``).  It is the one module of restkit that imports anything
outside the standard library, pytest, and nothing imports it but pytest.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import Server

__all__ = ["LiveServer", "live_server"]


class LiveServer:
    """A restkit server running ``app`` in a background thread on 127.0.0.1, on a free port.

    Attributes:
        server: the :class:`restkit.server.Server`.
        port: the port it listens on.
        url: ``http://127.0.0.1:PORT`` (``https`` with ``certfile`` or ``ssl_context``), no trailing slash.

    ``options`` are those of :func:`restkit.server.make_server`; the access log
    is off unless asked for, and ``grace`` is 2 s rather than 10.
    """

    def __init__(self, app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]], **options: Any) -> None:
        from .server import make_server  # PERF(lazy-import): pytest loads this plugin in every run, server or not

        options.setdefault("access_log", False)
        options.setdefault("grace", 2.0)  # a stream a test left open must not hold up the teardown
        self.server: Server = make_server("127.0.0.1", 0, app, **options)
        self.port = int(self.server.server_address[1])
        scheme = "https" if options.get("certfile") or options.get("ssl_context") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the server (gracefully, within ``grace``) and wait for its thread."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __repr__(self) -> str:
        return f"<LiveServer {self.url}>"


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """``live_server(app, **server_options)`` starts a :class:`LiveServer`; all are stopped after the test."""
    with contextlib.ExitStack() as started:  # closes them all, last first, even if one fails to stop

        def start(app: Callable[..., Any], **options: Any) -> LiveServer:
            server = LiveServer(app, **options)
            started.callback(server.close)
            return server

        yield start
