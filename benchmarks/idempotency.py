"""What an ``Idempotency-Key`` costs a POST, in process: restkit alone, no server.

Run ``python -m benchmarks.idempotency`` (``--help`` for options).  One app,
``POST /zoos`` with the 200-byte JSON object of the ``post_json`` scenario of
:mod:`benchmarks.inprocess`, answering 201 with the object; five ways:

* ``plain``: the app without :class:`restkit.idempotency.Idempotency` (the floor);
* ``no key``: the feature installed, the request without the header;
* ``key, memory`` / ``key, sqlite``: a new key per request: the key is claimed,
  the handler runs, the answer is kept (``MemoryKeyStore`` / ``SQLiteKeyStore``
  on a temporary file, WAL, ``synchronous=NORMAL``);
* ``replay, memory`` / ``replay, sqlite``: the same key and body every time: the
  kept answer is sent again.

Time is the CPU time of the benchmarking thread (``time.thread_time``), which
other processes on a shared machine inflate less than the wall clock; the
ways take turns inside each repeat, so a slow moment hits them all alike.
The table shows the median calls/s, the spread ((max - min) /
median) and each way's cost per call beyond ``plain`` in microseconds.
"""

from __future__ import annotations

import argparse
import gc
import io
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from restkit import App
from restkit.idempotency import Idempotency, KeyStore, MemoryKeyStore, SQLiteKeyStore

from .adapters import SCENARIOS, environ_for

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SCENARIO = next(s for s in SCENARIOS if s.key == "post_json")


def make_app(store: KeyStore | None) -> App:
    app = App()
    if store is not None:
        app.use(Idempotency(store))

    @app.post("/zoos")
    def create(request: Any) -> tuple[dict[str, Any], int]:
        return {"id": 1, **request.json}, 201

    return app


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def time_calls(app: WSGIApp, keys: Iterable[str | None], calls: int) -> float:
    """Seconds taken by ``calls`` POSTs, the n-th with the n-th of ``keys`` (None: no header)."""
    base = environ_for(SCENARIO)
    body = SCENARIO.body
    started = time.thread_time()
    for _, key in zip(range(calls), keys):
        environ = base.copy()
        environ["wsgi.input"] = io.BytesIO(body)
        if key is not None:
            environ["HTTP_IDEMPOTENCY_KEY"] = key
        result = app(environ, _start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return time.thread_time() - started


def ways(directory: Path) -> dict[str, tuple[WSGIApp, Callable[[], Iterable[str | None]]]]:
    """Each way: its app and a maker of the keys its requests send."""
    fresh = itertools.count()

    def new_keys() -> Iterable[str | None]:
        return (f"key-{n}" for n in fresh)

    memory, sqlite = make_app(MemoryKeyStore()), make_app(SQLiteKeyStore(str(directory / "keys.db")))
    return {
        "plain": (make_app(None), lambda: itertools.repeat(None)),
        "no key": (memory, lambda: itertools.repeat(None)),
        "key, memory": (memory, new_keys),
        "replay, memory": (memory, lambda: itertools.repeat("the-same-key")),
        "key, sqlite": (sqlite, new_keys),
        "replay, sqlite": (sqlite, lambda: itertools.repeat("the-same-key")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idempotency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="repeats of every way (default 7)")
    parser.add_argument("--calls", type=int, default=5000, help="calls per way per repeat (default 5000)")
    parser.add_argument("--quick", action="store_true", help="2 repeats of 200 calls: checks that it runs")
    args = parser.parse_args(argv)
    repeats, calls = (2, 200) if args.quick else (args.repeats, args.calls)
    with tempfile.TemporaryDirectory() as directory:
        table = ways(Path(directory))
        for app, keys in table.values():
            time_calls(app, keys(), 50)  # warm up; the replays' key is kept from here on
        rates: dict[str, list[float]] = {name: [] for name in table}
        for repeat in range(repeats):
            for name, (app, keys) in table.items():
                gc.collect()
                rates[name].append(calls / time_calls(app, keys(), calls))
            print(f"  repeat {repeat + 1}/{repeats} done", file=sys.stderr, flush=True)
    floor = statistics.median(rates["plain"])
    print(f"POST /zoos (200-byte JSON), {calls} calls x {repeats} repeats, in process, CPU time")
    print(f"{'way':<16} {'calls/s':>10} {'spread':>7} {'us/call':>8} {'cost vs plain':>14}")
    for name, values in rates.items():
        rate = statistics.median(values)
        spread = (max(values) - min(values)) / rate
        extra = 1e6 / rate - 1e6 / floor
        print(f"{name:<16} {rate:>10,.0f} {spread:>6.0%} {1e6 / rate:>8.1f} {extra:>+11.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
