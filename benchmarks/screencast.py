"""Benchmark: examples.screencast on restkit against the seed's Flask design.

On a private Xvfb screen (1920x1080 unless told otherwise) with moving
content (a full-screen Tk window: a busy "desktop" picture with a box and a
counter that move every few milliseconds), each scenario starts the server
in its own process, opens N viewers of the multipart stream, and measures
for a fixed time:

* frames received per second by each viewer (min and mean),
* frames captured and encoded per second by the server (from ``/stats``),
* the server's CPU (user + system time of its process, % of one core).

Run from the repository root::

    python benchmarks/screencast.py            # full: 8 s per scenario
    python benchmarks/screencast.py --quick    # 2 s, 1 and 2 viewers: does it still work?

Needs Xvfb, tkinter, Pillow, mss and (for the seed) Flask.  Exit status 1
when a viewer received nothing.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the moving picture (runs in its own process: --paint) -------------------------------


def paint(width: int, height: int) -> None:
    """A full-screen Tk window that changes every few milliseconds.

    Without tkinter, the root window's colour is cycled with ``xsetroot``
    instead (slower to change and costlier: good enough for ``--quick``).
    """
    try:
        import tkinter
    except ImportError:
        print("screencast benchmark: no tkinter; cycling the screen's colour with xsetroot", file=sys.stderr)
        for count in itertools.count():
            subprocess.run(["xsetroot", "-solid", f"#{(count * 37) % 256:02x}{(count * 11) % 256:02x}80"], check=True)
            time.sleep(0.005)

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
    count = 0

    def step() -> None:
        nonlocal count
        count += 1
        x = (count * 6) % (width - 240)
        canvas.coords(box, x, 100 + count % 400, x + 240, 300 + count % 400)
        canvas.itemconfigure(label, text=str(count))
        root.after(3, step)

    step()
    root.mainloop()


# -- viewers ---------------------------------------------------------------------------------


class Viewer(threading.Thread):
    """Reads a multipart stream and counts its parts."""

    def __init__(self, port: int, path: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.path = path
        self.stop = stop
        self.frames = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed before the response head")
                    head += chunk
                head, _, rest = head.partition(b"\r\n\r\n")
                boundary = head.split(b"boundary=", 1)[1].split(b"\r\n", 1)[0].strip(b'"')
                delimiter = b"--" + boundary
                keep = len(delimiter) - 1
                buffer = bytearray(1 << 20)
                view = memoryview(buffer)
                buffer[: len(rest)] = rest
                filled = len(rest)
                sock.settimeout(1.0)
                while not self.stop.is_set():
                    self.frames += buffer.count(delimiter, 0, filled)
                    tail = buffer[max(0, filled - keep) : filled]
                    buffer[: len(tail)] = tail
                    try:
                        got = sock.recv_into(view[len(tail) :])
                    except TimeoutError:
                        filled = len(tail)
                        continue
                    if not got:
                        raise ConnectionError("the server closed the stream")
                    filled = len(tail) + got
        except Exception as exc:  # reported in the table, unless we were stopping
            if not self.stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"


# -- one scenario --------------------------------------------------------------------------


@dataclass
class Result:
    design: str
    viewers: int
    fps_setting: str
    received_min: float
    received_mean: float
    captured: float
    grabbed: float
    cpu: float
    machine: float
    errors: int


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


def run_scenario(design: str, viewers: int, fps: float | None, seconds: float, env: dict[str, str]) -> Result:
    port = free_port()
    if design == "restkit":
        command = [sys.executable, "-m", "examples.screencast", "--port", str(port), "--quality", "70", "--fps", str(fps)]
        path = "/stream"
        counter = "frames_encoded"
    else:
        command = [sys.executable, "benchmarks/seed_screencast.py", "--port", str(port)]
        path = "/video_feed"
        counter = "frames_captured"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    stop = threading.Event()
    readers = [Viewer(port, path, stop) for _ in range(viewers)]
    try:
        try:
            wait_until_up(port, server)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{design} server: {exc}:\n{log.read()[-2000:].decode(errors='replace')}") from None
        for reader in readers:
            reader.start()
        warm_until = time.monotonic() + 5
        while time.monotonic() < warm_until and not all(r.frames >= 2 or r.error for r in readers):
            time.sleep(0.05)
        time.sleep(0.5)
        frames0 = [r.frames for r in readers]
        cpu0, stats0, t0, machine0 = cpu_seconds(server.pid), get_stats(port), time.monotonic(), machine_ticks()
        time.sleep(seconds)
        frames1 = [r.frames for r in readers]
        cpu1, stats1, t1, machine1 = cpu_seconds(server.pid), get_stats(port), time.monotonic(), machine_ticks()
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for reader in readers:
            if reader.is_alive():
                reader.join(3)
        log.close()
    elapsed = t1 - t0
    rates = [(b - a) / elapsed for a, b in zip(frames0, frames1)]
    return Result(
        design=design,
        viewers=viewers,
        fps_setting="max" if not fps else f"{fps:g}",
        received_min=min(rates),
        received_mean=sum(rates) / len(rates),
        captured=(stats1[counter] - stats0[counter]) / elapsed,
        grabbed=(stats1["frames_captured"] - stats0["frames_captured"]) / elapsed,
        cpu=100 * (cpu1 - cpu0) / elapsed,
        machine=100 * (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]),
        errors=sum(1 for r, rate in zip(readers, rates) if r.error or rate == 0),
    )


# -- Xvfb --------------------------------------------------------------------------------------


def free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number between :90 and :199")


def start_screen(width: int, height: int) -> tuple[list["subprocess.Popen[bytes]"], dict[str, str]]:
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
    painter = subprocess.Popen([sys.executable, __file__, "--paint", f"{width}x{height}"], env=env)
    time.sleep(1.5)
    if painter.poll() is not None:
        xvfb.terminate()
        raise RuntimeError("the painter (tkinter) did not start")
    return [painter, xvfb], env


def race(runs: int, width: int, height: int, no_seed: bool) -> int:
    """Start 16 viewers at once, ``runs`` times per design; count runs where a viewer got nothing."""
    processes, env = start_screen(width, height)
    frozen: dict[str, int] = {}
    try:
        for design in ["restkit"] + ([] if no_seed else ["seed"]):
            frozen[design] = 0
            for _ in range(runs):
                result = run_scenario(design, 16, 30.0 if design == "restkit" else None, 1.0, env)
                frozen[design] += result.errors > 0
    finally:
        for process in processes:
            process.terminate()
            process.wait(5)
    for design, count in frozen.items():
        print(f"{design}: {count} of {runs} runs with 16 viewers had viewers that received nothing")
    return 1 if frozen.get("restkit") else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per scenario, 1 and 2 viewers")
    parser.add_argument("--seconds", type=float, default=None, help="measuring time per scenario (default 8)")
    parser.add_argument("--size", default="1920x1080", help="screen size (default 1920x1080)")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's Flask design")
    parser.add_argument("--race", type=int, metavar="N", default=0, help="instead: start each design N times with 16 viewers at once, count runs where viewers froze")
    parser.add_argument("--paint", metavar="WxH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(n) for n in (args.paint or args.size).split("x"))
    if args.paint:
        paint(width, height)
        return 0
    if not shutil.which("Xvfb"):
        print("screencast benchmark: Xvfb is not installed (Debian: apt-get install xvfb)", file=sys.stderr)
        return 2
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    if args.quick:
        scenarios: list[tuple[str, int, float | None]] = [("restkit", 1, 30.0), ("restkit", 2, 30.0), ("restkit", 1, 0.0)]
        seed_scenarios: list[tuple[str, int, float | None]] = [("seed", 1, None), ("seed", 2, None)]
    else:
        scenarios = [("restkit", 1, 30.0), ("restkit", 4, 30.0), ("restkit", 16, 30.0), ("restkit", 1, 0.0)]
        seed_scenarios = [("seed", 1, None), ("seed", 4, None), ("seed", 16, None)]
    if not args.no_seed:
        scenarios += seed_scenarios
    if args.race:
        return race(args.race, width, height, args.no_seed)
    processes, env = start_screen(width, height)
    results: list[Result] = []
    try:
        for design, viewers, fps in scenarios:
            result = run_scenario(design, viewers, fps, seconds, env)
            results.append(result)
            print(
                f"{result.design:8} viewers={result.viewers:<3} fps={result.fps_setting:<4} "
                f"received/viewer min {result.received_min:6.1f} mean {result.received_mean:6.1f}  "
                f"new frames {result.captured:6.1f}/s  grabs {result.grabbed:6.1f}/s  cpu {result.cpu:5.1f}%  machine busy {result.machine:3.0f}%  failed viewers {result.errors}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
    print(f"\nscreencast on a {width}x{height} Xvfb screen with moving content, {os.cpu_count()} CPUs, {seconds:g} s per scenario, JPEG quality 70 (seed: 100, resized to 1366x750)\n")
    print("| design | --fps | viewers | received fps per viewer (min / mean) | new frames encoded/s | screen grabs/s | server CPU (% of a core) | whole machine busy (% of all cores) | viewers with no frames |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.design} | {r.fps_setting if r.design == 'restkit' else '(busy loop)'} | {r.viewers} | "
            f"{r.received_min:.1f} / {r.received_mean:.1f} | {r.captured:.1f} | {r.grabbed:.1f} | {r.cpu:.0f} | {r.machine:.0f} | {r.errors} |"
        )
    return 1 if any(r.errors for r in results if r.design == "restkit") else 0


if __name__ == "__main__":
    raise SystemExit(main())
