"""What a screencast captures: sources of pictures, and turning a picture into a JPEG.

A :class:`Source` opens a :class:`Grabber` in the thread that will use it
(``mss`` handles belong to the thread that made them); the grabber returns
each picture as a :class:`RawImage`, a buffer that Pillow's ``raw`` decoder
reads.  :func:`to_image` converts it once (BGRX to RGB) and
:func:`encode_image` makes one JPEG of it, at a quality and an optional
smaller width; the broadcaster (:mod:`.broadcaster`) shares both between
every viewer.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import IO, Any, NamedTuple, Protocol

from PIL import Image, ImageDraw

__all__ = [
    "CaptureError",
    "Grabber",
    "NoScreenError",
    "PatternSource",
    "RawImage",
    "ScreenSource",
    "Source",
    "encode_image",
    "encode_jpeg",
    "to_image",
]


class CaptureError(Exception):
    """Capturing failed (the display went away, say)."""


class NoScreenError(CaptureError):
    """There is no screen to capture; the message says how to get one."""


class RawImage(NamedTuple):
    """Pixels as a source grabbed them: a buffer Pillow's ``raw`` decoder reads."""

    data: bytes | bytearray
    size: tuple[int, int]
    rawmode: str  # "BGRX" from mss, "RGB" from Pillow


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


def to_image(raw: RawImage) -> Image.Image:
    """``raw`` as an RGB image (a copy: the BGRX of a screen grab is converted once here)."""
    return Image.frombuffer("RGB", raw.size, raw.data, "raw", raw.rawmode, 0, 1)


def encode_image(image: Image.Image, quality: int, width: int | None = None) -> tuple[bytes, int, int]:
    """``(jpeg, width, height)`` of ``image``, downscaled to ``width`` (aspect kept) when smaller.

    The downscale first reduces by a whole factor (a box filter, as cheap
    as a copy) and then resamples bilinearly what is left: 2.9 ms for 1920
    to 640 pixels wide, against 14 ms for a bilinear resample of the
    whole picture.

    The JPEG is written to a file in memory, not to an ``io.BytesIO``:
    Pillow encodes into a Python object holding the GIL, and into a file
    descriptor without it (see :func:`_scratch_file`).
    """
    if width and width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=1.0)
    with _scratch_file() as out:
        image.save(out, "JPEG", quality=quality)
        out.seek(0)
        return out.read(), image.width, image.height


def _scratch_file() -> IO[bytes]:
    """A new empty read-write file that lives in memory where the system allows.

    PERF: Pillow's ``save()`` to an object without a file descriptor (an
    ``io.BytesIO``) runs the encoder in pieces through ``encode()``, which
    holds the GIL for the whole 7 ms of a 1080p JPEG: every viewer thread
    and the capture thread stop meanwhile.  To a real descriptor it calls
    ``encode_to_file()``, which releases it, and the encode runs on the
    other core.  A memfd (Linux) never touches a disk; elsewhere a
    temporary file does the same through the page cache.  Opening one per
    JPEG costs some 20 microseconds.
    """
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("screencast-jpeg", getattr(os, "MFD_CLOEXEC", 0)), "w+b")
    return tempfile.TemporaryFile()


def encode_jpeg(raw: RawImage, quality: int, width: int | None = None) -> tuple[bytes, int, int]:
    """``(jpeg, width, height)`` of a raw picture: :func:`to_image`, then :func:`encode_image`."""
    return encode_image(to_image(raw), quality, width)


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
            raise NoScreenError(
                f"there is no monitor {self.monitor}; this screen has monitors 1 to {len(monitors) - 1}"
            )
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
