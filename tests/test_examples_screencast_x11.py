"""examples.screencast on a real X server (Xvfb) and in a real browser (headless Chromium).

The example runs as its users run it, ``python -m examples.screencast``, on
a private Xvfb screen painted with ``xsetroot -solid``.  Skipped with a
reason when Xvfb, xsetroot or Chromium is missing (``.ci/run`` installs the
Debian packages xvfb, x11-xserver-utils and chromium).
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Image = pytest.importorskip("PIL.Image", reason="the screencast example needs Pillow")
pytest.importorskip("mss", reason="capturing the screen needs mss")

from tests.browser import needs_chromium, run_chromium  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.test_examples_screencast import read_parts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 720
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)

needs_x = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xsetroot")),
    reason="needs Xvfb and xsetroot (Debian packages xvfb and x11-xserver-utils)",
)


def close_to(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Screen:
    """An Xvfb server on a display number it picked itself (``-displayfd``)."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile()
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{WIDTH}x{HEIGHT}x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=self.log,
        )
        os.close(write_end)
        # Xvfb writes the number, then a newline: read both before closing
        # the pipe, or its second write fails and Xvfb exits.
        data = b""
        deadline = time.monotonic() + 15
        try:
            while not data.endswith(b"\n") and time.monotonic() < deadline:
                ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(read_end, 32) if ready else b""
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(read_end)
        number = data.decode().strip()
        if not number.isdigit():
            self.close()
            pytest.fail(f"Xvfb did not start: {self.errors()}")
        self.display = f":{number}"
        self.env = dict(os.environ, DISPLAY=self.display)

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read()[-1000:].decode(errors="replace").strip()

    def paint(self, colour: str) -> None:
        for attempt in range(3):
            result = subprocess.run(["xsetroot", "-solid", colour], env=self.env, capture_output=True, text=True, timeout=10)
            if result.returncode == 0:
                return
            time.sleep(0.2)
        state = "running" if self.process.poll() is None else f"exited with status {self.process.returncode}"
        pytest.fail(f"xsetroot on {self.display} failed: {result.stderr.strip()}; Xvfb {state}: {self.errors()}")

    def close(self) -> None:
        stop(self.process)
        self.log.close()


