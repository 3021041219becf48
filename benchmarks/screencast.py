"""Benchmark: examples.screencast on restkit against the seed's Flask design.

On a private Xvfb screen (1920x1080 unless told otherwise) with moving
content (a full-screen Tk window: a busy "desktop" picture with a box and a
counter that move every 8 ms, and a probe patch that changes
colour every 150 ms), each scenario starts the server in its own process,
opens N viewers of the multipart stream (read by one thread with a
selector, 16 viewers a thread, each thread beyond the first in a helper
process of its own: one Python thread could not keep up with 64 streams
of 1080p frames), and measures for a fixed time:

* frames received per second by each viewer (min and mean), and by a slow
  viewer reading a tenth of the frames (with the frames it skipped);
* latency p50/p99: from a change of the probe patch *on the screen* to
  the arrival of the first byte of the first frame showing it, on up to 16
  viewers (``--probing``), and where that time goes, part by part (below);
* frames grabbed and changed per second, and restkit's own frame age
  (``/stats``: grab start to handed to the connection) and hand-off
  (encoded to handed to the connection);
* the server's CPU (user + system time of its process, % of one core) and
  restkit's CPU per stage per frame (``/stats``), which depends little on
  what else runs on the machine;
* the benchmark's own load: the painter's and Xvfb's CPU, this client's,
  and how much of the time its reading thread was busy;
* how busy the whole machine was, and the load average.

How the latency is measured, and why (each choice removes a way the
figure over-counted; every time is ``time.monotonic()``, CLOCK_MONOTONIC,
one clock for every process on the machine):

* **Start: the change on the screen.**  The painter dates each change of
  the probe patch twice: before telling Tk (``painted``), and once the X
  server has drawn it (``shown``: after ``update_idletasks()``, which makes
  Tk redraw, and ``winfo_pointerxy()``, a round trip answered only after
  every earlier request is done).  The latency starts at ``shown``; Tk's
  redraw lag (``shown - painted``, a few ms, more on a busy machine) is
  reported on its own column, "redraw".  Before, the latency started at
  ``painted`` and included it.
* **End: the first byte's arrival in the client's socket.**  One Python
  thread reads all the viewers (16 x 60 x ~250 KB a second); its lag in
  getting to a socket is the client's, not the screencast's.  Probing
  viewers' reads are dated by the kernel (``SO_TIMESTAMPNS``: the arrival
  of the newest packet a read returns, an upper bound of the first byte's),
  and the lag from there to the read is reported as "client read".  Before,
  the end was the time ``select()`` returned.  A client that falls behind
  still fills its receive window, and then the server's sends wait: that
  shows in "deliver", which is why the client's own load is reported.
* **The colour is decoded in a thread of its own.**  Deciding which frame
  first shows a change means decoding it (about 3 ms, outside the GIL); in
  the reading thread that held up every other viewer's read exactly when a
  new colour arrived.  Each frame number is decoded once for all viewers,
  and only the frames that can show a change not yet seen.
* **The parts** come from restkit's ``X-Clock`` header (grab start,
  published, encoding start, encoded: the server's ``time.monotonic()``):
  *to grab* (shown until the grab that shows it starts: up to one frame
  interval), *grab+convert*, *wait encoder* (published until a viewer
  thread starts encoding it), *encode*, *deliver* (encoded until the first
  byte arrives: the viewer threads waking, the send, loopback) and *client
  read*.  Each part's p99 is its own; they do not add up to the latency's.
  ``/stats``' hand-off (encoded to handed to the connection) splits
  *deliver* into the server's wake-up and the rest.
* ``--probing 1`` (time one viewer of the 16) and ``--recv-kib`` (bytes per
  read) check that the client is not what is measured; so does the
  "reader busy" column (the reading thread's time out of ``select()``).
* **The painter moves its box every 8 ms** (:data:`PAINT_EVERY_MS`), not
  every 3: about two changes per grab at 60 fps, for 11% of a core (painter
  and Xvfb) instead of 25%, taken from the two the server shares with them.

Run from the repository root::

    python benchmarks/screencast.py            # full: 8 s per scenario
    python benchmarks/screencast.py --quick    # 2 s, 1 and 2 viewers: does it still work?
    python benchmarks/screencast.py --gil      # does a JPEG encode let the other threads run?

Needs Xvfb, tkinter, Pillow, mss and (for the seed) Flask.  Exit status 1
when a viewer received nothing.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import queue
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from examples.screencast.meter import percentile  # noqa: E402  (stdlib only: no Pillow needed here)

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's number where Python does not name it


# -- the moving picture (runs in its own process: --paint) -------------------------------

# Twelve colours whose channels are 00, 80 or ff: any two differ by 128 in a channel, far
# beyond JPEG's error.  A frame more than 12 changes late would be taken for a later change.
PROBE_COLOURS = ["#ff0000", "#00ff00", "#0000ff", "#ffff00", "#00ffff", "#ff00ff",
                 "#ff8000", "#8000ff", "#00ff80", "#808080", "#ffffff", "#000080"]
PROBE_EVERY_MS = 150  # how often the probe patch changes colour
# How often the box and the counter move: about 120 times a second, twice the fastest --fps
# measured, so that every grab sees a change (a real screen redraws at most at its refresh
# rate, 60 Hz).  It was 3 ms, which cost the painter and Xvfb 25% of a core instead of 11%,
# taken from the two cores the server shares with them.
PAINT_EVERY_MS = 8
PROBE_BOX = (0.02, 0.76, 0.18, 0.96)  # the patch, as fractions of the screen: left, top, right, bottom


def probe_rgb(index: int) -> tuple[int, int, int]:
    colour = PROBE_COLOURS[index % len(PROBE_COLOURS)]
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def paint(width: int, height: int) -> None:
    """A full-screen Tk window that changes every few milliseconds, with a probe patch.

    The probe patch (bottom left) takes the next of :data:`PROBE_COLOURS`
    every :data:`PROBE_EVERY_MS`; each change is written to standard output
    as ``<painted> <shown> <colour index>``: ``painted`` is
    ``time.monotonic()`` just *before* Tk is told the new colour, ``shown``
    just after the X server has drawn it (``update_idletasks()`` makes Tk
    redraw the canvas, and ``winfo_pointerxy()`` is a round trip: its answer
    comes after the server has done every request sent before it).  The
    latency is measured from ``shown`` (the issue's "change on the screen");
    ``shown - painted`` is Tk's redraw lag, reported on its own.
    CLOCK_MONOTONIC is the same clock in every process, so the benchmark
    compares it with the time a viewer's frame arrives.
    """
    import tkinter

    from PIL import Image, ImageDraw

    background = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(background)
    for row in range(0, height, 18):  # lines of "text", like an editor or a web page
        for column in range(40, width - 200, 420):
            words = (row * 7 + column) % 23
            draw.text((column, row), f"def handler_{words}(request): return {{'zoo': {row}, 'id': {column}}}", fill=(20 + words * 9, 40, 90))
    for i in range(12):
        draw.rectangle((100 + i * 140, 300 + (i % 3) * 160, 200 + i * 140, 420 + (i % 3) * 160), fill=(i * 20, 120, 255 - i * 20))
    ppm = io.BytesIO()
    background.save(ppm, "PPM")

    root = tkinter.Tk()
    root.overrideredirect(True)
    root.geometry(f"{width}x{height}+0+0")
    canvas = tkinter.Canvas(root, width=width, height=height, highlightthickness=0)
    canvas.pack()
    photo = tkinter.PhotoImage(data=ppm.getvalue(), format="ppm")
    canvas.create_image(0, 0, image=photo, anchor="nw")
    box = canvas.create_rectangle(0, 100, 240, 300, fill="#e63c28", outline="")
    label = canvas.create_text(width // 2, 60, text="0", fill="#ffff00", font=("Helvetica", 40))
    left, top, right, bottom = PROBE_BOX
    probe = canvas.create_rectangle(left * width, top * height, right * width, bottom * height,
                                    fill=PROBE_COLOURS[0], outline="")
    span = max(1, int(height * 0.6) - 300)  # the box stays above the probe patch
    count = 0
    changes = itertools.count(1)

    def step() -> None:
        nonlocal count
        count += 1
        x = (count * 6) % (width - 240)
        canvas.coords(box, x, 100 + count % span, x + 240, 300 + count % span)
        canvas.itemconfigure(label, text=str(count))
        root.after(PAINT_EVERY_MS, step)

    def change() -> None:
        index = next(changes)
        painted = time.monotonic()
        canvas.itemconfigure(probe, fill=PROBE_COLOURS[index % len(PROBE_COLOURS)])
        root.update_idletasks()  # the canvas redraws now: its X requests are sent
        root.winfo_pointerxy()  # a round trip: the X server has drawn them when the answer comes
        print(f"{painted:.6f} {time.monotonic():.6f} {index}", flush=True)
        root.after(PROBE_EVERY_MS, change)

    step()
    root.after(1000, change)
    root.mainloop()


class Probe:
    """The probe patch's changes as the painter reports them: ``(time shown, colour index)``, in order."""

    def __init__(self, painter: "subprocess.Popen[str]") -> None:
        self.changes: list[tuple[float, int]] = []
        self.redraw: dict[int, float] = {}  # colour index: seconds from Tk told to the X server done
        # Every viewer of a restkit variant gets the same frames: each is decoded once,
        # by its X-Frame number (decoding is the costliest thing the viewers do).
        self.colours: dict[int, tuple[int, ...] | None] = {}
        self.queued: set[int] = set()  # frames handed to the decoding thread
        self.keys = itertools.count(-1, -1)  # for parts without X-Frame (the seed's): one key each
        self._generation = 0
        self._work: queue.SimpleQueue[tuple[int, int, bytes]] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(painter,), daemon=True).start()
        threading.Thread(target=self._decode, daemon=True).start()

    def reset(self) -> None:
        """Forget the frames' colours: frame numbers start again with each server."""
        self._generation += 1
        self.colours.clear()
        self.queued.clear()

    def request(self, key: int, jpeg: bytes) -> None:
        """Have frame ``key``'s colour decoded (in the decoding thread, not the reading one)."""
        self.queued.add(key)
        self._work.put((self._generation, key, jpeg))

    def _decode(self) -> None:
        # Its own thread: decoding (about 3 ms, outside the GIL) in the reading thread would
        # date the parts that arrive meanwhile late, just when a new colour arrives.
        while True:
            generation, key, jpeg = self._work.get()
            pixel = probe_colour(jpeg)
            if generation == self._generation:
                self.colours[key] = pixel

    def _read(self, painter: "subprocess.Popen[str]") -> None:
        assert painter.stdout is not None
        for line in painter.stdout:
            painted, shown, index = line.split()
            self.redraw[int(index)] = float(shown) - float(painted)
            self.changes.append((float(shown), int(index)))


