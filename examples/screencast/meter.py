"""What the broadcaster measures about itself: CPU per stage, frame ages, frame rates.

Each meter is fed under the broadcaster's lock and read by ``GET /stats``;
none keeps more than a fixed number of samples.
"""

from __future__ import annotations

import time
from collections import deque

__all__ = ["LatencyWindow", "RateWindow", "StageClock", "percentile"]


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of an already sorted, non-empty list (nearest rank)."""
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


class StageClock:
    """CPU seconds spent per stage (``grab``, ``compare``...), and how many times each ran.

    The CPU is the calling thread's (:func:`time.thread_time`), so a stage
    is charged for its own work even while other threads run in parallel.
    """

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.seconds = dict.fromkeys(stages, 0.0)
        self.counts = dict.fromkeys(stages, 0)
        self._process_start = time.process_time()

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds
        self.counts[stage] += 1

    def report(self) -> dict[str, dict[str, float]]:
        """``{"cpu_seconds": {stage: s, ..., "process": s}, "cpu_ms_per_run": {stage: ms}}``.

        ``process`` is the whole process since the clock was made (the
        stages, plus the HTTP server sending frames, plus everything else).
        """
        seconds = {stage: round(value, 4) for stage, value in self.seconds.items()}
        seconds["process"] = round(time.process_time() - self._process_start, 4)
        per_run = {stage: round(1000 * self.seconds[stage] / count, 3) if count else 0.0
                   for stage, count in self.counts.items()}
        return {"cpu_seconds": seconds, "cpu_ms_per_run": per_run}


class LatencyWindow:
    """The last ``size`` ages (seconds) of frames as they were handed to a viewer's connection."""

    def __init__(self, size: int = 2048) -> None:
        self._ages: deque[float] = deque(maxlen=size)

    def add(self, age: float) -> None:
        self._ages.append(age)

    def clear(self) -> None:
        self._ages.clear()

    def report(self) -> dict[str, float | int]:
        """``{"p50": ms, "p99": ms, "max": ms, "samples": n}`` (zeros before the first sample)."""
        if not self._ages:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}
        ordered = sorted(self._ages)
        return {"p50": round(1000 * percentile(ordered, 0.50), 2), "p99": round(1000 * percentile(ordered, 0.99), 2),
                "max": round(1000 * ordered[-1], 2), "samples": len(ordered)}


class RateWindow:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = 3.0, size: int = 4096) -> None:
        self.window = window
        self._times: deque[float] = deque(maxlen=size)
        self._since = time.monotonic()

    def restart(self) -> None:
        self._times.clear()
        self._since = time.monotonic()

    def add(self, when: float) -> None:
        self._times.append(when)

    def rate(self, now: float) -> float:
        span = min(self.window, now - self._since)
        if span <= 0.2:
            return 0.0
        recent = sum(1 for t in self._times if t >= now - self.window)
        return recent / span
