"""examples.screencast without a screen: the pattern source and a source the test drives.

The real X server and the real browser are in test_examples_screencast_x11.py.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Image = pytest.importorskip("PIL.Image", reason="the screencast example needs Pillow")

from examples.screencast import Broadcaster, PatternSource, make_app  # noqa: E402
from examples.screencast.broadcaster import Frame  # noqa: E402
from examples.screencast.capture import CaptureError, NoScreenError, RawImage, encode_jpeg  # noqa: E402
from tests.conftest import free_port, make_client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def capture_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


class StepSource:
    """A 16x16 picture that changes only when the test calls :meth:`step`."""

    name = "step"

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.value = 0
        self.opened = 0
        self.closed = 0

    def step(self, count: int = 1) -> None:
        self.gate.release(count)

    def open(self) -> StepSource:
        self.opened += 1
        return self

    def grab(self) -> RawImage:
        if self.gate.acquire(timeout=0.01):
            self.value += 1
        return RawImage(bytes([self.value * 10 % 256, 0, 0]) * 256, (16, 16), "RGB")  # a fresh buffer each time

    def close(self) -> None:
        self.closed += 1


class BrokenSource:
    name = "broken"

    def open(self) -> Any:
        raise NoScreenError("no screen to capture: DISPLAY is not set")


@pytest.fixture
def hubs() -> Iterator[Callable[..., Broadcaster]]:
    """``hubs(source, **options)``: a broadcaster with a unique thread name, closed after the test."""
    made: list[Broadcaster] = []

    def make(source: Any, **options: Any) -> Broadcaster:
        options.setdefault("fps", 0)
        options.setdefault("idle", 0.3)
        options.setdefault("keepalive", 5.0)
        hub = Broadcaster(source, name=f"screencast-test-{next(_names)}", **options)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()
        wait_for(lambda: not capture_threads(hub.name), what="the capture thread to end")


# -- the broadcaster -----------------------------------------------------------------------


def test_viewers_share_one_capture_thread_and_the_same_frame(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source)
    viewers = [hub.frames() for _ in range(4)]
    source.step()
    first = [next(v) for v in viewers]
    assert {f.seq for f in first} == {1}
    assert all(f is first[0] and f.jpeg is first[0].jpeg for f in first)  # encoded once, shared
    assert len(capture_threads(hub.name)) == 1
    assert hub.viewers == 4

    source.step()
    second = [next(v) for v in viewers]
    assert all(f is second[0] and f.seq == 2 for f in second)
    assert hub.frames_encoded == 2  # not 8: encoding does not grow with viewers
    assert len(capture_threads(hub.name)) == 1
    for v in viewers:
        v.close()
    assert hub.viewers == 0


def test_unchanged_screen_is_not_encoded_again(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source, keepalive=0.2)
    viewer = hub.frames()
    source.step()
    assert next(viewer).seq == 1
    wait_for(lambda: hub.frames_captured > 10, what="more grabs")
    assert hub.frames_encoded == 1
    again = next(viewer)  # nothing new: after `keepalive` the same frame is sent again
    assert again.seq == 1
    viewer.close()


def test_slow_viewer_skips_frames_and_does_not_hold_back_others(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source)
    fast, slow = hub.frames(), hub.frames()
    source.step()
    assert next(fast).seq == next(slow).seq == 1
    seen = []
    for _ in range(5):  # the slow viewer reads nothing meanwhile
        source.step()
        seen.append(next(fast).seq)
    assert seen == [2, 3, 4, 5, 6]
    assert next(slow).seq == 6  # straight to the newest: 2 to 5 skipped
    fast.close()
    slow.close()


def test_capture_stops_when_idle_and_starts_again(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source, idle=0.3)
    assert not hub.capturing and not capture_threads(hub.name)
    viewer = hub.frames()
    source.step()
    next(viewer)
    assert hub.capturing
    viewer.close()
    assert hub.viewers == 0
    wait_for(lambda: not hub.capturing and not capture_threads(hub.name), what="capture to stop")
    assert source.closed == source.opened == 1
    assert hub.stats()["fps"] == 0

    viewer = hub.frames()  # a new viewer starts a new run
    source.step()
    assert next(viewer).seq == 2
    assert hub.capturing and len(capture_threads(hub.name)) == 1
    assert source.opened == 2
    viewer.close()
    wait_for(lambda: not capture_threads(hub.name), what="capture to stop again")
    assert source.closed == 2


def test_snapshot_starts_capture_for_idle_seconds(hubs: Callable[..., Broadcaster]) -> None:
    hub = hubs(PatternSource(), fps=50, idle=0.3)
    frame = hub.snapshot()
    assert isinstance(frame, Frame) and frame.jpeg[:2] == b"\xff\xd8"
    assert hub.capturing
    wait_for(lambda: not hub.capturing, what="capture to stop after a snapshot")


def test_snapshot_with_no_idle_time_still_gets_a_frame(hubs: Callable[..., Broadcaster]) -> None:
    hub = hubs(PatternSource(), idle=0)
    assert hub.snapshot(timeout=5).jpeg[:2] == b"\xff\xd8"
    wait_for(lambda: not hub.capturing, what="capture to stop at once")


def test_capture_error_ends_streams_and_snapshots_fail(hubs: Callable[..., Broadcaster]) -> None:
    hub = hubs(BrokenSource())
    assert list(hub.frames()) == []
    with pytest.raises(CaptureError, match="DISPLAY is not set"):
        hub.snapshot()
    assert hub.viewers == 0
    assert "DISPLAY" in hub.stats()["error"]


def test_close_ends_every_stream(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source)
    viewer = hub.frames()
    source.step()
    next(viewer)
    hub.close()
    assert list(viewer) == []
    assert hub.viewers == 0
    wait_for(lambda: not capture_threads(hub.name), what="the capture thread to end")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"fps": -1}, "fps"), ({"quality": 0}, "quality"), ({"quality": 101}, "quality"), ({"width": 0}, "width"), ({"idle": -1}, "idle")],
    ids=["negative-fps", "quality-0", "quality-101", "width-0", "negative-idle"],
)
def test_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Broadcaster(PatternSource(), **options)


def test_encode_downscales_keeping_the_aspect_ratio() -> None:
    raw = RawImage(bytes(640 * 360 * 4), (640, 360), "BGRX")
    jpeg, width, height = encode_jpeg(raw, 70, 320)
    assert (width, height) == (320, 180)
    assert Image.open(io.BytesIO(jpeg)).size == (320, 180)
    assert encode_jpeg(raw, 70, None)[1:] == (640, 360)


def test_the_jpeg_written_through_a_file_is_the_one_pillow_makes_in_memory() -> None:
    # encode_image writes through a file descriptor so that Pillow releases the GIL while it encodes
    from examples.screencast.capture import _scratch_file, encode_image

    image = Image.effect_noise((320, 200), 60).convert("RGB")
    in_memory = io.BytesIO()
    image.save(in_memory, "JPEG", quality=60)
    assert encode_image(image, 60) == (in_memory.getvalue(), 320, 200)
    with _scratch_file() as scratch:
        assert scratch.fileno() >= 0  # a real descriptor: Pillow's encode_to_file(), which releases the GIL


# -- the HTTP side, in process ----------------------------------------------------------------


def test_stats_fields(hubs: Callable[..., Broadcaster]) -> None:
    hub = hubs(PatternSource(), fps=50, quality=60)
    client = make_client(make_app(hub))
    stats = client.get("/stats").json
    assert stats == {
        "viewers": 0,
        "fps": 0.0,
        "frames_captured": 0,
        "frames_changed": 0,
        "frames_encoded": 0,
        "frames_sent": 0,
        "frame_bytes": 0,
        "width": 0,
        "height": 0,
        "quality": 60,
        "variants": 0,
        "latency_ms": {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0},
        "handoff_ms": {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0},
        "cpu_seconds": {"grab": 0.0, "compare": 0.0, "convert": 0.0, "encode": 0.0, "process": stats["cpu_seconds"]["process"]},
        "cpu_ms_per_run": {"grab": 0.0, "compare": 0.0, "convert": 0.0, "encode": 0.0},
        "source": "pattern",
        "capturing": False,
        "error": None,
    }
    client.get("/snapshot.jpg")
    stats = client.get("/stats").json
    assert stats["capturing"] is True
    assert (stats["width"], stats["height"]) == (640, 360)
    assert stats["frame_bytes"] > 0 and stats["frames_captured"] >= 1
    assert stats["frames_changed"] >= 1 and stats["frames_encoded"] >= 1
    assert stats["cpu_seconds"]["encode"] > 0 and stats["cpu_ms_per_run"]["encode"] > 0
    assert stats["cpu_seconds"]["process"] >= stats["cpu_seconds"]["encode"]


def test_frame_ages_are_measured_per_frame_sent(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source)
    viewers = [hub.frames() for _ in range(3)]
    for _ in range(2):
        source.step()
        for viewer in viewers:
            next(viewer)
    latency, handoff = hub.stats()["latency_ms"], hub.stats()["handoff_ms"]
    assert latency["samples"] == handoff["samples"] == 6 and hub.frames_sent == 6
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert 0 <= handoff["max"] < latency["max"]  # the hand-off is the part of the age after the encode
    for viewer in viewers:
        viewer.close()


# -- variants: per viewer width, quality and frame rate -------------------------------------


def test_viewers_of_one_variant_share_its_encoding_and_others_get_their_own(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source, quality=70)
    full = [hub.frames() for _ in range(2)]
    small = [hub.frames(width=8, quality=40) for _ in range(2)]
    source.step()
    frames = [next(v) for v in full + small]
    assert frames[0] is frames[1] and frames[2] is frames[3]  # one encoding per variant, shared
    assert (frames[0].width, frames[2].width) == (16, 8)
    assert frames[0].jpeg != frames[2].jpeg
    assert hub.frames_encoded == 2 and hub.stats()["variants"] == 2
    for viewer in small:
        viewer.close()
    assert hub.stats()["variants"] == 1  # nobody watches it: its frame is forgotten
    for viewer in full:
        viewer.close()


def test_a_width_beyond_the_screen_is_the_full_size_variant(hubs: Callable[..., Broadcaster]) -> None:
    source = StepSource()
    hub = hubs(source)
    first = hub.frames()
    source.step()
    frame = next(first)
    wide = hub.frames(width=4000)  # no upscaling: the same variant as the full size
    assert next(wide) is frame and hub.frames_encoded == 1
    first.close()
    wide.close()


def test_a_viewer_with_a_lower_frame_rate_skips_frames(hubs: Callable[..., Broadcaster]) -> None:
    hub = hubs(PatternSource(64, 36), fps=50)
    thinned = hub.frames(fps=2)  # one frame every half second from a capture of 50 a second
    seqs = [next(thinned).seq for _ in range(3)]
    assert seqs[1] - seqs[0] >= 2 and seqs[2] - seqs[1] >= 2, seqs
    thinned.close()


def test_each_part_is_framed_once_with_its_number() -> None:
    from examples.screencast.broadcaster import Grab, _frame, first_part

    image = Image.new("RGB", (32, 18), (200, 10, 10))
    frame = _frame(Grab(7, image, 1.5, 1.75), 70, None)
    head, _, rest = frame.part.partition(b"\r\n\r\n")
    content_type, number, clock, length = head.split(b"\r\n")
    assert (content_type, number, length) == (b"Content-Type: image/jpeg", b"X-Frame: 7", b"Content-Length: %d" % len(frame.jpeg))
    name, _, times = clock.partition(b": ")
    grabbed, published, encoding, encoded = (float(t) for t in times.split())
    assert name == b"X-Clock" and (grabbed, published) == (1.5, 1.75) and published <= encoding <= encoded
    assert rest == frame.jpeg + b"\r\n" + first_part()  # the delimiter follows the picture at once
    assert first_part() == b"--restkitframe\r\n"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("fps=0", "fps"), ("fps=abc", "fps"), ("fps=1000", "fps"), ("width=8", "width"), ("width=1.5", "width"),
     ("quality=0", "quality"), ("quality=96", "quality"), ("quality=high", "quality"), ("speed=1", "speed")],
    ids=["fps-0", "fps-text", "fps-too-high", "width-too-small", "width-fraction", "quality-0", "quality-96",
         "quality-text", "unknown"],
)
def test_stream_choices_that_make_no_sense_are_400_naming_the_parameter(
    hubs: Callable[..., Broadcaster], query: str, parameter: str
) -> None:
    hub = hubs(PatternSource())
    response = make_client(make_app(hub)).get(f"/stream?{query}", status=400)
    assert parameter in response.json["details"], response.json
    assert response.json["error"].startswith(f"invalid query parameter(s): {parameter}: ")
    assert hub.viewers == 0 and not hub.capturing


@contextlib.contextmanager
def streaming(port: int, path: str) -> Iterator[http.client.HTTPResponse]:
    """The response to ``GET path``, closed (with its connection) afterwards."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    try:
        assert response.status == 200
        yield response
    finally:
        response.close()  # http.client keeps the socket open while the response is
        connection.close()