def probe_colour(jpeg: bytes) -> tuple[int, ...] | None:
    """The colour at the centre of the probe patch, decoded at 1/8 scale (cheap)."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(jpeg))
        image.draft("RGB", (image.width // 8, image.height // 8))
        left, top, right, bottom = PROBE_BOX
        x, y = int((left + right) / 2 * image.width), int((top + bottom) / 2 * image.height)
        pixel: tuple[int, ...] = image.convert("RGB").getpixel((x, y))  # type: ignore[assignment]
        return pixel
    except Exception:
        return None


def close_to(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))


# -- viewers: one thread, every connection in one selector -------------------------------------

_HEAD, _SEEK, _HEADERS, _BODY, _SCAN = range(5)


class Viewer:
    """One reader of a multipart stream: counts parts and times the probe's changes.

    Parts are found by their ``Content-Length`` (restkit) or by scanning for
    the delimiter (the seed's, which has none).  The time of a part is the
    time of the read that brought its first byte.  A part is decoded only
    when the probe changed colour before it arrived and this viewer has not
    yet seen that change.
    """

    def __init__(self, sock: socket.socket, probe: Probe | None, slow: float = 0.0) -> None:
        self.sock = sock
        self.probe = probe
        self.slow = slow  # seconds between reads of one part (a slow reader); 0: read at once
        self.frames = 0
        self.latencies: list[float] = []
        self.parts: list[tuple[float, ...]] = []  # each latency's LATENCY_PARTS (restkit's X-Clock), seconds
        self.seqs: list[int] = []
        self.error: str | None = None
        self.next_change = 0  # index into probe.changes of the first change not yet seen
        self._state = _HEAD
        self._carry = bytearray()
        self._delimiter = b""
        self._remaining = 0
        self._jpeg: bytearray | None = None
        self._part_time = 0.0  # when its first byte arrived (the kernel's receive time, see read_streams)
        self._part_read = 0.0  # when this client read it
        self._read_at = 0.0
        self._part_seq = -1
        self._part_clock: tuple[float, ...] = ()
        # parts whose colour is being decoded: (time of the first byte, key, X-Clock), in order
        self.pending: deque[tuple[float, int, tuple[float, ...]]] = deque()

    def feed(self, data: memoryview, now: float, read_at: float = 0.0) -> None:
        """Take ``data``, which arrived at ``now`` and was read at ``read_at`` (by default ``now``)."""
        self._read_at = read_at or now
        pos, size = 0, len(data)
        while pos < size:
            if self._state == _BODY:  # PERF: the bulk of the bytes are counted, not copied
                take = min(self._remaining, size - pos)
                if self._jpeg is not None:
                    self._jpeg += data[pos : pos + take]
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._part_done(bytes(self._jpeg) if self._jpeg is not None else None)
                    self._state = _SEEK
                continue
            self._carry += data[pos:]
            pos = size
            self._parse_text(now)

    def _parse_text(self, now: float) -> None:
        carry = self._carry
        while True:
            if self._state == _HEAD:
                end = carry.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(carry[:end])
                del carry[: end + 4]
                boundary = head.split(b"boundary=", 1)[1].split(b"\r\n", 1)[0].strip(b'"')
                self._delimiter = b"--" + boundary
                self._state = _SEEK
            elif self._state == _SEEK:
                at = carry.find(self._delimiter)
                if at < 0 or carry.find(b"\n", at) < 0:
                    if at < 0:
                        del carry[: max(0, len(carry) - len(self._delimiter))]
                    return
                del carry[: carry.find(b"\n", at) + 1]
                self._state = _HEADERS
                self._part_time = now if carry else 0.0
                self._part_read = self._read_at
            elif self._state == _HEADERS:
                if not carry:
                    return
                if not self._part_time:
                    self._part_time, self._part_read = now, self._read_at
                end = carry.find(b"\r\n\r\n")
                if end < 0:
                    return
                length, self._part_seq, self._part_clock = -1, -1, ()
                for line in bytes(carry[:end]).split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"x-frame":
                        self._part_seq = int(value)
                    elif name.strip().lower() == b"x-clock":
                        self._part_clock = tuple(float(t) for t in value.split())
                del carry[: end + 4]
                self._jpeg = bytearray() if self._wants_jpeg() else None
                if length >= 0:
                    self._state, self._remaining = _BODY, length
                    take = min(length, len(carry))
                    if self._jpeg is not None:
                        self._jpeg += carry[:take]
                    del carry[:take]
                    self._remaining -= take
                    if self._remaining:
                        return
                    self._part_done(bytes(self._jpeg) if self._jpeg is not None else None)
                    self._state = _SEEK
                else:
                    self._state = _SCAN
            else:  # _SCAN: a part without Content-Length ends where the next delimiter starts
                at = carry.find(b"\r\n" + self._delimiter)
                if at < 0:
                    return
                self._part_done(bytes(carry[:at]) if self._jpeg is not None else None)
                del carry[: at + 2]
                self._state = _SEEK

    def _unseen_change_before(self, when: float) -> bool:
        """A change of the probe this viewer has not seen yet happened before ``when``."""
        changes = self.probe.changes if self.probe is not None else []
        return len(changes) > self.next_change and changes[self.next_change][0] < when

    def _wants_colour(self) -> bool:
        """The colour of the part arriving matters: it may show a change (or parts before it wait for theirs)."""
        return self.probe is not None and (bool(self.pending) or self._unseen_change_before(self._part_time))

    def _wants_jpeg(self) -> bool:
        probe = self.probe
        key = self._part_seq
        return (probe is not None and self._wants_colour()
                and (key < 0 or (key not in probe.colours and key not in probe.queued)))

    def _part_done(self, jpeg: bytes | None) -> None:
        self.frames += 1
        if self._part_seq >= 0:
            self.seqs.append(self._part_seq)
        probe = self.probe
        if probe is None or not self._wants_colour():
            return
        key = self._part_seq if self._part_seq >= 0 else next(probe.keys)
        if jpeg is not None:
            probe.request(key, jpeg)
        elif key not in probe.colours and key not in probe.queued:
            return  # (cannot happen: its JPEG was kept)
        self.pending.append((self._part_time, key, self._part_clock + (self._part_read,)))
        self.resolve()

    def resolve(self) -> None:
        """Match the parts waiting for their colour against the probe's changes, in order, as colours come."""
        probe = self.probe
        assert probe is not None
        changes = probe.changes
        while self.pending and self.pending[0][1] in probe.colours:
            arrived, key, clock = self.pending.popleft()
            pixel = probe.colours[key]
            if pixel is None or not self._unseen_change_before(arrived):
                continue
            # the newest change before this part whose colour it shows; the ones before it were missed
            for index in range(len(changes) - 1, self.next_change - 1, -1):
                when, colour = changes[index]
                if when < arrived and close_to(pixel, probe_rgb(colour)):
                    self.latencies.append(arrived - when)
                    read = clock[-1]
                    if len(clock) == 5:
                        grabbed, published, encoding, encoded = clock[:4]
                        self.parts.append((probe.redraw.get(colour, math.nan), grabbed - when, published - grabbed,
                                           encoding - published, encoded - encoding, arrived - encoded,
                                           read - arrived))
                    self.next_change = index + 1
                    break


def open_viewers(port: int, path: str, count: int, probe: Probe | None, probing: int, link: bool = False) -> list[Viewer]:
    """``count`` viewers of ``path``; the first ``probing`` time the probe's changes.

    ``link``: buffer as a connection over a network would (an Ethernet
    segment size, a small receive buffer), not as loopback does (4 MiB of
    server send buffer at once, tens of stale frames for a slow reader).
    """
    viewers = []
    for index in range(count):
        sock = socket.socket()
        if link:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        # HTTP/1.0: the body ends with the connection, no chunked framing to undo
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        sock.setblocking(False)
        viewers.append(Viewer(sock, probe if index < probing else None))
    return viewers


@dataclass
class ReadLoop:
    """What the benchmark's reading thread did: is the client itself a bottleneck?"""

    recv_size: int = 1 << 20  # bytes asked of each recv() (a slow viewer's: 16 KiB)
    busy: float = 0.0  # seconds spent outside select(): reading, parsing, decoding
    reads: int = 0


def read_streams(viewers: list[Viewer], stop: threading.Event, loop: ReadLoop) -> None:
    """Read every viewer's stream until ``stop``.

    A slow viewer (``viewer.slow`` seconds) stops reading for that long
    after each part it completes, and reads 16 KiB at a time.

    A probing viewer's bytes are dated by the kernel (``SO_TIMESTAMPNS``:
    when the newest of the packets a read returns arrived, on the real-time
    clock, moved onto the monotonic one), so that this one Python thread's
    lag in reading 16 streams is not counted as latency; it is reported on
    its own (the "client read" part).  The date is that of the *last*
    packet a read returns, an upper bound of the first byte's.  Other
    viewers are dated when ``select()`` returns, before any socket is read.
    """
    selector = selectors.DefaultSelector()
    buffers = {}
    for viewer in viewers:
        selector.register(viewer.sock, selectors.EVENT_READ, viewer)
        buffers[viewer] = memoryview(bytearray(16384 if viewer.slow else loop.recv_size))
    paused: dict[Viewer, float] = {}  # slow viewers not reading, and until when
    probing = [viewer for viewer in viewers if viewer.probe is not None]
    for viewer in probing:
        viewer.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    stamp_size = socket.CMSG_SPACE(16)
    offset = time.time() - time.monotonic()  # the kernel's dates are on the real-time clock
    try:
        while not stop.is_set():
            now = time.monotonic()
            for viewer, until in list(paused.items()):
                if until <= now:
                    del paused[viewer]
                    selector.register(viewer.sock, selectors.EVENT_READ, viewer)
            timeout = min([0.05] + [until - now for until in paused.values()])
            events = selector.select(max(0.0, timeout))
            now = time.monotonic()
            loop.reads += len(events)
            for key, _ in events:
                viewer = key.data
                view = buffers[viewer]
                arrived = now
                try:
                    if viewer.probe is None:
                        got = viewer.sock.recv_into(view)
                    else:
                        got, stamps, _, _ = viewer.sock.recvmsg_into([view], stamp_size)
                        for level, kind, data in stamps:
                            if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS) and len(data) >= 16:
                                seconds, nanoseconds = struct.unpack("qq", data[:16])
                                arrived = min(now, seconds + nanoseconds / 1e9 - offset)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if not stop.is_set():  # the server is stopped after `stop`: not a failure then
                        viewer.error = f"{type(exc).__name__}: {exc}"
                    selector.unregister(viewer.sock)
                    continue
                if not got:
                    if not stop.is_set():
                        viewer.error = "the server closed the stream"
                    selector.unregister(viewer.sock)
                    continue
                before = viewer.frames
                viewer.feed(view[:got], arrived, now)
                if viewer.slow and viewer.frames > before:
                    selector.unregister(viewer.sock)
                    paused[viewer] = now + viewer.slow
            for viewer in probing:
                if viewer.pending:
                    viewer.resolve()
            loop.busy += time.monotonic() - now
    finally:
        selector.close()
        for viewer in viewers:
            viewer.sock.close()


