"""Screen capture shared by every viewer: sources and the broadcaster.

Theory of operation
-------------------
One :class:`Broadcaster` owns at most one capture thread.  The thread grabs
a picture from its :class:`Source`, skips it when its raw pixels equal the
previous grab's (an unchanged screen is not re-encoded), encodes it as JPEG
once, and *publishes* it: under one :class:`threading.Condition` it replaces
the newest :class:`Frame` (with the next sequence number) and wakes every
waiting viewer.

A viewer is a generator (:meth:`Broadcaster.frames`).  It waits on the same
condition for a frame whose sequence number is above the last one it sent,
then sends it *outside* the lock.  So the capture thread never waits for a
viewer and never walks a collection of viewers (only a counter is kept); a
slow viewer that comes back finds the newest frame and skips the ones in
between; every viewer sends the same ``bytes`` object.  When nothing new
arrives for ``keepalive`` seconds the newest frame is sent again, so a
viewer of a still screen still notices that its client went away.

The thread starts with the first viewer or snapshot and stops ``idle``
seconds after the last viewer left.  That decision is taken under the lock,
so a viewer that arrives at that moment starts a new thread instead of
waiting for a dead one.  Grabbers (``mss`` handles) belong to the thread
that opened them: each capture thread opens its own and closes it on exit.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from PIL import Image, ImageDraw

__all__ = [
    "Broadcaster",
    "CaptureError",
    "Frame",
    "Grabber",
    "NoScreenError",
    "PatternSource",
    "RawImage",
    "ScreenSource",
    "Source",
    "encode_jpeg",
]

logger = logging.getLogger("examples.screencast")

FPS_WINDOW = 3.0  # seconds over which the published frame rate is measured


class CaptureError(Exception):
    """Capturing failed (the display went away, say)."""


class NoScreenError(CaptureError):
    """There is no screen to capture; the message says how to get one."""


class RawImage(NamedTuple):
    """Pixels as a source grabbed them: a buffer Pillow's ``raw`` decoder reads."""

    data: bytes | bytearray
    size: tuple[int, int]
    rawmode: str  # "BGRX" from mss, "RGB" from Pillow


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded picture, shared by every viewer."""

    seq: int
    jpeg: bytes
    width: int
    height: int


class Grabber(Protocol):
    """Grabs pictures; used only by the thread that opened it."""

    def grab(self) -> RawImage: ...

    def close(self) -> None: ...


class Source(Protocol):
    """Something to capture; :meth:`open` runs in the capture thread."""

    name: str

    def open(self) -> Grabber:
        """A new grabber for the calling thread.

        Its ``grab()`` must return a fresh buffer each time: the capture
        thread keeps the previous one to tell whether the screen changed.

        Raises:
            NoScreenError: there is nothing to capture here.
        """
        ...


def encode_jpeg(raw: RawImage, quality: int, width: int | None = None) -> tuple[bytes, int, int]:
    """``(jpeg, width, height)`` of ``raw``, downscaled to ``width`` (aspect kept) when given.

    ``frombuffer`` reads the grabbed buffer in place (no RGB copy), and the
    downscale uses a bilinear filter, a fraction of the cost of Lanczos.
    """
    image = Image.frombuffer("RGB", raw.size, raw.data, "raw", raw.rawmode, 0, 1)
    if width and width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue(), image.width, image.height


# -- sources ----------------------------------------------------------------------


class ScreenSource:
    """A monitor of the local screen, grabbed with ``mss``.

    Args:
        monitor: 1 for the first monitor, 2 for the second...; 0 for all of them.
    """

    name = "screen"

    def __init__(self, monitor: int = 1) -> None:
        self.monitor = monitor

    def open(self) -> Grabber:
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            raise NoScreenError(
                "no screen to capture: DISPLAY is not set. Run under a desktop session or Xvfb "
                "(e.g. xvfb-run -s '-screen 0 1920x1080x24' python -m examples.screencast), or use --source pattern"
            )
        try:
            import mss
        except ImportError:
            raise NoScreenError("mss is not installed (pip install mss), or use --source pattern") from None
        factory: Any = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 deprecates mss.mss()
        try:
            handle = factory()
        except Exception as exc:  # mss raises ScreenShotError, ctypes may raise OSError
            display = os.environ.get("DISPLAY", "")
            raise NoScreenError(
                f"cannot open the screen{f' (DISPLAY={display})' if display else ''}: {exc}. "
                "Run under a desktop session or Xvfb (e.g. xvfb-run), or use --source pattern"
            ) from None
        monitors = handle.monitors
        if not 0 <= self.monitor < len(monitors):
            handle.close()
            raise NoScreenError(f"there is no monitor {self.monitor}; this screen has monitors 1 to {len(monitors) - 1}")
        return _ScreenGrabber(handle, dict(monitors[self.monitor]))


class _ScreenGrabber:
    def __init__(self, handle: Any, area: dict[str, int]) -> None:
        self._handle = handle
        self._area = area

    def grab(self) -> RawImage:
        shot = self._handle.grab(self._area)
        return RawImage(shot.raw, (shot.width, shot.height), "BGRX")  # .raw: no copy, unlike .bgra

    def close(self) -> None:
        self._handle.close()


class PatternSource:
    """A synthetic moving test picture (a sweeping bar and a frame counter)."""

    name = "pattern"

    def __init__(self, width: int = 640, height: int = 360) -> None:
        self.size = (width, height)
        background = Image.linear_gradient("L").resize(self.size).convert("RGB")
        ImageDraw.Draw(background).rectangle((0, 0, width - 1, height - 1), outline=(255, 255, 255), width=3)
        self._background = background

    def open(self) -> Grabber:
        return _PatternGrabber(self._background)


class _PatternGrabber:
    def __init__(self, background: Image.Image) -> None:
        self._background = background
        self._count = 0

    def grab(self) -> RawImage:
        self._count += 1
        image = self._background.copy()
        width, height = image.size
        draw = ImageDraw.Draw(image)
        x = (self._count * 8) % width
        draw.rectangle((x, 0, x + width // 16, height - 1), fill=(230, 60, 40))
        draw.text((16, 16), f"frame {self._count}", fill=(255, 255, 0), font_size=max(12, height // 10))
        return RawImage(image.tobytes(), image.size, "RGB")

    def close(self) -> None:
        pass


# -- the broadcaster ------------------------------------------------------------------


class Broadcaster:
    """One capture thread serving any number of viewers with the newest frame.

    Args:
        source: what to capture.
        fps: grabs per second at most; 0 grabs as fast as possible.
        quality: JPEG quality, 1-95.
        width: downscale to this width (aspect ratio kept); None keeps the size.
        idle: seconds capture goes on after the last viewer left.
        keepalive: seconds after which a viewer re-sends the newest frame if
            nothing new came (a still screen), so a gone client is noticed.
        name: the capture thread's name.
    """

    def __init__(
        self,
        source: Source,
        *,
        fps: float = 30.0,
        quality: int = 70,
        width: int | None = None,
        idle: float = 10.0,
        keepalive: float = 1.0,
        name: str = "screencast-capture",
    ) -> None:
        if fps < 0:
            raise ValueError("fps must be 0 (as fast as possible) or more")
        if not 1 <= quality <= 100:
            raise ValueError("quality must be between 1 and 100")
        if width is not None and width < 1:
            raise ValueError("width must be positive")
        if idle < 0:
            raise ValueError("idle must be 0 or more seconds")
        self.source = source
        self.fps = fps
        self.quality = quality
        self.width = width
        self.idle = idle
        self.keepalive = keepalive
        self.name = name
        self._cond = threading.Condition()
        # Everything below is guarded by self._cond.
        self._frame: Frame | None = None  # newest frame of the current capture run
        self._seq = 0
        self._viewers = 0
        self._last_active = time.monotonic()
        self._thread: threading.Thread | None = None
        self._run_started = 0.0
        self._error: str | None = None
        self._closed = False
        self._size = (0, 0)
        self._published: deque[float] = deque(maxlen=4096)
        self.frames_captured = 0  # pictures grabbed
        self.frames_encoded = 0  # grabbed pictures that changed, encoded and published
        self.frames_sent = 0  # frames handed to viewers

    # -- viewers ------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        with self._cond:
            return self._viewers

    @property
    def capturing(self) -> bool:
        with self._cond:
            return self._thread is not None

    @property
    def thread(self) -> threading.Thread | None:
        """The running capture thread, if any."""
        with self._cond:
            return self._thread

    def frames(self) -> Generator[Frame, None, None]:
        """Yield the newest frame each time there is a new one, for one viewer.

        The viewer is counted from the first ``next()`` until the generator
        is closed (or ends, when capture fails or the broadcaster closes).
        """
        with self._cond:
            if self._closed:
                return
            self._viewers += 1
            self._start_locked()
        try:
            last = 0
            while True:
                with self._cond:
                    frame = self._wait_locked(last)
                    if frame is None:
                        return
                    self.frames_sent += 1
                last = frame.seq
                yield frame
        finally:
            with self._cond:
                self._viewers -= 1
                self._last_active = time.monotonic()

    def _wait_locked(self, last: int) -> Frame | None:
        """The newest frame once it is newer than ``last`` (or the same one
        after ``keepalive`` seconds); None when capture stopped for good."""
        deadline = time.monotonic() + self.keepalive
        while True:
            if self._closed or self._error is not None:
                return None
            frame = self._frame
            if frame is not None and (frame.seq > last or time.monotonic() >= deadline):
                return frame
            timeout = deadline - time.monotonic()
            self._cond.wait(timeout if timeout > 0 else self.keepalive)

    def snapshot(self, timeout: float = 5.0) -> Frame:
        """The current frame, starting capture (for ``idle`` seconds) if needed.

        Raises:
            CaptureError: capture failed or gave no frame within ``timeout``.
        """
        with self._cond:
            self._last_active = time.monotonic()
            self._start_locked()
            ready = self._cond.wait_for(
                lambda: self._closed or self._error is not None or self._frame is not None, timeout
            )
            if self._frame is None or not ready:
                raise CaptureError(self._error or "no frame captured in time")
            return self._frame

    def _start_locked(self) -> None:
        if self._closed or self._thread is not None:
            return
        self._error = None
        self._frame = None  # a frame from an earlier run is stale
        self._published.clear()
        self._run_started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    # -- the capture thread -----------------------------------------------------

    def _run(self) -> None:
        me = threading.current_thread()
        try:
            grabber = self.source.open()
        except Exception as exc:
            self._stop_run(me, str(exc))
            logger.error("screencast: %s", exc)
            return
        error: str | None = None
        try:
            self._capture(grabber)
        except Exception as exc:
            logger.exception("screencast: capture failed")
            error = f"capture failed: {exc}"
        finally:
            try:
                grabber.close()
            finally:
                self._stop_run(me, error)

    def _stop_run(self, me: threading.Thread, error: str | None) -> None:
        with self._cond:
            if self._thread is me:
                self._thread = None
            if error is not None:
                self._error = error
            self._cond.notify_all()

    def _capture(self, grabber: Grabber) -> None:
        cond = self._cond
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        previous: bytes | bytearray | None = None
        due = time.monotonic()
        while True:
            with cond:
                # Decide to stop under the lock: a viewer arriving after this
                # sees _thread None and starts a new run.  A run publishes at
                # least one frame, so a snapshot gets one even with idle=0.
                idle = self._viewers == 0 and time.monotonic() - self._last_active >= self.idle
                if self._closed or (idle and self._frame is not None):
                    self._thread = None
                    return
            raw = grabber.grab()
            if raw.data != previous:  # memcmp; an unchanged screen is not encoded again
                previous = raw.data
                jpeg, width, height = encode_jpeg(raw, self.quality, self.width)
                with cond:
                    self._seq += 1
                    self._frame = Frame(self._seq, jpeg, width, height)
                    self._size = (width, height)
                    self._published.append(time.monotonic())
                    self.frames_encoded += 1
                    self.frames_captured += 1
                    cond.notify_all()
            else:
                with cond:
                    self.frames_captured += 1
            if period:
                due += period
                delay = due - time.monotonic()
                if delay > 0:
                    with cond:
                        cond.wait_for(lambda: self._closed, delay)
                elif delay < -period:
                    due = time.monotonic()  # far behind: start afresh rather than burst
                # a little late: grab now and keep the schedule, so jitter does not lower the rate

    # -- reporting and shutdown --------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters and settings, as ``GET /stats`` shows them."""
        with self._cond:
            now = time.monotonic()
            capturing = self._thread is not None
            fps = 0.0
            if capturing:
                span = min(FPS_WINDOW, now - self._run_started)
                recent = sum(1 for t in self._published if t >= now - FPS_WINDOW)
                fps = recent / span if span > 0.2 else 0.0
            frame = self._frame
            return {
                "viewers": self._viewers,
                "fps": round(fps, 1),
                "frames_captured": self.frames_captured,
                "frames_encoded": self.frames_encoded,
                "frames_sent": self.frames_sent,
                "frame_bytes": len(frame.jpeg) if frame is not None else 0,
                "width": self._size[0],
                "height": self._size[1],
                "quality": self.quality,
                "source": self.source.name,
                "capturing": capturing,
                "error": self._error,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Stop capturing and end every viewer's stream."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
