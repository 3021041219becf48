"""The zoo under a realistic mix: SQLite with one instance, PostgreSQL with 1, 2 and 3 behind haproxy.

Run ``python -m benchmarks.zoo`` (``--help`` for options; ``--quick`` for
short runs that check it works).  The mix, per request: 80% reads (35% a page
of animals, 15% a page of zoos filtered by name, 30% one animal's details) and
20% writes (15% create an animal, 5% rename one with PATCH).  Every instance
is ``python -m examples.zoo`` (one process, ``restkit.serve``) on 127.0.0.1;
with PostgreSQL a throwaway cluster (:mod:`tests.pg`) holds the data and
haproxy balances round-robin.  The load comes from ``--procs`` client
processes of ``--threads`` keep-alive connections each.

Output: one row per configuration with req/s, p50 and p99 latency (ms), the
share of non-2xx answers, and the scaling ratio of 2 and 3 instances over 1.
On a machine with few cores the clients, the instances, PostgreSQL and
haproxy share them: the ratio is bounded by the cores, report it as measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"
ZOOS = 20
ANIMALS = 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(conn: http.client.HTTPConnection, method: str, path: str, body: object = None) -> int:
    headers = {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


# --- the load ------------------------------------------------------------------------------


def one(conn: http.client.HTTPConnection, rng: random.Random, seq: list[int]) -> int:
    """One request of the mix."""
    roll = rng.random()
    if roll < 0.35:
        return request(conn, "GET", f"/v1/animals?limit=20&offset={rng.randrange(0, ANIMALS - 20)}&sortby=name")
    if roll < 0.50:
        return request(conn, "GET", f"/v1/zoos?name=zoo%20{rng.randrange(ZOOS)}")
    if roll < 0.80:
        return request(conn, "GET", f"/v1/animals/{rng.randrange(1, ANIMALS)}")
    if roll < 0.95:
        seq[0] += 1
        body = {"name": f"bench {seq[0]}", "animal_type_id": rng.randrange(1, 7), "zoo_id": rng.randrange(1, ZOOS)}
        return request(conn, "POST", "/v1/animals", body)
    return request(conn, "PATCH", f"/v1/animals/{rng.randrange(1, ANIMALS)}", {"name": f"renamed {rng.random():.6f}"})


def client_process(port: int, threads: int, seconds: float, seed: int) -> tuple[list[float], int, int]:
    """Run ``threads`` keep-alive clients for ``seconds``: latencies (s), 2xx and other answers."""
    latencies: list[float] = []
    counts = [0, 0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        seq = [seed * 10_000_000 + index * 1_000_000]
        mine: list[float] = []
        good = bad = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            began = time.perf_counter()
            try:
                status = one(conn, rng, seq)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                bad += 1
                continue
            mine.append(time.perf_counter() - began)
            if 200 <= status < 300:
                good += 1
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            counts[0] += good
            counts[1] += bad

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    return latencies, counts[0], counts[1]


@dataclass
class Result:
    name: str
    rps: float
    p50: float
    p99: float
    errors: float


def load(name: str, port: int, procs: int, threads: int, seconds: float) -> Result:
    with ProcessPoolExecutor(procs) as pool:
        futures = [pool.submit(client_process, port, threads, seconds, seed) for seed in range(procs)]
        results = [future.result(timeout=seconds + 120) for future in futures]
    latencies = sorted(x for lat, _, _ in results for x in lat)
    good = sum(g for _, g, _ in results)
    bad = sum(b for _, _, b in results)
    if not latencies:
        return Result(name, 0.0, 0.0, 0.0, 1.0)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(name, (good + bad) / seconds, statistics.median(latencies) * 1000, p99 * 1000,
                  bad / max(1, good + bad))


# --- the parts ------------------------------------------------------------------------------


def wait_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"an instance exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                if request(conn, "GET", "/v1") == 200:
                    return
            finally:
                conn.close()
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("an instance did not answer within 60 s")


@contextmanager
def instances(db: str, count: int, durability: str, logs: Path) -> Iterator[list[int]]:
    ports, processes = [], []
    try:
        for n in range(count):
            port = free_port()
            log = (logs / f"zoo-{port}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", db, "--token", TOKEN,
                 "--rate-limit", "0", "--empty", "--create", "--durability", durability],
                cwd=ROOT, stdout=log, stderr=log,
            )
            processes.append(process)
            wait_serving(port, process)
            ports.append(port)
        yield ports
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def balancer(ports: list[int], root: Path) -> Iterator[int]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    port = free_port()
    servers = "\n".join(f"    server s{n} 127.0.0.1:{p} check" for n, p in enumerate(ports))
    config = root / f"haproxy-{port}.cfg"
    config.write_text(
        "global\n    maxconn 1024\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n"
        f"    timeout server 30s\nlisten zoo\n    bind 127.0.0.1:{port}\n    balance roundrobin\n"
        f"    option httpchk GET /v1\n{servers}\n"
    )
    process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def seed(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for n in range(ZOOS):
            request(conn, "POST", "/v1/zoos", {"name": f"zoo {n}", "city": "Bench"})
        for n in range(ANIMALS):
            request(conn, "POST", "/v1/animals", {"name": f"animal {n}", "animal_type_id": n % 6 + 1,
                                                   "zoo_id": n % ZOOS + 1})
    finally:
        conn.close()


# --- the command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run (default 10)")
    parser.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="keep-alive connections per client process (default 8)")
    parser.add_argument("--quick", action="store_true", help="1-second runs: checks it works")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    results: list[Result] = []
    root = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    try:
        for durability in ("full", "normal"):
            db = str(root / f"zoo-{durability}.db")
            with instances(db, 1, durability, root) as ports:
                seed(ports[0])
                results.append(load(f"sqlite, 1 instance, --durability {durability}", ports[0], args.procs,
                                    args.threads, seconds))
        if not args.no_postgres:
            from tests.pg import PgCluster, missing_postgres

            reason = missing_postgres()
            if reason or shutil.which("haproxy") is None and not os.access("/usr/sbin/haproxy", os.X_OK):
                print(f"PostgreSQL runs skipped: {reason or 'haproxy is not installed'}")
            else:
                cluster = PgCluster()
                try:
                    url = cluster.create_database("bench")
                    for count in (1, 2, 3):
                        with instances(url, count, "full", root) as ports, balancer(ports, root) as port:
                            if count == 1:
                                seed(port)
                            results.append(load(f"postgresql, {count} instance(s) behind haproxy", port, args.procs,
                                                args.threads, seconds))
                finally:
                    cluster.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"zoo mix: 80% reads / 20% writes, {args.procs} x {args.threads} keep-alive clients, {seconds:g} s a run,"
          f" {os.cpu_count()} CPU(s)")
    print(f"{'configuration':<45} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for r in results:
        print(f"{r.name:<45} {r.rps:>9.0f} {r.p50:>8.2f} {r.p99:>8.2f} {r.errors:>8.2%}")
    pg = [r for r in results if r.name.startswith("postgresql")]
    if len(pg) == 3 and pg[0].rps:
        print(f"scaling over 1 PostgreSQL instance: 2 -> {pg[1].rps / pg[0].rps:.2f}x, 3 -> {pg[2].rps / pg[0].rps:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