READER_VIEWERS = 16  # viewers one reading thread takes; more go to helper processes


class Helper:
    """Viewers read by another process (this script's ``--read``), for the viewers beyond the first 16.

    One Python thread reading 64 streams of 1080p frames could not keep up
    (busy 98% of the time at 64 viewers and 30 fps, 140 ms behind): the
    client, not the server, was measured.  Each helper reads 16 in its own
    process; the probing viewers stay in this one.
    """

    def __init__(self, port: int, path: str, count: int, recv_size: int) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--read", f"{port} {count} {recv_size} {path}"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def frames(self) -> tuple[list[int], list[str]]:
        """Frames each of its viewers has received so far, and their errors."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("frames\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline() or '{"frames": [], "errors": ["the helper died"]}')
        return answer["frames"], answer["errors"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        stop_all([self.process])


def read_for_parent(spec: str) -> None:
    """``--read "PORT COUNT RECV_SIZE PATH"``: read COUNT viewers; answer each line on stdin with their counts."""
    port, count, recv_size, path = spec.split(" ", 3)
    viewers = open_viewers(int(port), path, int(count), None, probing=0)
    stop = threading.Event()
    loop = threading.Thread(target=read_streams, args=(viewers, stop, ReadLoop(int(recv_size))), daemon=True)
    loop.start()
    for _ in sys.stdin:
        print(json.dumps({"frames": [v.frames for v in viewers], "errors": [v.error for v in viewers if v.error]}),
              flush=True)
    stop.set()
    loop.join(5)


def all_frames(readers: list[Viewer], helpers: list[Helper]) -> tuple[list[int], list[str]]:
    """Frames received so far by every viewer (this process's, then the helpers'), and the errors."""
    frames = [r.frames for r in readers]
    errors = [r.error for r in readers if r.error]
    for helper in helpers:
        more, failed = helper.frames()
        frames += more
        errors += failed
    return frames, errors


# -- one scenario --------------------------------------------------------------------------


@dataclass
class Scenario:
    design: str  # "restkit" or "seed"
    viewers: int
    fps: float | None  # restkit's --fps (0: as fast as it can); None for the seed (a busy loop)
    query: str = ""  # restkit: ?fps=&width=&quality= for every viewer
    slow: int = 0  # extra viewers that read at a tenth of the stream's rate

    @property
    def fps_setting(self) -> str:
        return "(busy loop)" if self.fps is None else "max" if not self.fps else f"{self.fps:g}"


@dataclass
class Result:
    scenario: Scenario
    received_min: float
    received_mean: float
    slow_received: float
    slow_skipped: float  # frames the slow viewers skipped between two they read, on average
    latency: dict[str, float]  # p50/p99 ms, screen change to first byte, over the probing viewers
    parts: dict[str, dict[str, float]]  # LATENCY_PARTS: p50/p99 ms of each
    server_latency: dict[str, float]  # restkit's /stats: grab start to handed to the connection
    server_handoff: dict[str, float]  # restkit's /stats: encoded to handed to the connection
    new_frames: float
    grabbed: float
    cpu: float
    stage_ms: dict[str, float]  # CPU ms per run of each stage (restkit)
    machine: float
    screen_cpu: float  # the painter's and Xvfb's CPU, % of a core: the benchmark's own load
    client_cpu: float  # this process's (the viewers' reading thread, mostly), % of a core
    reader_busy: float  # % of the time the reading thread was not waiting in select()
    errors: int
    failures: list[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def get_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        stats: dict[str, Any] = json.load(response)
        return stats


def wait_until_up(port: int, process: "subprocess.Popen[bytes]", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            get_stats(port)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer in time")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "samples": 0}
    ordered = sorted(values)
    return {"p50": 1000 * percentile(ordered, 0.50), "p99": 1000 * percentile(ordered, 0.99), "samples": len(ordered)}


def mean_skip(runs: list[list[int]]) -> float:
    gaps = [b - a - 1 for seqs in runs for a, b in itertools.pairwise(seqs)]
    return sum(gaps) / len(gaps) if gaps else float("nan")


def stage_costs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """CPU ms per run of each stage between two /stats, and the rest of the process per frame sent."""
    seconds0, seconds1 = before["cpu_seconds"], after["cpu_seconds"]
    runs = {"grab": "frames_captured", "compare": "frames_captured", "convert": "frames_changed", "encode": "frames_encoded"}
    costs = {}
    for stage, counter in runs.items():
        count = after[counter] - before[counter]
        costs[stage] = 1000 * (seconds1[stage] - seconds0[stage]) / count if count else 0.0
    stages = sum(seconds1[s] - seconds0[s] for s in runs)
    sent = after["frames_sent"] - before["frames_sent"]
    costs["serve per frame sent"] = 1000 * (seconds1["process"] - seconds0["process"] - stages) / sent if sent else 0.0
    return costs


LATENCY_PARTS = ("redraw", "to grab", "grab+convert", "wait encoder", "encode", "deliver", "client read")


def latency_parts(samples: list[tuple[float, ...]]) -> dict[str, dict[str, float]]:
    """p50/p99 of each part: Tk's redraw (before the latency's start), then the latency's own parts.

    The latency (from the change on the screen to the first byte's arrival
    in this client's socket) is the sum of the parts between the redraw and
    the client's read: until the grab that shows it starts, grab and
    convert, waiting for an encoder, encoding, and delivery (the server's
    viewer threads waking and sending, and the kernel's loopback).  The
    client's read lag (from arrival to the read that got it) is after it.
    Each part's p99 is its own: they do not add up to the latency's.
    """
    return {name: percentiles([sample[i] for sample in samples if not math.isnan(sample[i])])
            for i, name in enumerate(LATENCY_PARTS)}


def run_scenario(scenario: Scenario, seconds: float, env: dict[str, str], probe: Probe, screen: list[int],
                 probing: int = 16, recv_size: int = 1 << 20) -> Result:
    port = free_port()
    probe.reset()
    if scenario.design == "restkit":
        command = [sys.executable, "-m", "examples.screencast", "--port", str(port), "--quality", "70",
                   "--fps", str(scenario.fps), "--timeout", "60"]
        path = "/stream" + (f"?{scenario.query}" if scenario.query else "")
        counter = "frames_changed"
    else:
        command = [sys.executable, "benchmarks/seed_screencast.py", "--port", str(port)]
        path = "/video_feed"
        counter = "frames_captured"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    stop = threading.Event()
    readers: list[Viewer] = []
    helpers: list[Helper] = []
    try:
        try:
            wait_until_up(port, server)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{scenario.design} server: {exc}:\n{log.read()[-2000:].decode(errors='replace')}") from None
        here = min(scenario.viewers, READER_VIEWERS)
        readers = open_viewers(port, path, here, probe, probing=probing)
        helpers = [Helper(port, path, min(READER_VIEWERS, scenario.viewers - start), recv_size)
                   for start in range(here, scenario.viewers, READER_VIEWERS)]
        slow = open_viewers(port, path, scenario.slow, None, probing=0, link=True)
        for viewer in slow:
            viewer.slow = 10 / (scenario.fps or 60)  # a tenth of the stream's frame rate
        reading = ReadLoop(recv_size)
        loop = threading.Thread(target=read_streams, args=(readers + slow, stop, reading), daemon=True)
        loop.start()
        warm_until = time.monotonic() + 8
        while time.monotonic() < warm_until and not all(n >= 2 for n in all_frames(readers, helpers)[0]):
            time.sleep(0.05)
        time.sleep(1.0)
        frames0 = all_frames(readers, helpers)[0]
        slow0 = [r.frames for r in slow]
        latencies0 = [len(r.latencies) for r in readers]
        parts0 = [len(r.parts) for r in readers]
        cpu0, stats0, t0, machine0 = cpu_seconds(server.pid), get_stats(port), time.monotonic(), machine_ticks()
        helped = [helper.process.pid for helper in helpers]
        others0 = [sum(map(cpu_seconds, screen)), time.process_time() + sum(map(cpu_seconds, helped))]
        busy0 = reading.busy
        time.sleep(seconds)
        frames1, failures = all_frames(readers, helpers)
        slow1 = [r.frames for r in slow]
        cpu1, stats1, t1, machine1 = cpu_seconds(server.pid), get_stats(port), time.monotonic(), machine_ticks()
        others1 = [sum(map(cpu_seconds, screen)), time.process_time() + sum(map(cpu_seconds, helped))]
        busy1 = reading.busy
        latencies = [x for r, start in zip(readers, latencies0) for x in r.latencies[start:]]
        parts = [x for r, start in zip(readers, parts0) for x in r.parts[start:]]
    finally:
        stop.set()
        for helper in helpers:
            helper.close()
        stop_all([server])
        log.close()
    elapsed = t1 - t0
    rates = [(b - a) / elapsed for a, b in zip(frames0, frames1)]
    slow_rates = [(b - a) / elapsed for a, b in zip(slow0, slow1)]
    return Result(
        scenario=scenario,
        received_min=min(rates),
        received_mean=sum(rates) / len(rates),
        slow_received=sum(slow_rates) / len(slow_rates) if slow_rates else float("nan"),
        slow_skipped=mean_skip([v.seqs for v in slow]),
        latency=percentiles(latencies),
        parts=latency_parts(parts),
        server_latency=stats1.get("latency_ms", {}),
        server_handoff=stats1.get("handoff_ms", {}),
        new_frames=(stats1[counter] - stats0[counter]) / elapsed,
        grabbed=(stats1["frames_captured"] - stats0["frames_captured"]) / elapsed,
        cpu=100 * (cpu1 - cpu0) / elapsed,
        stage_ms=stage_costs(stats0, stats1) if "cpu_seconds" in stats1 else {},
        machine=100 * (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]),
        screen_cpu=100 * (others1[0] - others0[0]) / elapsed,
        client_cpu=100 * (others1[1] - others0[1]) / elapsed,
        reader_busy=100 * (busy1 - busy0) / elapsed,
        errors=max(sum(1 for rate in rates if rate == 0), len(failures)),
        failures=sorted(set(failures)),
    )


# -- Xvfb --------------------------------------------------------------------------------------


def free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number between :90 and :199")


def start_screen(width: int, height: int) -> tuple[list["subprocess.Popen[Any]"], dict[str, str], Probe]:
    number = free_display()
    xvfb = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if xvfb.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Xvfb did not start")
        time.sleep(0.05)
    env = dict(os.environ, DISPLAY=f":{number}", PYTHONPATH=str(ROOT))
    painter = subprocess.Popen([sys.executable, __file__, "--paint", f"{width}x{height}"], env=env,
                               stdout=subprocess.PIPE, text=True)
    probe = Probe(painter)
    time.sleep(1.5)
    if painter.poll() is not None:
        xvfb.terminate()
        raise RuntimeError("the painter (tkinter) did not start")
    return [painter, xvfb], env, probe


def stop_all(processes: list["subprocess.Popen[Any]"]) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gil_check(width: int, height: int, runs: int = 30) -> int:
    """Does a JPEG encode stop the other threads?  Encode into an ``io.BytesIO`` and as the screencast does.

    A ticker thread sleeps 1 ms at a time meanwhile; how late it wakes is
    how long it waited for the GIL (on an idle core, some 0.1 ms).
    """
    from PIL import Image

    from examples.screencast.capture import encode_image

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")

    def in_memory() -> None:
        image.save(io.BytesIO(), "JPEG", quality=70)

    for name, encode in (("io.BytesIO", in_memory), ("encode_image (a memory file)", lambda: encode_image(image, 70))):
        lags: list[float] = []
        done = threading.Event()

        def tick() -> None:
            while not done.is_set():
                started = time.perf_counter()
                time.sleep(0.001)
                lags.append(time.perf_counter() - started - 0.001)

        ticker = threading.Thread(target=tick)
        ticker.start()
        started = time.perf_counter()
        for _ in range(runs):
            encode()
        spent = (time.perf_counter() - started) / runs
        done.set()
        ticker.join()
        ordered = sorted(lags)
        print(f"{name}: {1000 * spent:.1f} ms a JPEG; a thread sleeping 1 ms meanwhile woke {len(lags)} times, "
              f"late by p50 {1000 * percentile(ordered, 0.5):.2f} / max {1000 * ordered[-1]:.2f} ms "
              f"(load average {os.getloadavg()[0]:.2f})")
    return 0


def race(runs: int, width: int, height: int, no_seed: bool) -> int:
    """Start 16 viewers at once, ``runs`` times per design; count runs where a viewer got nothing."""
    processes, env, probe = start_screen(width, height)
    frozen: dict[str, int] = {}
    try:
        for design in ["restkit"] + ([] if no_seed else ["seed"]):
            frozen[design] = 0
            for _ in range(runs):
                result = run_scenario(Scenario(design, 16, 30.0 if design == "restkit" else None), 1.0, env, probe,
                                      [p.pid for p in processes])
                frozen[design] += result.errors > 0
    finally:
        stop_all(processes)
    for design, count in frozen.items():
        print(f"{design}: {count} of {runs} runs with 16 viewers had viewers that received nothing")
    return 1 if frozen.get("restkit") else 0


def scenarios(quick: bool, no_seed: bool) -> list[Scenario]:
    if quick:
        chosen = [Scenario("restkit", 1, 30.0), Scenario("restkit", 2, 60.0), Scenario("restkit", 1, 0.0)]
        seed = [Scenario("seed", 1, None), Scenario("seed", 2, None)]
    else:
        chosen = [Scenario("restkit", n, fps) for fps in (30.0, 60.0) for n in (1, 16, 64)]
        chosen += [
            Scenario("restkit", 16, 60.0, slow=1),  # a viewer reading at a tenth of the rate beside 16
            Scenario("restkit", 16, 60.0, query="width=960&quality=50"),  # one shared smaller variant
            Scenario("restkit", 1, 0.0),
        ]
        seed = [Scenario("seed", n, None) for n in (1, 16, 64)]
    return chosen + ([] if no_seed else seed)


def fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"  # NaN: nothing measured


def pair(value: dict[str, float]) -> str:
    return f"{fmt(value['p50'])} / {fmt(value['p99'])}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per scenario, 1 and 2 viewers")
    parser.add_argument("--seconds", type=float, default=None, help="measuring time per scenario (default 8)")
    parser.add_argument("--size", default="1920x1080", help="screen size (default 1920x1080)")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's Flask design")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each scenario N times and keep the run whose viewers got the most frames "
                             "(on a shared machine, the one least disturbed)")
    parser.add_argument("--only", default="", help="run only the scenarios whose description contains this")
    parser.add_argument("--probing", type=int, default=16, metavar="N",
                        help="viewers that time the probe's changes (default 16; fewer: is the client the bottleneck?)")
    parser.add_argument("--recv-kib", type=int, default=1024, metavar="KIB",
                        help="bytes each read asks for, in KiB (default 1024)")
    parser.add_argument("--race", type=int, metavar="N", default=0, help="instead: start each design N times with 16 viewers at once, count runs where viewers froze")
    parser.add_argument("--gil", action="store_true",
                        help="instead: check that encoding a JPEG lets the other threads run (no Xvfb needed)")
    parser.add_argument("--paint", metavar="WxH", help=argparse.SUPPRESS)
    parser.add_argument("--read", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(n) for n in (args.paint or args.size).split("x"))
    if args.paint:
        paint(width, height)
        return 0
    if args.gil:
        return gil_check(width, height)
    if args.read:
        read_for_parent(args.read)
        return 0
    if not shutil.which("Xvfb"):
        print("screencast benchmark: Xvfb is not installed (Debian: apt-get install xvfb)", file=sys.stderr)
        return 2
    if args.race:
        return race(args.race, width, height, args.no_seed)
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    chosen = [s for s in scenarios(args.quick, args.no_seed) if args.only in f"{s.design} {s.viewers} {s.fps_setting} {s.query} slow={s.slow}"]
    processes, env, probe = start_screen(width, height)
    results: list[Result] = []
    load = os.getloadavg()
    try:
        for scenario in chosen:
            runs = [run_scenario(scenario, seconds, env, probe, [p.pid for p in processes], args.probing,
                                 args.recv_kib * 1024) for _ in range(max(1, args.repeat))]
            r = max(runs, key=lambda run: run.received_mean)
            results.append(r)
            print(
                f"{scenario.design:8} viewers={scenario.viewers:<3} fps={scenario.fps_setting:<5} {scenario.query or ''}"
                f"{' +1 slow' if scenario.slow else ''} received/viewer min {r.received_min:6.1f} mean {r.received_mean:6.1f}"
                f" latency p50 {fmt(r.latency['p50'])} p99 {fmt(r.latency['p99'])} ms (n={r.latency['samples']})"
                f" new {r.new_frames:5.1f}/s cpu {r.cpu:5.1f}% busy {r.machine:3.0f}% {r.stage_ms} {'; '.join(r.failures)}"
                f" parts {' '.join(f'{name}={pair(value)}' for name, value in r.parts.items())}"
                f" painter+Xvfb {r.screen_cpu:.0f}% client {r.client_cpu:.0f}% reader busy {r.reader_busy:.0f}%"
                f" load {os.getloadavg()[0]:.2f}",
                file=sys.stderr, flush=True,
            )
    finally:
        stop_all(processes)
    load_after = os.getloadavg()
    print(f"\nscreencast on a {width}x{height} Xvfb screen with moving content, {os.cpu_count()} CPUs, {seconds:g} s per scenario, "
          f"JPEG quality 70 (seed: 100, resized to 1366x750); best of {max(1, args.repeat)} run(s) per scenario; "
          f"load average {load[0]:.2f} before, {load_after[0]:.2f} after\n")
    print("| design | --fps | viewers | received fps per viewer (min / mean) | slow viewer fps (frames skipped between two) | latency p50 / p99 ms (screen to first byte) "
          "| server frame age p50 / p99 ms | new frames/s | grabs/s | server CPU (% of a core) | whole machine busy (% of all cores) | viewers with no frames |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r.scenario
        who = f"{s.viewers}" + (f" ?{s.query}" if s.query else "") + (f" +{s.slow} slow" if s.slow else "")
        age = f"{r.server_latency['p50']:.1f} / {r.server_latency['p99']:.1f}" if r.server_latency else "-"
        print(
            f"| {s.design} | {s.fps_setting} | {who} | {r.received_min:.1f} / {r.received_mean:.1f} | {fmt(r.slow_received)} ({fmt(r.slow_skipped)}) | "
            f"{fmt(r.latency['p50'])} / {fmt(r.latency['p99'])} | {age} | {r.new_frames:.1f} | {r.grabbed:.1f} | {r.cpu:.0f} | {r.machine:.0f} | {r.errors} |"
        )
    timed = [r for r in results if r.parts and r.parts["encode"]["samples"]]
    if timed:
        print("\nWhere the latency goes (p50 / p99 ms of each part, on their own: restkit's X-Clock header; the redraw "
              "is before the latency starts); the benchmark's own load (painter + Xvfb, this client) in % of a core\n")
        print("| --fps | viewers | latency | " + " | ".join(LATENCY_PARTS) + " | server hand-off | server frame age "
              "| painter + Xvfb CPU | client CPU | reader busy |")
        print("|---|---|---|" + "---|" * len(LATENCY_PARTS) + "---|---|---|---|---|")
        for r in timed:
            s = r.scenario
            who = f"{s.viewers}" + (f" ?{s.query}" if s.query else "") + (f" +{s.slow} slow" if s.slow else "")
            age = pair(r.server_latency) if r.server_latency else "-"
            handoff = pair(r.server_handoff) if r.server_handoff else "-"
            parts = " | ".join(pair(r.parts[name]) for name in LATENCY_PARTS)
            print(f"| {s.fps_setting} | {who} | {pair(r.latency)} | {parts}"
                  + f" | {handoff} | {age} | {r.screen_cpu:.0f} | {r.client_cpu:.0f} | {r.reader_busy:.0f}% |")
    staged = [r for r in results if r.stage_ms]
    if staged:
        names = list(staged[0].stage_ms)
        print("\nCPU per stage (ms of CPU per run: grab and compare per grab, convert per changed grab, encode per JPEG, "
              "the rest of the server process per frame sent)\n")
        print("| --fps | viewers | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for r in staged:
            s = r.scenario
            who = f"{s.viewers}" + (f" ?{s.query}" if s.query else "") + (f" +{s.slow} slow" if s.slow else "")
            print(f"| {s.fps_setting} | {who} | " + " | ".join(f"{r.stage_ms[n]:.2f}" for n in names) + " |")
    return 1 if any(r.errors for r in results if r.scenario.design == "restkit") else 0


if __name__ == "__main__":
    raise SystemExit(main())
