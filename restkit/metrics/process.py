"""The process's own figures: CPU seconds, resident memory, descriptors, start time.

Read from ``/proc/self`` where there is one (Linux); elsewhere from the
standard library (``os.times``, ``resource``), which knows no current
resident size (that series is then absent) and no start time but the
moment this module was first asked.
"""

from __future__ import annotations

import os
import time

__all__ = ["process_figures"]

_FALLBACK_START = time.time()  # a constant of the process, not state: where /proc cannot say


def process_figures() -> dict[str, float]:
    """``cpu_seconds``, ``resident_bytes`` (Linux), ``open_fds``, ``max_fds`` and ``start_time`` of this process."""
    figures: dict[str, float] = {}
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()  # after the command name, which may hold spaces
        ticks = os.sysconf("SC_CLK_TCK")
        # fields[0] is field 3 of proc(5): utime is 14, stime 15, starttime 22, rss 24
        figures["cpu_seconds"] = (int(fields[11]) + int(fields[12])) / ticks
        figures["resident_bytes"] = float(int(fields[21]) * os.sysconf("SC_PAGE_SIZE"))
        figures["start_time"] = _boot_time() + int(fields[19]) / ticks
    except (OSError, ValueError, IndexError):
        times = os.times()
        figures["cpu_seconds"] = times.user + times.system
        figures["start_time"] = _FALLBACK_START
    for fd_dir in ("/proc/self/fd", "/dev/fd"):
        try:
            figures["open_fds"] = float(len(os.listdir(fd_dir)))
            break
        except OSError:
            continue
    try:
        import resource  # not on Windows

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft != resource.RLIM_INFINITY:
            figures["max_fds"] = float(soft)
    except (ImportError, OSError, ValueError):
        pass
    return figures


def _boot_time() -> float:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")
