"""An app for the process tests of the shared stores: ``python -m restkit 'tests.stores_app:create_app()'``.

Its settings come from the environment:

* ``STORES_DB``: an SQLite file or a ``postgresql://`` URL.  The orders the app
  creates, its idempotency keys and (with ``STORES_RATE``) its rate limit's
  counts all live there, so every process and every instance shares them.
* ``STORES_RATE``: requests per hour per client address; unset: no rate limit.

``POST /orders`` inserts an order (``{"delay": s}`` sleeps first, inside the
request, so that retries meet it running; ``{"fail": true}`` answers 503 after
counting an attempt) and answers 201 with the order and the pid that made it.
``GET /orders`` counts the orders and the attempts; ``GET /pid`` names the
process that answers; ``GET /readyz`` is the balancer's probe.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from restkit import App
from restkit.health import Health
from restkit.idempotency import Idempotency, KeyStore, PostgresKeyStore, SQLiteKeyStore
from restkit.ratelimit import PostgresStore, RateLimit, SQLiteStore, Store

TABLE = "CREATE TABLE IF NOT EXISTS orders (id {key}, item TEXT NOT NULL, pid INTEGER NOT NULL, failed INTEGER NOT NULL)"


class Orders:
    """The orders table, in SQLite or PostgreSQL."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.pg = db.startswith("postgresql://")
        with self._cursor() as cur:
            cur.execute(TABLE.format(key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if self.pg else
                                     "INTEGER PRIMARY KEY AUTOINCREMENT"))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.pg:
            import psycopg

            with psycopg.connect(self.db, autocommit=True, connect_timeout=5) as conn:
                yield conn.cursor()
        else:
            conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
            try:
                yield conn.cursor()
            finally:
                conn.close()

    def add(self, item: str, failed: bool = False) -> int:
        mark = "%s" if self.pg else "?"
        with self._cursor() as cur:
            cur.execute(f"INSERT INTO orders (item, pid, failed) VALUES ({mark}, {mark}, {mark}) RETURNING id",
                        (item, os.getpid(), int(failed)))
            return int(cur.fetchone()[0])

    def count(self) -> dict[str, int]:
        with self._cursor() as cur:
            cur.execute("SELECT count(*) - sum(failed), sum(failed) FROM orders")
            orders, failed = cur.fetchone()
            return {"orders": int(orders or 0), "failed": int(failed or 0)}


def create_app() -> App:
    db = os.environ["STORES_DB"]
    pg = db.startswith("postgresql://")
    orders = Orders(db)
    keys: KeyStore = PostgresKeyStore(db) if pg else SQLiteKeyStore(db)
    app = App()
    app.use(Health())
    if os.environ.get("STORES_RATE"):
        counts: Store = PostgresStore(db) if pg else SQLiteStore(db)
        # refuse: a store failure shows as a 503, never as an uncounted pass
        app.use(RateLimit(int(os.environ["STORES_RATE"]), window=3600, store=counts, on_store_error="refuse"))
    app.use(Idempotency(keys))

    @app.after_request
    def name_the_worker(request: Any, response: Any) -> Any:
        """Every answer, a 429 too, says which process gave it (X-Pid)."""
        response.headers.append(("X-Pid", str(os.getpid())))
        return response

    @app.post("/orders")
    def create(request: Any) -> tuple[dict[str, Any], int]:
        body = request.json
        time.sleep(float(body.get("delay", 0)))
        if body.get("fail"):
            orders.add(body["item"], failed=True)
            return {"error": "the warehouse is down"}, 503
        return {"id": orders.add(body["item"]), "item": body["item"], "pid": os.getpid()}, 201

    @app.get("/orders")
    def count(request: Any) -> dict[str, int]:
        return orders.count()

    @app.get("/pid")
    def pid(request: Any) -> dict[str, int]:
        return {"pid": os.getpid()}

    return app