class Screencast:
    """``python -m examples.screencast`` on ``screen``."""

    def __init__(self, screen: Screen, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.screencast", "--port", str(self.port), *args],
            cwd=ROOT, env=screen.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    stop(self.process)
                    pytest.fail(f"the screencast did not start (exit status {self.process.returncode})")
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        stop(self.process)


@pytest.fixture(scope="module")
def screen() -> Iterator[Screen]:
    if not (shutil.which("Xvfb") and shutil.which("xsetroot")):
        pytest.skip("needs Xvfb and xsetroot (Debian packages xvfb and x11-xserver-utils)")
    screen = Screen()
    try:
        yield screen
    finally:
        screen.close()


@pytest.fixture(scope="module")
def screencast(screen: Screen) -> Iterator[Screencast]:
    screen.paint("red")
    server = Screencast(screen, "--fps", "10", "--idle", "2")
    try:
        yield server
    finally:
        server.close()


def centre(jpeg: bytes) -> tuple[tuple[int, int], tuple[int, ...]]:
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return image.size, image.getpixel((image.width // 2, image.height // 2))


@needs_x
def test_stream_shows_the_screen_and_follows_it(screen: Screen, screencast: Screencast) -> None:
    screen.paint("red")
    connection = http.client.HTTPConnection("127.0.0.1", screencast.port, timeout=10)
    connection.request("GET", "/stream")
    response = connection.getresponse()
    try:
        assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=restkitframe"
        (headers, jpeg), = read_parts(response, 1)
        assert headers["content-type"] == "image/jpeg"
        size, pixel = centre(jpeg)
        assert size == (WIDTH, HEIGHT)
        assert close_to(pixel, RED), pixel

        screen.paint("blue")
        deadline = time.monotonic() + 10
        while not close_to(pixel, BLUE):
            assert time.monotonic() < deadline, f"the stream did not turn blue; last centre pixel {pixel}"
            (_, jpeg), = read_parts(response, 1)
            size, pixel = centre(jpeg)
            assert size == (WIDTH, HEIGHT)
    finally:
        response.close()
        connection.close()


@needs_x
def test_snapshot_is_the_screen(screen: Screen, screencast: Screencast) -> None:
    screen.paint("green")
    deadline = time.monotonic() + 10
    while True:  # the first snapshot may be the frame from before the repaint
        connection = http.client.HTTPConnection("127.0.0.1", screencast.port, timeout=10)
        connection.request("GET", "/snapshot.jpg")
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type") == "image/jpeg"
        size, pixel = centre(response.read())
        connection.close()
        assert size == (WIDTH, HEIGHT)
        if close_to(pixel, GREEN):
            break
        assert time.monotonic() < deadline, f"the snapshot did not turn green; centre pixel {pixel}"
        time.sleep(0.1)


@needs_x
def test_sixteen_viewers_of_a_changing_screen(screen: Screen, screencast: Screencast) -> None:
    done = threading.Event()

    def repaint() -> None:  # keep the screen changing while the viewers watch
        colours = ["red", "yellow", "blue", "white"]
        count = 0
        while not done.wait(0.1) and count < 200:
            screen.paint(colours[count % len(colours)])
            count += 1

    received = [0] * 16
    errors: list[BaseException] = []

    def watch(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", screencast.port, timeout=10)
        try:
            connection.request("GET", "/stream")
            response = connection.getresponse()
            for headers, jpeg in read_parts(response, 3):
                assert headers["content-type"] == "image/jpeg" and centre(jpeg)[0] == (WIDTH, HEIGHT)
                received[index] += 1
            response.close()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    painter = threading.Thread(target=repaint)
    painter.start()
    viewers = [threading.Thread(target=watch, args=(i,)) for i in range(16)]
    try:
        for viewer in viewers:
            viewer.start()
        for viewer in viewers:
            viewer.join(30)
    finally:
        done.set()
        painter.join(10)
    assert not errors, errors[0]
    assert received == [3] * 16


@needs_chromium
@needs_x
def test_browser_shows_the_stream(screen: Screen, screencast: Screencast, tmp_path: Path) -> None:
    screen.paint("green")
    time.sleep(0.3)  # at 10 fps the next frames are green
    shot = tmp_path / "page.png"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # headless: no X needed
    run_chromium(f"--screenshot={shot}", screencast.url + "/", tmp_path=tmp_path, size="800,600", budget_ms=3000, env=env)
    assert shot.exists(), "Chromium wrote no screenshot"
    page = Image.open(shot).convert("RGB")
    assert page.size == (800, 600)
    # the 1280x720 picture is scaled to the 800-pixel-wide window, below the header
    assert close_to(page.getpixel((400, 250)), GREEN), page.getpixel((400, 250))
    assert close_to(page.getpixel((100, 400)), GREEN), page.getpixel((100, 400))
    assert not close_to(page.getpixel((400, 590)), GREEN)  # under the picture: the page background


# -- 60 frames a second to 16 viewers, slow viewers, stopped readers ----------------------------

PALETTE = {"red": RED, "green": GREEN, "blue": BLUE, "white": (255, 255, 255), "black": (0, 0, 0)}


class RootPainter:
    """Paints the root window through Xlib itself: hundreds of changes a second, no process each."""

    def __init__(self, display: str) -> None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("X11")
        if name is None:
            pytest.skip("needs libX11 (Debian package libx11-6, which x11-xserver-utils brings)")
        lib = ctypes.CDLL(name)
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XDefaultRootWindow.restype = ctypes.c_ulong
        lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        lib.XSetWindowBackground.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        lib.XClearWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        lib.XCreatePixmapFromBitmapData.restype = ctypes.c_ulong
        lib.XCreatePixmapFromBitmapData.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_uint,
                                                    ctypes.c_uint, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_uint]
        lib.XSetWindowBackgroundPixmap.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        lib.XFreePixmap.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        lib.XDefaultDepth.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.XDefaultScreen.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.dpy = lib.XOpenDisplay(display.encode())
        if not self.dpy:
            pytest.fail(f"cannot open {display} with Xlib")
        self.root = lib.XDefaultRootWindow(self.dpy)
        self.depth = lib.XDefaultDepth(self.dpy, lib.XDefaultScreen(self.dpy))
        self.bits = os.urandom(256 * 256 // 8)  # a 256x256 tile of random pixels

    def paint_noise(self, rgb: tuple[int, int, int]) -> None:
        """Random pixels of ``rgb`` on black: a picture that makes large JPEGs (about 0.5 MB)."""
        lib = self.lib
        pixmap = lib.XCreatePixmapFromBitmapData(self.dpy, self.root, self.bits, 256, 256,
                                                 (rgb[0] << 16) | (rgb[1] << 8) | rgb[2], 0, self.depth)
        lib.XSetWindowBackgroundPixmap(self.dpy, self.root, pixmap)
        lib.XClearWindow(self.dpy, self.root)
        lib.XFreePixmap(self.dpy, pixmap)
        lib.XSync(self.dpy, 0)

    def paint(self, rgb: tuple[int, int, int]) -> None:
        self.lib.XSetWindowBackground(self.dpy, self.root, (rgb[0] << 16) | (rgb[1] << 8) | rgb[2])
        self.lib.XClearWindow(self.dpy, self.root)
        self.lib.XSync(self.dpy, 0)  # returns once the X server has done it

    def close(self) -> None:
        self.lib.XCloseDisplay(self.dpy)


class Cycling:
    """A thread that repaints the root window with the next colour every few milliseconds.

    ``noise``: random pixels of that colour, so that each frame is large
    (more than the kernel's socket buffers hold; see the slow viewer test).
    """

    def __init__(self, display: str, *, noise: bool = False) -> None:
        self.noise = noise
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(display,), daemon=True)
        self.thread.start()

    def _run(self, display: str) -> None:
        painter = RootPainter(display)
        try:
            level = 0
            while not self.stop.wait(0.004):
                level = (level + 7) % 256
                (painter.paint_noise if self.noise else painter.paint)((level, 255 - level, 128))
        finally:
            painter.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


class ColourBook:
    """The colour name at the centre of each frame number, decoded once for every reader."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def name(self, seq: int, jpeg: bytes) -> str:
        with self._lock:
            if seq in self._names:
                return self._names[seq]
        image = Image.open(io.BytesIO(jpeg))
        image.draft("RGB", (image.width // 8, image.height // 8))
        pixel = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
        name = next((n for n, rgb in PALETTE.items() if close_to(pixel, rgb)), "other")
        with self._lock:
            self._names[seq] = name
        return name


def network_like(sock: socket.socket) -> None:
    """Make a loopback connection buffer what one over a network would.

    Over loopback the segment size is 64 KiB, and Linux sizes the server's
    send buffer from it: 4 MiB at once, tens of frames that a slow reader
    then reads seconds late, whatever the server does above the socket.
    An Ethernet-sized segment (1460 bytes) gives the server a send buffer
    of about 200 KB, as on a real link; a small receive buffer does the same
    on this side.  (A server could bound it for any link with
    ``TCP_NOTSENT_LOWAT``; restkit's does not set it.)
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)


class Reader(threading.Thread):
    """A viewer of ``/stream``: the frame number and colour of every part it reads, and when.

    ``pause`` seconds after each part make it a slow reader; ``link``
    makes its connection look like one over a network (see :func:`network_like`).
    """

    def __init__(self, port: int, book: ColourBook | None = None, *, pause: float = 0.0, link: bool = False) -> None:
        super().__init__(daemon=True)
        self.port, self.book, self.pause, self.link = port, book, pause, link
        self.parts: list[tuple[int, str]] = []  # (X-Frame, colour name or "")
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        sock = socket.socket()
        try:
            if self.link:
                network_like(sock)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(b"GET /stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")  # 1.0: no chunked framing
            stream = sock.makefile("rb")
            while stream.readline() not in (b"\r\n", b""):  # the response head
                pass
            while not self.done.is_set():
                headers = {}
                while (line := stream.readline()) != b"\r\n" or not headers:
                    if not line:
                        raise ConnectionError("the stream ended")
                    name, _, value = line.decode("latin-1").partition(":")
                    if value:
                        headers[name.strip().lower()] = value.strip()
                jpeg = stream.read(int(headers["content-length"]))
                seq = int(headers["x-frame"])
                self.parts.append((seq, self.book.name(seq, jpeg) if self.book else ""))
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by the test, unless it stopped us
            if not self.done.is_set():
                self.error = exc
        finally:
            sock.close()

    @property
    def colour(self) -> str:
        return self.parts[-1][1] if self.parts else ""

    def stop(self) -> None:
        self.done.set()
        self.join(15)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def viewers_now(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/stats")
        return int(json.loads(connection.getresponse().read())["viewers"])
    finally:
        connection.close()


@pytest.fixture(scope="module")
def fast(screen: Screen) -> Iterator[Screencast]:
    """The screencast at 60 fps, dropping a viewer that takes nothing for 2 s."""
    server = Screencast(screen, "--fps", "60", "--idle", "2", "--timeout", "2")
    try:
        yield server
    finally:
        server.close()


@needs_x
def test_sixteen_viewers_at_60_fps_follow_the_screen(screen: Screen, fast: Screencast) -> None:
    painter = RootPainter(screen.display)
    book = ColourBook()
    readers = [Reader(fast.port, book) for _ in range(16)]
    try:
        for reader in readers:
            reader.start()
        order = ["red", "blue", "green", "white"]
        for name in order:
            painter.paint(PALETTE[name])
            wait_until(lambda name=name: all(r.colour == name or r.error for r in readers), 30, f"every viewer to show {name}")
    finally:
        for reader in readers:
            reader.stop()
        painter.close()
    for reader in readers:
        assert reader.error is None, reader.error
        seqs = [seq for seq, _ in reader.parts]
        assert seqs == sorted(seqs)  # never an older frame after a newer one
        shown = [name for index, (_, name) in enumerate(reader.parts) if index == 0 or reader.parts[index - 1][1] != name]
        assert shown[-4:] == order, shown  # each colour in the order painted, none coming back


@needs_x
def test_a_slow_viewer_gets_the_newest_frames_and_holds_back_no_one(screen: Screen, fast: Screencast) -> None:
    cycling = Cycling(screen.display, noise=True)
    fast_readers = [Reader(fast.port) for _ in range(4)]
    slow = Reader(fast.port, pause=0.3, link=True)  # takes a part, then rests: 3 a second at most
    try:
        for reader in [*fast_readers, slow]:
            reader.start()
        wait_until(lambda: len(slow.parts) >= 15 or slow.error, 60, "the slow viewer to read 15 parts")
    finally:
        for reader in [*fast_readers, slow]:
            reader.stop()
        cycling.close()
    assert slow.error is None and not any(r.error for r in fast_readers)
    received = len(slow.parts)
    for reader in fast_readers:
        assert len(reader.parts) >= 3 * received, (len(reader.parts), received)
    seqs = [seq for seq, _ in slow.parts]
    fast_seqs = [seq for seq, _ in fast_readers[0].parts]
    # Frames are dropped for the slow viewer alone: it skips numbers, and
    # it moves through the stream about as far as the fast ones did,
    # although it read a few times fewer frames (a queue would fall behind).
    skipped = sum(1 for a, b in itertools.pairwise(seqs) if b - a > 1)
    assert skipped >= len(seqs) // 2, seqs
    assert seqs[-1] - seqs[0] >= (fast_seqs[-1] - fast_seqs[0]) // 2, (seqs, fast_seqs[0], fast_seqs[-1])


@needs_x
def test_a_viewer_that_stops_reading_is_dropped_after_the_timeout(screen: Screen, fast: Screencast) -> None:
    cycling = Cycling(screen.display)  # the stream flows, so the stopped reader's buffers fill
    sock = socket.socket()
    try:
        wait_until(lambda: viewers_now(fast.port) == 0, 30, "the earlier viewers to leave")
        network_like(sock)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", fast.port))
        sock.sendall(b"GET /stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(100).split(b"\r\n", 1)[0].endswith(b" 200 OK")
        wait_until(lambda: viewers_now(fast.port) == 1, 10, "the viewer to be counted")
        # ...and it reads nothing more: --timeout 2 cuts it once its buffers are full
        wait_until(lambda: viewers_now(fast.port) == 0, 60, "the stopped viewer to be dropped")
        other = Reader(fast.port)  # the others are served as before
        other.start()
        wait_until(lambda: len(other.parts) >= 3 or other.error, 30, "a new viewer's frames")
        other.stop()
        assert other.error is None
    finally:
        cycling.close()
    ended = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not ended:
            ended = sock.recv(1 << 16) == b""  # what the kernel held, then the end
    except ConnectionResetError:
        ended = True
    finally:
        sock.close()
    assert ended, "the server did not close the stopped viewer's connection"
