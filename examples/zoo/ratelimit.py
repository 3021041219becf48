"""A per-client rate limit: at most N requests in any 60 seconds.

A sliding-window log: for each client the times of its recent requests, in a
deque.  A request is allowed when fewer than N of them fall in the last
minute; refused requests are not recorded, so a client that keeps knocking
gets back in as soon as its oldest request leaves the window.  One lock
guards the table; clients silent for a minute are dropped now and then, so
the table does not grow without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Allow ``limit`` requests per ``window`` seconds per client key.

    Args:
        limit: requests allowed in any window; 0 or less turns the limit off.
        window: the window in seconds.
        clock: a monotonic clock (tests pass a fake one).
    """

    def __init__(self, limit: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + window

    def hit(self, key: str) -> tuple[bool, int, int]:
        """Record a request by ``key`` if allowed.

        Returns:
            ``(allowed, remaining, retry_after)``: whether the request may go on,
            how many more requests the window allows, and when refused the
            seconds until one will be allowed.
        """
        if self.limit <= 0:
            return True, 0, 0
        now = self._clock()
        start = now - self.window
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(start)
                self._next_sweep = now + self.window
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= start:
                hits.popleft()
            if len(hits) >= self.limit:
                retry_after = max(1, math.ceil(hits[0] + self.window - now))
                return False, 0, retry_after
            hits.append(now)
            return True, self.limit - len(hits), 0

    def _sweep(self, start: float) -> None:
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1] <= start]:
            del self._hits[key]
