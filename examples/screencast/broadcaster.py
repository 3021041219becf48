"""One capture thread serving any number of viewers with the newest frame.

Theory of operation
-------------------
Three stages, each never waiting for the next:

1. **Grab** (the capture thread, at ``fps`` grabs a second at most): the
   source's picture is compared with the previous grab (one ``memcmp``);
   an unchanged screen stops there.  A changed one is converted to RGB once
   and *published* as the newest :class:`Grab` under the broadcaster's
   lock, which wakes one waiting viewer of each variant.  The capture
   thread never waits for an encoder or a viewer and never walks a list of
   viewers (only of the variants being watched, usually one).
2. **Encode** (on demand, in the thread of the first viewer that wants
   it): a *variant* is a ``(width, quality)`` pair; the first viewer that
   finds the newest grab not yet encoded in its variant marks the variant
   busy, encodes outside the lock (into a memory file, for which Pillow
   releases the GIL: see :func:`.capture.encode_image`; so the next grab
   and the other viewers' sends go on meanwhile, on the other core: the
   encode of frame N+1 overlaps the sending of frame N), and publishes the
   :class:`Frame`, which wakes the other viewers of that variant: they
   share the same bytes, and each wakes once a frame.  A variant nobody
   watches is never encoded, and one watched only at 5 frames a second is
   encoded 5 times a second.
3. **Send** (restkit's server): a viewer is a generator
   (:meth:`Broadcaster.frames`) that the server pulls only when the
   viewer's client has taken the previous frame.  A pull returns the
   newest frame of the viewer's variant, so a slow viewer skips what it had
   no time for (frames dropped for it alone), and holds at most the unsent
   rest of one frame.

Each frame is framed once as a multipart part (:attr:`Frame.part`), shared
by every viewer.  Its ``X-Clock`` header says where its time went (grab
start, published, encoding start, encoded, on the server's
``time.monotonic()``: a client on the same machine, the benchmark, can
compare them with its own clock); ``/stats`` adds the frames' age and
hand-off (encoded to handed to a viewer's connection).  When nothing new
arrives for ``keepalive`` seconds a viewer sends its newest frame again (a
still screen), so a gone client is noticed and a browser shows the last
part.

The capture thread starts with the first viewer or snapshot and stops
``idle`` seconds after the last viewer left.  That decision is taken under
the lock, so a viewer that arrives at that moment starts a new thread
instead of waiting for a dead one.  Grabbers (``mss`` handles) belong to
the thread that opened them: each capture thread opens its own.

State lives in the broadcaster object, in one process: under ``--workers
N`` or gunicorn every worker process captures on its own (N capture
threads); on several hosts each captures its own screen.  Run one process
and spread viewers over relays (:mod:`.relay`) instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .capture import CaptureError, Grabber, Source, encode_image, to_image
from .meter import LatencyWindow, RateWindow, StageClock

__all__ = ["BOUNDARY", "Broadcaster", "Frame", "Grab", "first_part"]

logger = logging.getLogger("examples.screencast")

BOUNDARY = "restkitframe"
_DELIMITER = f"--{BOUNDARY}\r\n".encode("ascii")
STAGES = ("grab", "compare", "convert", "encode")


def first_part() -> bytes:
    """What a stream starts with: the delimiter that opens the first part."""
    return _DELIMITER


@dataclass(frozen=True, slots=True)
class Grab:
    """A grabbed picture that differs from the one before, converted once."""

    seq: int
    image: Image.Image  # RGB
    started: float  # time.monotonic() when the grab began: the screen is at least this old
    published: float = 0.0  # time.monotonic() when it was converted and handed to the encoders


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded picture, shared by every viewer of its variant."""

    seq: int  # the Grab's
    jpeg: bytes
    width: int
    height: int
    grabbed: float = 0.0  # the Grab's start time
    part: bytes = b""  # the multipart part: headers, JPEG, and the next part's delimiter
    encoded: float = 0.0  # time.monotonic() when its JPEG was ready


