"""202 Accepted for long work: reports on a zoo queued in the database and run by any instance.

On both engines, in process; the job that survives the instance that took it
being killed is in test_examples_zoo_scaleout.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import webtest

from examples.zoo.app import ZooApp
from examples.zoo.jobs import JobQueue, JobRunner
from tests.conftest import make_client
from tests.test_examples_zoo import AUTH, assert_error, create, new_app
from tests.zoo_pg_fixtures import pg_cluster, pg_database, zoo_db, zoo_dbs  # noqa: F401


@pytest.fixture
def app(zoo_db: str) -> Any:
    zoo = new_app(zoo_db)
    yield zoo
    zoo.close()


@pytest.fixture
def client(app: ZooApp) -> webtest.TestApp:
    return make_client(app)


def wait_for(client: webtest.TestApp, url: str, statuses: set[str], limit: float = 30) -> dict[str, Any]:
    """GET the job until its status is one of ``statuses`` (a bound, not a measurement)."""
    deadline = time.monotonic() + limit
    while True:
        job: dict[str, Any] = client.get(url).json
        if job["status"] in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_a_report_is_accepted_with_202_and_its_job_finishes(client: webtest.TestApp) -> None:
    response = client.post("/v1/zoos/1/reports", headers=AUTH, status=202)
    job = response.json
    assert response.headers["Location"] == f"http://localhost:80/v1/jobs/{job['id']}"
    assert job["status"] in ("pending", "running") and job["kind"] == "report" and job["attempts"] in (0, 1)
    assert job["links"] == {"self": f"/v1/jobs/{job['id']}", "zoo": "/v1/zoos/1"}
    pending = client.get(job["links"]["self"])
    assert pending.json["status"] != "pending" or pending.headers["Retry-After"] == "1"
    done = wait_for(client, job["links"]["self"], {"done", "failed"})
    assert done["status"] == "done" and done["attempts"] == 1, done
    assert done["links"]["result"] == f"/v1/jobs/{job['id']}/result"
    assert "Retry-After" not in client.get(job["links"]["self"]).headers
    report = client.get(done["links"]["result"]).json
    assert report["zoo_id"] == 1 and report["animals"] == 2 and report["employees"] == 1  # the demo data
    assert report["animals_by_type"] == {"mammal": 2}


def test_reports_need_the_token_and_an_existing_zoo(client: webtest.TestApp, app: ZooApp) -> None:
    assert_error(client.post("/v1/zoos/1/reports", status=401), 401)
    assert_error(client.post("/v1/zoos/99/reports", headers=AUTH, status=404), 404)
    zoo = create(client, "zoos", {"name": "Short-lived", "city": "x"})
    assert client.delete(zoo["links"]["self"], headers=AUTH).status_int == 204
    assert_error(client.post(f"/v1/zoos/{zoo['id']}/reports", headers=AUTH, status=410), 410)
    assert_error(client.get("/v1/jobs/12345", status=404), 404)
    assert_error(client.get("/v1/jobs/12345/result", status=404), 404)


def test_a_lost_lease_is_taken_over_and_the_first_runner_cannot_overwrite(app: ZooApp) -> None:
    queue = JobQueue(app.store)
    job = queue.submit("report", {"zoo_id": 1})
    first = queue.claim("first", lease=0.01)
    assert first is not None and first["id"] == job["id"] and first["attempts"] == 1
    time.sleep(0.05)  # the lease runs out: "first" died, or stalled
    second = queue.claim("second", lease=60)
    assert second is not None and second["id"] == job["id"] and second["attempts"] == 2
    assert queue.claim("third", lease=60) is None  # held
    assert not queue.renew(job["id"], "first", 60) and not queue.finish(job["id"], "first", result={"stale": 1})
    assert queue.finish(job["id"], "second", result={"fresh": 1})
    row = queue.get(job["id"])
    assert row is not None and row["status"] == "done" and '"fresh"' in row["result"]


def test_a_job_abandoned_too_often_fails(app: ZooApp) -> None:
    queue = JobQueue(app.store)
    job = queue.submit("report", {"zoo_id": 1})
    for n in range(3):
        assert queue.claim(f"runner {n}", lease=0.01) is not None
        time.sleep(0.05)
    assert queue.claim("last", lease=60) is None
    row = queue.get(job["id"])
    assert row is not None and row["status"] == "failed" and "abandoned" in row["error"]
    client = make_client(app)
    shown = client.get(f"/v1/jobs/{job['id']}").json
    assert shown["status"] == "failed" and "abandoned" in shown["error"] and "result" not in shown["links"]


def test_a_runner_stopped_mid_job_leaves_it_to_another(app: ZooApp) -> None:
    queue = JobQueue(app.store)
    job = queue.submit("report", {"zoo_id": 2})
    slow = JobRunner(queue, lease=0.3, delay=60, poll=0.01)
    slow.start()
    deadline = time.monotonic() + 30
    while (queue.get(job["id"]) or {})["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    slow.stop()  # as good as dead: its lease is no longer renewed
    quick = JobRunner(queue, lease=30, poll=0.01)
    quick.start()
    try:
        deadline = time.monotonic() + 30
        while (queue.get(job["id"]) or {})["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        quick.stop()
    row = queue.get(job["id"])
    assert row is not None and row["status"] == "done" and row["attempts"] == 2