def test_stream_choices_reach_the_viewer(hubs: Callable[..., Broadcaster], live_server: Any) -> None:
    hub = hubs(PatternSource(), fps=30)
    server = live_server(make_app(hub))
    with streaming(server.port, "/stream?width=320&quality=30&fps=10") as response:
        (headers, body), = read_parts(response, 1)
        assert Image.open(io.BytesIO(body)).size == (320, 180)
        assert int(headers["x-frame"]) >= 1
        assert hub.stats()["variants"] == 1
    wait_for(lambda: hub.viewers == 0, what="the viewer to leave")


def test_snapshot_is_a_jpeg_of_the_picture(hubs: Callable[..., Broadcaster]) -> None:
    client = make_client(make_app(hubs(PatternSource(), fps=50, width=320)))
    response = client.get("/snapshot.jpg")
    assert response.content_type == "image/jpeg"
    assert response.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(response.body))
    assert (image.format, image.size) == ("JPEG", (320, 180))


def test_snapshot_without_a_screen_is_503_and_the_app_still_answers(hubs: Callable[..., Broadcaster]) -> None:
    client = make_client(make_app(hubs(BrokenSource())))
    response = client.get("/snapshot.jpg", status=503)
    assert response.json["error"].startswith("cannot capture the screen: no screen to capture")
    assert client.get("/stats").json["source"] == "broken"


