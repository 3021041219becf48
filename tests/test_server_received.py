"""``environ["restkit.received"]``: when the server parsed the request's head, before it waited for a thread.

An app counts a deadline from it (the zoo does): a request that queued for a
worker has already spent part of its time.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

TIMEOUT = 10.0


def test_received_is_the_arrival_not_the_pickup(live_server: Any) -> None:
    release = threading.Event()
    entered = threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        picked_up = time.monotonic()
        if environ["PATH_INFO"] == "/hold":
            entered.set()
            release.wait(TIMEOUT)
        body = json.dumps({"received": environ["restkit.received"], "picked_up": picked_up}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = live_server(app, threads=1)  # one thread: the second request queues behind the first
    holder = threading.Thread(target=lambda: urllib.request.urlopen(server.url + "/hold", timeout=TIMEOUT).read())
    holder.start()
    assert entered.wait(TIMEOUT)
    answers: list[dict[str, float]] = []
    waiter = threading.Thread(target=lambda: answers.append(
        json.load(urllib.request.urlopen(server.url + "/queued", timeout=TIMEOUT))))
    before = time.monotonic()
    waiter.start()
    time.sleep(0.5)  # the second request sits parsed, waiting for the one thread
    release.set()
    waiter.join(TIMEOUT)
    holder.join(TIMEOUT)
    (answer,) = answers
    assert before <= answer["received"] <= answer["picked_up"]
    assert answer["picked_up"] - answer["received"] >= 0.4  # it counted the wait for the thread
