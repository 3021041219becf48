"""The screencast relay: ``--source http://host:port/stream`` takes one upstream connection
and serves any number of local viewers; relays chain into a tree."""

from __future__ import annotations

import http.client
import io
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Image = pytest.importorskip("PIL.Image", reason="the screencast example needs Pillow")

from examples.screencast import Broadcaster, PatternSource, make_app  # noqa: E402
from examples.screencast.relay import RelaySource  # noqa: E402
from tests.conftest import LiveServer, free_port  # noqa: E402
from tests.test_examples_zoo_server import ROOT  # noqa: E402


def jpeg_parts(port: int, count: int) -> list[bytes]:
    """Read ``count`` JPEG parts of ``/stream`` on ``port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/stream")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("multipart/x-mixed-replace")
        parts = []
        while len(parts) < count:
            line = response.readline()
            assert line, "the stream ended"
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                response.readline()  # the blank line
                parts.append(response.read(length))
        return parts
    finally:
        conn.close()


@pytest.fixture
def chain(live_server: Callable[..., LiveServer]) -> Iterator[tuple[Any, Any, Any]]:
    """An upstream screencast (a test pattern), a relay of it, and a relay of the relay."""
    upstream = Broadcaster(PatternSource(320, 180), fps=20, idle=0.5)
    top = live_server(make_app(upstream))
    relay = Broadcaster(RelaySource(f"{top.url}/stream"), fps=20, idle=0.5)
    middle = live_server(make_app(relay))
    leaf_broadcaster = Broadcaster(RelaySource(f"{middle.url}/stream"), fps=20, idle=0.5)
    leaf = live_server(make_app(leaf_broadcaster))
    yield (upstream, top), (relay, middle), (leaf_broadcaster, leaf)
    for broadcaster in (leaf_broadcaster, relay, upstream):
        broadcaster.close()


def test_a_relay_serves_many_viewers_from_one_upstream_connection(chain: Any) -> None:
    (upstream, top), (relay, middle), _ = chain
    results: list[list[bytes]] = []
    lock = threading.Lock()

    def view() -> None:
        parts = jpeg_parts(middle.port, 5)
        with lock:
            results.append(parts)

    viewers = [threading.Thread(target=view, daemon=True) for _ in range(4)]
    for viewer in viewers:
        viewer.start()
    peak = 0
    while any(v.is_alive() for v in viewers):
        peak = max(peak, upstream.viewers)
        for viewer in viewers:
            viewer.join(timeout=0.01)
    for viewer in viewers:
        viewer.join(timeout=60)
    assert len(results) == 4
    for parts in results:
        for part in parts:
            assert part[:3] == b"\xff\xd8\xff"  # JPEG
            assert Image.open(io.BytesIO(part)).size == (320, 180)
    assert peak == 1  # four viewers here, one upstream connection


def test_relays_chain_into_a_tree(chain: Any) -> None:
    (upstream, _), (relay, _), (_, leaf) = chain
    parts = jpeg_parts(leaf.port, 3)
    assert len(parts) == 3 and all(part[:2] == b"\xff\xd8" for part in parts)


def test_the_cli_refuses_an_unreachable_upstream_with_a_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.screencast", "--port", str(free_port()),
         "--source", f"http://127.0.0.1:{free_port()}/stream"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "cannot reach the upstream stream" in done.stderr
    assert "Traceback" not in done.stderr
    bad = subprocess.run([sys.executable, "-m", "examples.screencast", "--source", "ftp://x/stream"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--source" in bad.stderr
