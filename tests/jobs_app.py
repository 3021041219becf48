"""An app with restkit.jobs for the process tests (test_jobs_processes.py) and the benchmark.

``python -m restkit 'tests.jobs_app:create_app()'`` with ``JOBS_DB`` (an SQLite
file or a ``postgresql://`` URL, shared by every process), ``JOBS_LEASE``
(seconds, default 1), ``JOBS_DELAY`` (seconds each ``count`` job works, default
0.2) and ``JOBS_THREADS`` (runners per process, default 2).

Kinds: ``count`` works ``JOBS_DELAY`` seconds, then adds one to the counter in
the database, once per job however often it runs (its effect is keyed by the
job's id, in the same transaction: the pattern the README recommends), and logs
every run in ``runs``; ``made`` returns ``job.created(...)`` (303); ``boom``
raises on every attempt; ``slow`` works until it is cancelled; ``noop`` does nothing (the benchmark's).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from typing import Any

from restkit import App, Request, Response
from restkit.jobs import Job, JobContext, Jobs, PostgresStore, SQLiteStore
from restkit.jobs import Store as JobStore

TABLES = [
    "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS effects (job_id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS runs (job_id TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL)",
]


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def create_tables(db: str) -> None:
    """The counter's tables (the test creates them before any process starts)."""
    for statement in [*TABLES, "INSERT INTO counter (id, n) VALUES (1, 0) ON CONFLICT DO NOTHING"]:
        execute(db, [(statement, ())])


def execute(db: str, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """Run ``statements`` in one transaction; the first row of each."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(db) as conn, conn.transaction():
            return [_first(conn.execute(sql.replace("?", "%s"), params)) for sql, params in statements]
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        rows = [_first(conn.execute(sql, params)) for sql, params in statements]
        conn.execute("COMMIT")
    return rows


def _first(cursor: Any) -> Any:
    return cursor.fetchone() if cursor.description else None


def create_app() -> App:
    db = os.environ["JOBS_DB"]
    delay = float(os.environ.get("JOBS_DELAY", "0.2"))
    store: JobStore = PostgresStore(db) if is_postgres(db) else SQLiteStore(db)
    app = App(openapi=True)
    jobs = app.use(Jobs(store, lease=float(os.environ.get("JOBS_LEASE", "1")), poll=0.2,
                        threads=int(os.environ.get("JOBS_THREADS", "2"))))

    @jobs.kind("count")
    def count(job: JobContext) -> dict[str, Any]:
        execute(db, [("INSERT INTO runs (job_id, attempt, pid) VALUES (?, ?, ?)", (job.id, job.attempt, os.getpid()))])
        job.sleep(delay)
        inserted, total = count_once(db, job.id)
        return {"counted": inserted, "total": total}

    @jobs.kind("noop")
    def noop(job: JobContext) -> None:
        return None

    @jobs.kind("made")
    def made(job: JobContext) -> Any:
        return job.created(f"/things/{job.payload['thing']}", {"thing": job.payload["thing"]})

    @jobs.kind("boom", max_attempts=3, backoff=0.1)
    def boom(job: JobContext) -> Any:
        raise ValueError(f"boom on attempt {job.attempt}")

    @jobs.kind("slow")
    def slow(job: JobContext) -> Any:
        while True:
            job.sleep(0.05)

    @app.post("/jobs/<kind>", responses={202: Job})
    def submit(request: Request, kind: str) -> Response:
        """Submit a job of ``kind`` with the JSON body as its payload."""
        return jobs.accepted(request, jobs.submit(kind, request.json, key=request.headers.get("Idempotency-Key")))

    @app.get("/pid")
    def pid(request: Request) -> dict[str, int]:
        return {"pid": os.getpid()}

    return app


def count_once(db: str, job_id: str) -> tuple[bool, int]:
    """Add one to the counter unless this job already did, in one transaction: the effect and its key."""
    insert = "INSERT INTO effects (job_id) VALUES (?) ON CONFLICT DO NOTHING RETURNING job_id"
    add = "UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n"
    read = "SELECT n FROM counter WHERE id = 1"
    if is_postgres(db):
        import psycopg

        with psycopg.connect(db) as conn, conn.transaction():
            new = conn.execute(insert.replace("?", "%s"), (job_id,)).fetchone() is not None
            row = conn.execute(add if new else read).fetchone()
            return new, int(row[0]) if row else 0
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as lite:
        lite.execute("BEGIN IMMEDIATE")
        new = lite.execute(insert, (job_id,)).fetchone() is not None
        row = lite.execute(add if new else read).fetchone()
        lite.execute("COMMIT")
    return new, int(row[0]) if row else 0
