"""examples.screencast on a real X server (Xvfb) and in a real browser (headless Chromium).

The example runs as its users run it, ``python -m examples.screencast``, on
a private Xvfb screen painted with ``xsetroot -solid``.  Skipped with a
reason when Xvfb, xsetroot or Chromium is missing (``.ci/run`` installs the
Debian packages xvfb, x11-xserver-utils and chromium).
"""

from __future__ import annotations

import http.client
import io
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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