def _frame(grab: Grab, quality: int, width: int | None) -> Frame:
    encoding = time.monotonic()
    jpeg, w, h = encode_image(grab.image, quality, width)
    encoded = time.monotonic()
    # PERF: the part is framed here once and shared: multipart_stream would
    # copy delimiter, head and JPEG into one bytes per viewer per frame
    # (a 240 KB copy, 16 times a frame at 16 viewers).  The delimiter goes
    # after the JPEG, not before the next one, so a browser shows the
    # picture as soon as it has it instead of when the next one starts.
    # X-Clock: where the frame's time went (the server's time.monotonic(), comparable
    # on the same machine only): grab start, published, encoding start, encoded.
    head = b"Content-Type: image/jpeg\r\nX-Frame: %d\r\nX-Clock: %.6f %.6f %.6f %.6f\r\nContent-Length: %d\r\n\r\n" % (
        grab.seq, grab.started, grab.published, encoding, encoded, len(jpeg))
    return Frame(grab.seq, jpeg, w, h, grab.started, b"".join((head, jpeg, b"\r\n", _DELIMITER)), encoded)


Key = tuple[int | None, int]  # a variant: (width or None for the full size, quality)


class _Variant:
    """The newest frame of one width and quality, and the viewers waiting for the next.

    ``ready`` shares the broadcaster's lock.  A new grab wakes *one* waiter
    (it encodes), and the encoded frame wakes them all: each viewer wakes
    once a frame, whatever the number of viewers.
    """

    __slots__ = ("encoding", "frame", "ready", "watchers")

    def __init__(self, lock: threading.RLock) -> None:
        self.frame: Frame | None = None
        self.encoding = False  # a viewer is encoding the newest grab for this variant
        self.watchers = 0
        self.ready = threading.Condition(lock)


