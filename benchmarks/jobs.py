"""Job submission with restkit.jobs: submissions per second on SQLite and PostgreSQL.

Run ``python -m benchmarks.jobs`` (``--quick``: 200 submissions a run, to check it works).
Per store, three figures:

* ``store.add``: jobs queued per second by ``jobs.submit()`` in this process, from
  ``--threads`` threads (no HTTP): what the store itself takes;
* ``POST, no runners``: ``202 Accepted`` answers per second from one
  ``python -m restkit`` process (``tests/jobs_app.py``, ``Jobs(threads=0)``) to
  ``--threads`` keep-alive clients;
* ``POST, 2 runners``: the same while two runner threads in that process run
  the jobs (``noop``: a claim and a finish, two transactions per job), and how
  many jobs per second they finished meanwhile.

Counts are bounded (``--count`` submissions a run); nothing is repeated, so on
a busy machine quote ratios measured in one run, with the load average.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.zoo import free_port  # noqa: E402
from restkit.jobs import Jobs, PostgresStore, SQLiteStore, Store  # noqa: E402
from tests.jobs_app import create_tables  # noqa: E402

SUCCEEDED = "SELECT COUNT(*) FROM restkit_jobs WHERE status = 'succeeded'"


def in_threads(count: int, threads: int, one: Callable[[int], None]) -> float:
    """Call ``one(i)`` ``count`` times from ``threads`` threads; the calls per second."""
    share = [count // threads + (1 if n < count % threads else 0) for n in range(threads)]
    began = time.perf_counter()
    workers = [threading.Thread(target=lambda n=n: [one(n) for _ in range(share[n])]) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - began)


def store_rate(store: Store, count: int, threads: int) -> float:
    jobs = Jobs(store, threads=0)

    @jobs.kind("noop")
    def noop(job: object) -> None:
        return None

    rate = in_threads(count, threads, lambda n: None if jobs.submit("noop", {"n": n}) else None)
    store.close()
    return rate


@contextmanager
def server(db: str, runners: int, root: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JOBS_DB": db, "JOBS_THREADS": str(runners), "JOBS_DELAY": "0",
           "JOBS_LEASE": "30"}
    with (root / f"server-{port}.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "restkit", "tests.jobs_app:create_app()", "--port", str(port),
                                    "--no-access-log"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/pid")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the server did not start (see {root})") from None
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def post_rate(port: int, count: int, threads: int) -> tuple[float, int]:
    """Submissions per second over HTTP, and the non-202 answers."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(threads)]
    refused = [0]
    body = json.dumps({"n": 1}).encode()

    def one(n: int) -> None:
        conns[n].request("POST", "/jobs/noop", body=body, headers={"Content-Type": "application/json"})
        answer = conns[n].getresponse()
        answer.read()
        if answer.status != 202:
            refused[0] += 1

    rate = in_threads(count, threads, one)
    for conn in conns:
        conn.close()
    return rate, refused[0]



def run(name: str, db: str, make_store: Callable[[], Store], count_done: Callable[[], int], args: argparse.Namespace,
        root: Path) -> list[tuple[str, str, float, str]]:
    rows = [(name, f"store.add, {args.threads} threads", store_rate(make_store(), args.count, args.threads), "")]
    with server(db, 0, root) as port:
        rate, refused = post_rate(port, args.count, args.threads)
        rows.append((name, "POST, no runners", rate, f"{refused} refused"))
    before = count_done()
    with server(db, 2, root) as port:
        began = time.perf_counter()
        rate, refused = post_rate(port, args.count, args.threads)
        ran = (count_done() - before) / (time.perf_counter() - began)
        rows.append((name, "POST, 2 runners", rate, f"{refused} refused; {ran:.0f} jobs/s finished meanwhile"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="submissions a run (default 2000)")
    parser.add_argument("--threads", type=int, default=4, help="submitting threads / keep-alive clients (default 4)")
    parser.add_argument("--quick", action="store_true", help="200 submissions a run: checks it works")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    if args.quick:
        args.count = 200
    rows: list[tuple[str, str, float, str]] = []
    root = Path(tempfile.mkdtemp(prefix="jobs-bench-"))
    try:
        db = str(root / "jobs.db")
        create_tables(db)

        def sqlite_done() -> int:
            import sqlite3

            with sqlite3.connect(db) as conn:
                return int(conn.execute(SUCCEEDED).fetchone()[0])

        rows += run("sqlite", db, lambda: SQLiteStore(db), sqlite_done, args, root)
        if not args.no_postgres:
            from tests.pg import PgCluster, missing_postgres

            reason = missing_postgres()
            if reason:
                print(f"PostgreSQL runs skipped: {reason}")
            else:
                cluster = PgCluster()
                try:
                    url = cluster.create_database("jobsbench")
                    create_tables(url)

                    def pg_done() -> int:
                        import psycopg

                        with psycopg.connect(url) as conn:
                            row = conn.execute(SUCCEEDED).fetchone()
                            return int(row[0]) if row else 0

                    rows += run("postgresql", url, lambda: PostgresStore(url), pg_done, args, root)
                finally:
                    cluster.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()
    print(f"job submissions: {args.count} a run, {args.threads} threads/clients, {os.cpu_count()} CPU(s),"
          f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'store':<11} {'how':<24} {'per second':>10}  notes")
    for store, how, rate, notes in rows:
        print(f"{store:<11} {how:<24} {rate:>10.0f}  {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