def test_page_shows_the_stream_and_refreshes_stats(hubs: Callable[..., Broadcaster]) -> None:
    client = make_client(make_app(hubs(PatternSource())))
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.content_type == "text/html"
    assert '<img id="screen" alt="the shared screen" src="/stream">' in page.text
    assert 'fetch("/stats"' in page.text
    refused = client.get("/", headers={"Accept": "application/json"}, status=406)
    assert "text/html" in refused.json["error"]
    assert client.get("/").status_int == 200


def test_page_passes_its_choices_on_to_its_stream(hubs: Callable[..., Broadcaster]) -> None:
    client = make_client(make_app(hubs(PatternSource())))
    page = client.get("/?width=640&fps=10").text
    assert '<img id="screen" alt="the shared screen" src="/stream?fps=10&amp;width=640">' in page
    assert "width" in client.get("/?width=1", status=400).json["details"]


def test_page_links_follow_the_mount_point(hubs: Callable[..., Broadcaster]) -> None:
    client = make_client(make_app(hubs(PatternSource())))
    page = client.get("/", extra_environ={"SCRIPT_NAME": "/screen"})
    assert 'src="/screen/stream"' in page.text and 'fetch("/screen/stats"' in page.text


# -- over a real socket ------------------------------------------------------------------------


def read_parts(response: http.client.HTTPResponse, count: int) -> list[tuple[dict[str, str], bytes]]:
    """The next ``count`` parts of a multipart stream, using each part's Content-Length."""
    boundary = response.getheader("Content-Type", "").split("boundary=")[1]
    parts = []
    for _ in range(count):
        line = response.readline()
        if line == b"\r\n":
            line = response.readline()
        assert line == f"--{boundary}\r\n".encode()
        headers = {}
        while (line := response.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = response.read(int(headers["content-length"]))
        assert response.read(2) == b"\r\n"
        parts.append((headers, body))
    return parts


def test_stream_over_a_socket_while_other_routes_answer(hubs: Callable[..., Broadcaster], live_server: Any) -> None:
    hub = hubs(PatternSource(), fps=30)
    server = live_server(make_app(hub))
    with streaming(server.port, "/stream") as response:
        assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=restkitframe"
        for headers, body in read_parts(response, 3):
            assert headers["content-type"] == "image/jpeg"
            assert Image.open(io.BytesIO(body)).size == (640, 360)
        # the stream is open: the other routes answer at once
        other = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        other.request("GET", "/stats")
        stats = other.getresponse()
        assert stats.status == 200 and b'"viewers":1' in stats.read()
        other.request("GET", "/snapshot.jpg")
        assert other.getresponse().read()[:2] == b"\xff\xd8"
        other.request("GET", "/", headers={"Accept": "text/html"})
        assert b"<img" in other.getresponse().read()
        other.close()
    # the client went away: the server's next write fails and the viewer leaves
    wait_for(lambda: hub.viewers == 0, what="the viewer to be cleaned up")
    wait_for(lambda: not capture_threads(hub.name), what="capture to stop after the idle time")


def test_viewer_of_a_still_screen_is_cleaned_up_too(hubs: Callable[..., Broadcaster], live_server: Any) -> None:
    source = StepSource()
    hub = hubs(source, keepalive=0.2)
    server = live_server(make_app(hub))
    source.step()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/stream")
    response = connection.getresponse()
    read_parts(response, 1)
    assert hub.viewers == 1
    response.close()
    connection.close()
    # nothing new to send, but the frame is sent again after `keepalive`: the write fails
    wait_for(lambda: hub.viewers == 0, what="the viewer of a still screen to be cleaned up")
    assert hub.frames_encoded == 1


def test_sixteen_viewers_all_receive_frames(hubs: Callable[..., Broadcaster], live_server: Any) -> None:
    hub = hubs(PatternSource(), fps=30)
    server = live_server(make_app(hub))
    received = [0] * 16
    errors: list[BaseException] = []

    def watch(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/stream")
            response = connection.getresponse()
            received[index] = len(read_parts(response, 3))
            response.close()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors and received == [3] * 16
    assert len(capture_threads(hub.name)) <= 1
    wait_for(lambda: hub.viewers == 0, what="all viewers to leave")


def test_head_of_the_stream_counts_no_viewer(hubs: Callable[..., Broadcaster], live_server: Any) -> None:
    hub = hubs(PatternSource())
    server = live_server(make_app(hub))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("HEAD", "/stream")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("multipart/x-mixed-replace")
    connection.close()
    assert hub.viewers == 0 and not hub.capturing


# -- the command line --------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.screencast", "--port", str(free_port()), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )


def unused_display() -> str:
    for number in range(400, 500):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return f":{number}"
    pytest.skip("no unused X display number")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY matters on Linux only")
@pytest.mark.parametrize("display", [None, "unused"], ids=["no-DISPLAY", "DISPLAY-without-server"])
def test_no_screen_is_one_line_and_exit_status_2(display: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display:
        env["DISPLAY"] = unused_display()
    result = run_cli(env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Xvfb" in lines[0] and "--source pattern" in lines[0]


def test_cli_serves_the_pattern_without_a_screen() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.screencast", "--port", str(port), "--source", "pattern", "--fps", "20"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/snapshot.jpg")
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type") == "image/jpeg"
        assert Image.open(io.BytesIO(response.read())).size == (640, 360)
        connection.close()
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


NO_PILLOW = "import runpy, sys; sys.modules['PIL'] = None; runpy.run_module('examples.screencast', run_name='__main__')"


def test_without_pillow_help_works_and_serving_is_one_line() -> None:
    helped = subprocess.run([sys.executable, "-c", NO_PILLOW, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0 and "--source" in helped.stdout, helped.stderr
    result = subprocess.run([sys.executable, "-c", NO_PILLOW, "--source", "pattern"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "screencast: needs Pillow and mss, not installed here (import of PIL halted; None in sys.modules):"
        " pip install '.[examples]'"
    ]


def test_page_says_still_and_escapes_what_it_inserts(hubs: Callable[..., Broadcaster]) -> None:
    page = make_client(make_app(hubs(PatternSource()))).get("/", extra_environ={"SCRIPT_NAME": "/a&b"}).text
    # url_for already percent-encodes; the page escapes again for where each
    # URL lands (an HTML attribute; a JSON string inside <script>)
    assert 'src="/a%26b/stream"' in page
    assert 'fetch("/a%26b/stats", ' in page
    assert 'stats.capturing && stats.fps < 1 ? "still"' in page


def test_settings_come_from_the_environment_and_the_command_line_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.screencast.__main__ import parse

    monkeypatch.setenv("SCREENCAST_FPS", "60")
    monkeypatch.setenv("SCREENCAST_TIMEOUT", "5")
    monkeypatch.setenv("SCREENCAST_WIDTH", "1280")
    args = parse(["--fps", "24"])
    assert (args.fps, args.timeout, args.width, args.quality) == (24.0, 5.0, 1280, 70)


def test_a_malformed_setting_is_one_message_and_exit_status_2() -> None:
    env = dict(os.environ, SCREENCAST_FPS="fast")
    result = run_cli("--source", "pattern", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "SCREENCAST_FPS: got 'fast'; expected a finite number" in result.stderr


# -- the example's README says what the code does ---------------------------------------------

EXAMPLE_README = (ROOT / "examples" / "screencast" / "README.md").read_text(encoding="utf-8")


def test_readme_stats_sample_has_every_field_stats_gives(hubs: Callable[..., Broadcaster]) -> None:
    import json

    sample = EXAMPLE_README.split("$ curl -s http://127.0.0.1:8000/stats", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    shown = json.loads(sample)
    stats = make_client(make_app(hubs(PatternSource()))).get("/stats").json
    assert list(shown) == list(stats)
    for key in ("latency_ms", "handoff_ms", "cpu_seconds", "cpu_ms_per_run"):
        assert list(shown[key]) == list(stats[key])


def test_readme_options_table_lists_every_option_and_variable() -> None:
    from examples.screencast.settings import PREFIX, ScreencastSettings
    from restkit.settings import describe

    table = EXAMPLE_README.split("| option | variable | default | meaning |", 1)[1].split("\n\n", 1)[0]
    helped = subprocess.run([sys.executable, "-m", "examples.screencast", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30).stdout
    variables = [line.split()[0] for line in describe(ScreencastSettings, PREFIX).splitlines()[1:]]
    for variable in variables:
        option = "--" + variable.removeprefix(PREFIX).lower()
        assert f"`{option}`" in table and f"`{variable}`" in table, variable
        assert option in helped and variable in helped


def test_readme_stream_error_example_is_what_the_app_says(hubs: Callable[..., Broadcaster]) -> None:
    import json

    shown = json.loads(EXAMPLE_README.split("A value out of range, or another parameter, is `400 ", 1)[1].split("`", 1)[0])
    assert make_client(make_app(hubs(PatternSource()))).get("/stream?fps=0", status=400).json == shown


def test_readme_stream_choices_example_is_served(hubs: Callable[..., Broadcaster], live_server: Any) -> None:
    path = EXAMPLE_README.split("| `GET /stream?", 1)[1].split("`", 1)[0]
    hub = hubs(PatternSource(), fps=30)
    server = live_server(make_app(hub))
    with streaming(server.port, f"/stream?{path}") as response:
        (_, body), = read_parts(response, 1)
        assert Image.open(io.BytesIO(body)).width == int(path.split("width=")[1].split("&")[0])
