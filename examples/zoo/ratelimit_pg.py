"""The zoo's rate limit kept in PostgreSQL, so it holds across instances.

The same sliding-window log as :class:`restkit.ratelimit.MemoryStore`,
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

from restkit.ratelimit import Decision
from restkit.ratelimit import Store as RateStore

from .faults import StorageFault
from .store_pg import PgStore

__all__ = ["PgRateStore"]

logger = logging.getLogger("examples.zoo")

SWEEP_EVERY = 1000  # hits between sweeps of silent clients, per process


class PgRateStore(RateStore):
    """Where :class:`restkit.ratelimit.RateLimit` counts: ``store``'s PostgreSQL database."""

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self._hits = 0
        self._failing = False
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window: float) -> Decision:
        """Count a request by ``key`` if fewer than ``limit`` fall in the last ``window`` seconds."""
        key = key.replace("\\", "\\\\").replace("\0", "\\0")  # PostgreSQL text holds no NUL: escape it
        with self._lock:
            self._hits += 1
            sweep = self._hits % SWEEP_EVERY == 0
        span = f"{window} seconds"
        try:
            with self.store._write() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
                cur.execute("DELETE FROM rate_hits WHERE key = %s AND at <= now() - %s::interval", (key, span))
                row = cur.execute(
                    "SELECT count(*) AS n, EXTRACT(EPOCH FROM min(at) + %s::interval - now()) AS wait"
                    " FROM rate_hits WHERE key = %s",
                    (span, key),
                ).fetchone()
                count = int(row["n"]) if row else 0
                wait = float(row["wait"]) if row and row["wait"] is not None else window
                if count >= limit:
                    return Decision(False, 0, max(1, math.ceil(wait)))
                cur.execute("INSERT INTO rate_hits (key, at) VALUES (%s, now())", (key,))
                if sweep:
                    cur.execute("DELETE FROM rate_hits WHERE at <= now() - %s::interval", (span,))
        except (StorageFault, psycopg.Error) as exc:
            if not self._failing:
                logger.error("rate limit: the database cannot count requests (%s); letting them through", exc)
                self._failing = True
            return Decision(True, limit, 0)
        if self._failing:
            logger.warning("rate limit: counting again")
            self._failing = False
        return Decision(True, limit - count - 1, max(1, math.ceil(wait if count else window)))
