"""The zoo's rate limit kept in PostgreSQL, so it holds across instances.

The same sliding-window log as :class:`examples.zoo.ratelimit.RateLimiter`,
in an unlogged table (``rate_hits``: a key and the time of each allowed
request; losing it in a crash of the server only forgets recent requests).
Each hit is one transaction that takes an advisory lock on the key, drops the
key's hits older than the window, counts the rest and records the new one if
allowed: two instances counting the same client queue on the lock, so the
limit is exact across them.  Times come from the database's clock, which every
instance shares.  Hits of clients silent for a window are swept now and then.

When the database cannot be asked, the request is let through (a rate limit
that fails closed would turn a storage fault into a total outage) and the
fault is logged once.
"""

from __future__ import annotations

import logging
import math
import threading

import psycopg

from .faults import StorageFault
from .store_pg import PgStore

__all__ = ["PgRateLimiter"]

logger = logging.getLogger("examples.zoo")

SWEEP_EVERY = 1000  # hits between sweeps of silent clients, per process


class PgRateLimiter:
    """Allow ``limit`` requests per ``window`` seconds per client key, counted in ``store``'s database.

    Args:
        store: the PostgreSQL store (its pool and its ``rate_hits`` table).
        limit: requests allowed in any window; 0 or less turns the limit off.
        window: the window in seconds.
    """

    def __init__(self, store: PgStore, limit: int, *, window: float = 60.0) -> None:
        self.store = store
        self.limit = limit
        self.window = window
        self._hits = 0
        self._failing = False
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[bool, int, int]:
        """Record a request by ``key`` if allowed; ``(allowed, remaining, retry_after)``."""
        if self.limit <= 0:
            return True, 0, 0
        with self._lock:
            self._hits += 1
            sweep = self._hits % SWEEP_EVERY == 0
        try:
            with self.store._write() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
                window = f"{self.window} seconds"
                cur.execute("DELETE FROM rate_hits WHERE key = %s AND at <= now() - %s::interval", (key, window))
                row = cur.execute(
                    "SELECT count(*) AS n, EXTRACT(EPOCH FROM min(at) + %s::interval - now()) AS wait"
                    " FROM rate_hits WHERE key = %s",
                    (window, key),
                ).fetchone()
                count = int(row["n"]) if row else 0
                if count >= self.limit:
                    wait = float(row["wait"]) if row and row["wait"] is not None else self.window
                    return False, 0, max(1, math.ceil(wait))
                cur.execute("INSERT INTO rate_hits (key, at) VALUES (%s, now())", (key,))
                if sweep:
                    cur.execute("DELETE FROM rate_hits WHERE at <= now() - %s::interval", (window,))
        except (StorageFault, psycopg.Error) as exc:
            if not self._failing:
                logger.error("rate limit: the database cannot count requests (%s); letting them through", exc)
                self._failing = True
            return True, 0, 0
        if self._failing:
            logger.warning("rate limit: counting again")
            self._failing = False
        return True, self.limit - count - 1, 0
