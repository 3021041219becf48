"""The rate limit counted in one SQLite file by two worker processes: exactly the limit passes.

:mod:`tests.stores_app` with ``STORES_RATE`` under ``gunicorn -w 2`` and under
``python -m restkit ... --workers 2``; each request opens its own connection,
so the kernel spreads them over both workers.  (Several hosts on PostgreSQL:
tests/test_examples_zoo_scaleout.py, whose zoo counts in restkit.ratelimit.PostgresStore.)
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_idempotency_processes import Process, call, environment, gunicorn_command, restkit_command

LIMIT, REQUESTS = 40, 100


@pytest.mark.parametrize("server", ["restkit", "gunicorn"])
def test_exactly_the_limit_passes_across_two_workers(server: str, tmp_path: Path) -> None:
    port = free_port()
    command = restkit_command(port, "--workers", "2") if server == "restkit" else gunicorn_command(port)
    process = Process(command, port, environment(str(tmp_path / "shop.db"), STORES_RATE=str(LIMIT)),
                      tmp_path / "server.log")
    process.start()  # its readiness probes are not counted (restkit.health takes no app-wide feature)
    answers: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def client(count: int) -> None:
        for _ in range(count):
            status, headers, body = call(port, "GET", "/pid")
            with lock:
                answers.append((status, int(headers["x-pid"]) if "x-pid" in headers else None))

    try:
        threads = [threading.Thread(target=client, args=(REQUESTS // 4,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        statuses = [status for status, _ in answers]
        assert len(statuses) == REQUESTS
        assert statuses.count(200) == LIMIT and statuses.count(429) == REQUESTS - LIMIT, statuses
        # both workers answered (a 429 too shows a worker that counted with the other)
        assert len({pid for _, pid in answers if pid is not None}) == 2, answers
    except AssertionError as exc:  # what the server logged says why (a store failure is logged by restkit.storage)
        raise AssertionError(f"{exc}\nserver log:\n{process.log.read_text(errors='replace')[-3000:]}") from None
    finally:
        process.stop()
