"""202 Accepted for long work: reports on a zoo, run as restkit.jobs jobs in the zoo's database by any instance.

On both engines, in process; the job that survives the instance that took it
being killed is in test_examples_zoo_scaleout.py (and restkit.jobs' own, with
50 jobs, in test_jobs_processes.py).  Since the zoo moved onto restkit.jobs the
states are restkit's (queued, running, succeeded, failed, cancelled, where they
were pending, running, done, failed), job ids are random (they were 1, 2, 3...)
and DELETE cancels.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import webtest

from examples.zoo.app import ZooApp
from restkit.jobs import Jobs, find_jobs
from restkit.jobs.model import finished, renewed
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


def jobs_of(app: ZooApp) -> Jobs:
    (jobs,) = find_jobs(app)
    return jobs


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
    assert job["status"] in ("queued", "running") and job["kind"] == "report" and job["attempts"] in (0, 1)
    assert job["links"] == {"self": f"/v1/jobs/{job['id']}", "zoo": "/v1/zoos/1"}
    pending = client.get(job["links"]["self"])
    assert pending.json["status"] not in ("queued", "running") or pending.headers["Retry-After"] == "1"
    done = wait_for(client, job["links"]["self"], {"succeeded", "failed"})
    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    assert done["links"]["result"] == f"/v1/jobs/{job['id']}/result"
    assert "Retry-After" not in client.get(job["links"]["self"]).headers
    report = client.get(done["links"]["result"]).json
    assert done["result"] == report and report["zoo_id"] == 1 and report["animals"] == 2 and report["employees"] == 1  # the demo data
    assert report["animals_by_type"] == {"mammal": 2}


def test_reports_need_the_token_and_an_existing_zoo(client: webtest.TestApp, app: ZooApp) -> None:
    assert_error(client.post("/v1/zoos/1/reports", status=401), 401)
    assert_error(client.post("/v1/zoos/99/reports", headers=AUTH, status=404), 404)
    zoo = create(client, "zoos", {"name": "Short-lived", "city": "x"})
    assert client.delete(zoo["links"]["self"], headers=AUTH).status_int == 204
    assert_error(client.post(f"/v1/zoos/{zoo['id']}/reports", headers=AUTH, status=410), 410)
    assert_error(client.get("/v1/jobs/12345", status=404), 404)
    assert_error(client.get("/v1/jobs/12345/result", status=404), 404)
    assert_error(client.delete("/v1/jobs/12345", status=401), 401)
    assert_error(client.delete("/v1/jobs/12345", headers=AUTH, status=404), 404)


def test_a_lost_lease_is_taken_over_and_the_first_runner_cannot_overwrite(app: ZooApp) -> None:
    jobs = jobs_of(app)
    jobs.stop()  # this test is the runner
    job = jobs.submit("report", {"zoo_id": 1})
    now = time.time()
    first = jobs.store.claim(["report"], "first", 0.01, now)
    assert first is not None and first.id == job.id and first.attempts == 1
    second = jobs.store.claim(["report"], "second", 60, now + 1)  # the lease ran out: "first" died, or stalled
    assert second is not None and second.id == job.id and second.attempts == 2
    assert jobs.store.claim(["report"], "third", 60, now + 2) is None  # held
    assert jobs.store.change(job.id, lambda j: renewed(j, "first", 60, now + 2, None)) is None
    assert jobs.store.change(job.id, lambda j: finished(j, "first", now + 2, result={"stale": 1})) is None
    assert jobs.store.change(job.id, lambda j: finished(j, "second", now + 3, result={"fresh": 1})) is not None
    row = jobs.get(job.id)
    assert row is not None and row.status == "succeeded" and row.result == {"fresh": 1}


def test_a_job_abandoned_too_often_fails(app: ZooApp) -> None:
    jobs = jobs_of(app)
    jobs.stop()
    job = jobs.submit("report", {"zoo_id": 1})
    now = time.time()
    for n in range(3):
        assert jobs.store.claim(["report"], f"runner {n}", 0.01, now + n) is not None
    assert jobs.store.claim(["report"], "last", 60, now + 3) is None
    row = jobs.get(job.id)
    assert row is not None and row.status == "failed" and "abandoned" in (row.error or "")
    shown = make_client(app).get(f"/v1/jobs/{job.id}").json
    assert shown["status"] == "failed" and "abandoned" in shown["error"] and "result" not in shown["links"]


def test_a_running_report_is_cancelled(zoo_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_JOB_DELAY", "60")
    app = new_app(zoo_db)
    try:
        client = make_client(app)
        job = client.post("/v1/zoos/1/reports", headers=AUTH, status=202).json
        assert wait_for(client, job["links"]["self"], {"running"})["status"] == "running"
        assert client.delete(job["links"]["self"], headers=AUTH, status=202).json["cancel_requested"] is True
        assert wait_for(client, job["links"]["self"], {"cancelled"})["status"] == "cancelled"
        assert_error(client.get(f"{job['links']['self']}/result", status=404), 404)
    finally:
        app.close()