class Broadcaster:
    """One capture thread serving any number of viewers with the newest frame.

    Args:
        source: what to capture.
        fps: grabs per second at most; 0 grabs as fast as possible.
        quality: the default JPEG quality, 1-95.
        width: the default width to downscale to (aspect ratio kept); None keeps the size.
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
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # capture starts and stops, the first grab
        # Set with _closed: paced waits (the capture's, a viewer's ?fps=) sleep on
        # it rather than on the condition, which wakes at every grab and encoding.
        self._closing = threading.Event()
        # Everything below is guarded by self._cond.
        self._grab: Grab | None = None  # newest changed picture of the current run
        self._variants: dict[Key, _Variant] = {}  # those being watched (or snapshot)
        self._seq = 0
        self._viewers = 0
        self._last_active = time.monotonic()
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._closed = False
        self._size = (0, 0)
        self._published = RateWindow()
        self._latency = LatencyWindow()  # grab start to handed to a viewer's connection
        self._handoff = LatencyWindow()  # encoded to handed to a viewer's connection
        self._clock = StageClock(STAGES)
        self.frames_captured = 0  # pictures grabbed
        self.frames_changed = 0  # grabs that differed from the one before (published)
        self.frames_encoded = 0  # JPEGs made, all variants together
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

    def frames(
        self, *, fps: float | None = None, width: int | None = None, quality: int | None = None
    ) -> Generator[Frame, None, None]:
        """Yield the newest frame each time there is a new one, for one viewer.

        Args:
            fps: at most this many frames a second to this viewer (never
                more than the capture's rate); None: every new frame.
            width, quality: this viewer's variant; None: the broadcaster's.

        The viewer is counted from the first ``next()`` until the generator
        is closed (or ends, when capture fails or the broadcaster closes).
        """
        key = self._variant(width, quality)
        period = 1.0 / fps if fps else 0.0
        with self._cond:
            if self._closed:
                return
            self._viewers += 1
            variant = self._watch_locked(key)
            self._start_locked()
        try:
            last = 0
            due = time.monotonic()
            while True:
                if period:
                    due = self._pace(due, period)
                frame = self._next_frame(variant, key, last, viewer=True)
                if frame is None:
                    return
                last = frame.seq
                yield frame
        finally:
            with self._cond:
                self._viewers -= 1
                self._last_active = time.monotonic()
                self._unwatch_locked(key, variant)

    def _watch_locked(self, key: Key) -> _Variant:
        variant = self._variants.get(key)
        if variant is None:
            variant = self._variants[key] = _Variant(self._lock)
        variant.watchers += 1
        return variant

    def _unwatch_locked(self, key: Key, variant: _Variant) -> None:
        variant.watchers -= 1
        if not variant.watchers and key != self._variant(None, None) and self._variants.get(key) is variant:
            del self._variants[key]  # nobody watches it: its frame is forgotten (the default's serves snapshots)

    def _variant(self, width: int | None, quality: int | None) -> Key:
        width = self.width if width is None else width
        with self._cond:
            screen_width = self._size[0]
        if width is not None and screen_width and width >= screen_width:
            width = None  # no upscaling: the full-size variant
        return width, quality or self.quality

    def _pace(self, due: float, period: float) -> float:
        """Wait until ``due`` (a viewer's own frame rate); the next due time."""
        delay = due - time.monotonic()
        if delay > 0:
            self._closing.wait(delay)
        elif delay < -period:
            return time.monotonic() + period  # far behind (a slow client): start afresh rather than burst
        return due + period

    def _next_frame(self, variant: _Variant, key: Key, last: int, viewer: bool = False) -> Frame | None:
        """The newest frame of ``variant`` once it is newer than ``last`` (or the same one
        after ``keepalive`` seconds), encoding it if nobody has yet; None when capture stopped.

        ``viewer``: the frame goes to a viewer's connection now (it is counted, and its age
        measured, in the same hold of the lock that found it).
        """
        deadline = time.monotonic() + self.keepalive
        with self._lock:
            while True:
                if self._closed or self._error is not None:
                    return None
                grab, frame = self._grab, variant.frame
                stale = grab is not None and (frame is None or frame.seq < grab.seq)
                if stale and not variant.encoding:
                    variant.encoding = True  # this viewer encodes the newest grab for everyone
                    break
                if frame is not None and (frame.seq > last or time.monotonic() >= deadline):
                    # the newest that is ready (a newer one may be on its way)
                    return self._hand_locked(frame) if viewer else frame
                variant.ready.wait(max(0.001, deadline - time.monotonic()) if frame is not None else self.keepalive)
        assert grab is not None
        try:
            started = time.thread_time()
            frame = _frame(grab, key[1], key[0])
            spent = time.thread_time() - started
        except Exception as exc:
            logger.exception("screencast: encoding failed")
            with self._lock:
                variant.encoding = False
                self._error = f"encoding failed: {exc}"
                self._wake_all_locked()
            return None
        with self._lock:
            variant.encoding = False
            self._clock.add("encode", spent)
            self.frames_encoded += 1
            if variant.frame is None or variant.frame.seq < frame.seq:
                variant.frame = frame
            variant.ready.notify_all()
            return self._hand_locked(frame) if viewer else frame

    def _hand_locked(self, frame: Frame) -> Frame:
        """Count ``frame`` as handed to a viewer's connection, and measure its age.

        PERF: done in the lock hold that found the frame: after an encode
        wakes every viewer, a second hold each would double the hand-offs of
        the lock between the threads waking together.
        """
        self.frames_sent += 1
        now = time.monotonic()
        self._latency.add(now - frame.grabbed)
        self._handoff.add(now - frame.encoded)
        return frame

    def _wake_all_locked(self) -> None:
        """Wake every waiter: capture stopped, failed or closed."""
        self._cond.notify_all()
        for variant in self._variants.values():
            variant.ready.notify_all()

    def snapshot(self, timeout: float = 5.0) -> Frame:
        """The current frame (default variant), starting capture (for ``idle`` seconds) if needed.

        Raises:
            CaptureError: capture failed or gave no frame within ``timeout``.
        """
        with self._cond:
            self._last_active = time.monotonic()
            self._start_locked()
            ready = self._cond.wait_for(
                lambda: self._closed or self._error is not None or self._grab is not None, timeout
            )
            if self._grab is None or not ready:
                raise CaptureError(self._error or "no frame captured in time")
            key = self._variant(None, None)
            variant = self._watch_locked(key)
        try:
            frame = self._next_frame(variant, key, 0)
        finally:
            with self._cond:
                self._unwatch_locked(key, variant)
        if frame is None:
            raise CaptureError(self._error or "capture stopped")
        return frame

    def _start_locked(self) -> None:
        if self._closed or self._thread is not None:
            return
        self._error = None
        self._grab = None  # pictures from an earlier run are stale
        for variant in self._variants.values():
            variant.frame = None
        self._published.restart()
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
            self._wake_all_locked()

    def _capture(self, grabber: Grabber) -> None:
        cond = self._cond
        clock = self._clock
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        previous: bytes | bytearray | None = None
        due = time.monotonic()
        while True:
            with cond:
                # Decide to stop under the lock: a viewer arriving after this
                # sees _thread None and starts a new run.  A run publishes at
                # least one picture, so a snapshot gets one even with idle=0.
                idle = self._viewers == 0 and time.monotonic() - self._last_active >= self.idle
                if self._closed or (idle and self._grab is not None):
                    self._thread = None
                    return
            started, cpu0 = time.monotonic(), time.thread_time()
            raw = grabber.grab()
            cpu1 = time.thread_time()
            changed = raw.data != previous  # memcmp; an unchanged screen is not converted nor encoded
            cpu2 = time.thread_time()
            image = None
            if changed:
                previous = raw.data
                image = to_image(raw)
            cpu3 = time.thread_time()
            with cond:
                self.frames_captured += 1
                clock.add("grab", cpu1 - cpu0)
                clock.add("compare", cpu2 - cpu1)
                if image is not None:
                    clock.add("convert", cpu3 - cpu2)
                    self._seq += 1
                    self._grab = Grab(self._seq, image, started, time.monotonic())
                    self._size = image.size
                    self._published.add(time.monotonic())
                    self.frames_changed += 1
                    cond.notify_all()  # a snapshot waiting for the first grab
                    for variant in self._variants.values():
                        variant.ready.notify()  # one viewer of each variant encodes it
            if period:
                due += period
                delay = due - time.monotonic()
                if delay > 0:
                    self._closing.wait(delay)
                elif delay < -period:
                    due = time.monotonic()  # far behind: start afresh rather than burst
                # a little late: grab now and keep the schedule, so jitter does not lower the rate

    # -- reporting and shutdown --------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters, measures and settings, as ``GET /stats`` shows them."""
        with self._cond:
            capturing = self._thread is not None
            default = self._variants.get(self._variant(None, None))
            frame = default.frame if default is not None else None
            return {
                "viewers": self._viewers,
                "fps": round(self._published.rate(time.monotonic()), 1) if capturing else 0.0,
                "frames_captured": self.frames_captured,
                "frames_changed": self.frames_changed,
                "frames_encoded": self.frames_encoded,
                "frames_sent": self.frames_sent,
                "frame_bytes": len(frame.jpeg) if frame is not None else 0,
                "width": self._size[0],
                "height": self._size[1],
                "quality": self.quality,
                "variants": sum(1 for variant in self._variants.values() if variant.watchers),
                "latency_ms": self._latency.report(),
                "handoff_ms": self._handoff.report(),
                **self._clock.report(),
                "source": self.source.name,
                "capturing": capturing,
                "error": self._error,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Stop capturing and end every viewer's stream."""
        with self._cond:
            self._closed = True
            self._closing.set()
            thread = self._thread
            self._wake_all_locked()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
