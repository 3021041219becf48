"""restkit.jobs in one process: the transition table, the memory and SQLite stores, runners and the HTTP resource.

Stores are driven with explicit times (``now``), so leases and backoffs are
checked without waiting; the runner tests wait for real threads with a bound.
The stores run on PostgreSQL too (skipped without it); several processes and
``kill -9`` are in test_jobs_processes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from restkit import App
from restkit.jobs import Job, Jobs, MemoryStore, PostgresStore, SQLiteStore, Store
from restkit.jobs.model import (
    STATES,
    TRANSITIONS,
    InvalidTransition,
    JobRecord,
    become,
    cancelled,
    finished,
    new_job,
    renewed,
    retry_delay,
)
from tests.conftest import make_client
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401

EVENTS = sorted({event for _, event in TRANSITIONS})


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", EVENTS)
def test_only_the_transitions_in_the_table_happen(state: str, event: str) -> None:
    job = new_job("k", None, key=None, max_attempts=3, now=0.0)
    job = JobRecord(**{**job.__dict__, "status": state})
    if (state, event) in TRANSITIONS:
        assert become(job, event).status == TRANSITIONS[(state, event)]
    else:
        with pytest.raises(InvalidTransition, match=f"is {state}: it cannot {event}"):
            become(job, event)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [retry_delay(n, 1.0, 5.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database("jobs")
        made: Store = PostgresStore(url)
        yield made
        made.close()
        cluster.drop_database(url)
        return
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "jobs.db")
    yield made
    made.close()


def add(store: Store, kind: str = "k", *, key: str | None = None, max_attempts: int = 3, now: float = 100.0,
        payload: Any = None) -> JobRecord:
    job, _ = store.add(new_job(kind, payload if payload is not None else {"n": 1}, key=key,
                               max_attempts=max_attempts, now=now))
    return job


def test_a_job_is_kept_and_read_back(store: Store) -> None:
    job = add(store, payload={"zoo": 1, "names": ["ä", "b"]})
    assert len(job.id) == 32 and job.id != add(store).id  # random, not sequential
    read = store.get(job.id)
    assert read == job and read.status == "queued" and read.payload == {"zoo": 1, "names": ["ä", "b"]}
    assert store.get("nope") is None


def test_a_key_deduplicates_jobs_of_a_kind(store: Store) -> None:
    first, new = store.add(new_job("k", {"n": 1}, key="abc", max_attempts=3, now=1.0))
    again, new_again = store.add(new_job("k", {"n": 2}, key="abc", max_attempts=3, now=2.0))
    assert new and not new_again and again == first and again.payload == {"n": 1}
    other_kind, new_other = store.add(new_job("other", {}, key="abc", max_attempts=3, now=3.0))
    assert new_other and other_kind.id != first.id
    assert add(store).id != add(store).id  # no key: never deduplicated


def test_claim_takes_the_oldest_due_job_of_known_kinds(store: Store) -> None:
    later = add(store, now=200.0)
    sooner = add(store, now=100.0)
    add(store, "unknown", now=50.0)
    assert store.claim(["k"], "r1", 30, now=99.0) is None  # nothing due yet
    got = store.claim(["k"], "r1", 30, now=300.0)
    assert got is not None and got.id == sooner.id and got.status == "running" and got.owner == "r1"
    assert got.attempts == 1 and got.lease_until == 330.0 and got.started_at == 300.0
    assert store.claim(["k"], "r2", 30, now=301.0).id == later.id
    assert store.claim(["k"], "r3", 30, now=302.0) is None  # both held


def test_an_expired_lease_is_taken_over_and_the_first_holder_is_fenced_off(store: Store) -> None:
    job = add(store)
    assert store.claim(["k"], "first", 10, now=100.0) is not None
    assert store.claim(["k"], "second", 10, now=109.0) is None  # the lease holds
    second = store.claim(["k"], "second", 10, now=111.0)
    assert second is not None and second.id == job.id and second.owner == "second" and second.attempts == 2
    assert store.change(job.id, lambda j: renewed(j, "first", 10, 112.0, None)) is None
    assert store.change(job.id, lambda j: finished(j, "first", 112.0, result="stale")) is None
    done = store.change(job.id, lambda j: finished(j, "second", 113.0, result={"fresh": True}))
    assert done is not None and done.status == "succeeded" and done.result == {"fresh": True}
    assert done.owner is None and done.finished_at == 113.0 and store.get(job.id) == done


def test_a_job_whose_runners_keep_dying_is_failed_as_abandoned(store: Store) -> None:
    job = add(store, max_attempts=2)
    assert store.claim(["k"], "a", 1, now=100.0) is not None
    assert store.claim(["k"], "b", 1, now=102.0) is not None
    assert store.claim(["k"], "c", 1, now=104.0) is None  # settled, not run a third time
    failed = store.get(job.id)
    assert failed is not None and failed.status == "failed" and "abandoned" in failed.error and failed.attempts == 2


def test_a_failure_is_retried_after_a_backoff_then_failed_with_its_error(store: Store) -> None:
    job = add(store, max_attempts=2)
    store.claim(["k"], "r", 30, now=100.0)
    retried = store.change(job.id, lambda j: finished(j, "r", 101.0, error="ValueError: boom", delay=4.0))
    assert retried is not None and retried.status == "queued" and retried.run_after == 105.0
    assert retried.error == "ValueError: boom" and retried.finished_at is None
    assert store.claim(["k"], "r", 30, now=104.0) is None  # backing off
    again = store.claim(["k"], "r", 30, now=105.5)
    assert again is not None and again.attempts == 2
    last = store.change(job.id, lambda j: finished(j, "r", 106.0, error="ValueError: boom again", delay=8.0))
    assert last is not None and last.status == "failed" and last.error == "ValueError: boom again"
    assert store.claim(["k"], "r", 30, now=1000.0) is None


def test_cancel_queued_running_and_finished(store: Store) -> None:
    queued = add(store)
    gone = store.change(queued.id, lambda j: cancelled(j, 101.0))
    assert gone is not None and gone.status == "cancelled" and gone.finished_at == 101.0
    assert store.claim(["k"], "r", 30, now=200.0) is None
    running = add(store)
    store.claim(["k"], "r", 30, now=200.0)
    flagged = store.change(running.id, lambda j: cancelled(j, 201.0))
    assert flagged is not None and flagged.status == "running" and flagged.cancel_requested
    beat = store.change(running.id, lambda j: renewed(j, "r", 30, 202.0, (0.5, "half")))
    assert beat is not None and beat.cancel_requested and beat.progress == 0.5 and beat.message == "half"
    stopped = store.change(running.id, lambda j: finished(j, "r", 203.0, stopped=True))
    assert stopped is not None and stopped.status == "cancelled"
    assert store.change(running.id, lambda j: cancelled(j, 204.0)) is None  # over: nothing to change
    # a running job flagged for cancel whose runner died is cancelled, not run again
    orphan = add(store, now=300.0)
    store.claim(["k"], "dead", 1, now=300.0)
    store.change(orphan.id, lambda j: cancelled(j, 300.5))
    assert store.claim(["k"], "r", 30, now=302.0) is None
    assert store.get(orphan.id).status == "cancelled"


def test_a_failure_after_a_cancel_request_is_not_retried(store: Store) -> None:
    job = add(store)
    store.claim(["k"], "r", 30, now=100.0)
    store.change(job.id, lambda j: cancelled(j, 100.5))
    ended = store.change(job.id, lambda j: finished(j, "r", 101.0, error="stopped halfway"))
    assert ended is not None and ended.status == "failed"


def test_a_submit_on_one_postgres_store_wakes_the_waiters_of_another(pg_cluster: Any) -> None:
    """LISTEN/NOTIFY: an idle runner elsewhere learns of a new job without polling."""
    url = pg_cluster.create_database("jobs")
    waiting, submitting = PostgresStore(url), PostgresStore(url)
    try:
        waiting.get("x")  # the table exists
        waiting.wait(0.01)  # the listening connection starts
        assert waiting.listening.wait(30)
        woke = threading.Event()

        def wait() -> None:
            waiting.wait(120)
            woke.set()

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        add(submitting)
        assert woke.wait(60), "the NOTIFY never woke the waiter"
    finally:
        waiting.close()
        submitting.close()
        pg_cluster.drop_database(url)


# --- runners and the HTTP resource -----------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, limit: float = 30.0) -> Any:
    """Poll until ``check()`` is truthy (a bound, not a measurement)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {limit} s")


@pytest.fixture(params=["memory", "sqlite"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[App, Jobs, dict[str, Any]]]:
    store: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "jobs.db")
    app = App(openapi=True)
    jobs = app.use(Jobs(store, lease=0.6, poll=0.05))
    seen: dict[str, Any] = {"attempts": [], "gate": threading.Event()}

    @jobs.kind("square")
    def square(job: Any) -> Any:
        job.progress(0.5, "multiplying")
        return {"square": job.payload["n"] ** 2}

    @jobs.kind("thumbnail")
    def thumbnail(job: Any) -> Any:
        return job.created(f"/images/{job.payload['image']}/thumbnail", {"width": 64})

    @jobs.kind("flaky", max_attempts=3, backoff=0.05)
    def flaky(job: Any) -> Any:
        seen["attempts"].append(job.attempt)
        raise ValueError(f"attempt {job.attempt} broke")

    @jobs.kind("opaque", max_attempts=1)
    def opaque(job: Any) -> Any:
        return object()

    @jobs.kind("slow")
    def slow(job: Any) -> Any:
        seen["gate"].set()
        while True:  # until cancelled: check() raises
            job.sleep(0.02)

    @app.post("/work/<kind>", responses={202: Job})
    def submit(request: Any, kind: str) -> Any:
        """Submit a job."""
        return jobs.accepted(request, jobs.submit(kind, request.json, key=request.headers.get("Idempotency-Key")))

    yield app, jobs, seen
    jobs.stop()
    store.close()


def test_submit_answers_202_and_the_job_succeeds(service: tuple[App, Jobs, dict[str, Any]]) -> None:
    app, jobs, _ = service
    client = make_client(app)
    answer = client.post_json("/work/square", {"n": 7}, status=202)
    job = answer.json
    assert answer.headers["Location"] == f"http://localhost:80/jobs/{job['id']}"
    assert answer.headers["Retry-After"] == "1"
    assert job["status"] in ("queued", "running") and job["links"] == {"self": f"/jobs/{job['id']}"}
    done = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").json)["status"] == "succeeded" and j, "the job")
    assert done["result"] == {"square": 49} and done["attempts"] == 1 and done["progress"] == 1.0
    assert done["message"] == "multiplying" and done["finished_at"].endswith("Z") and done["error"] is None
    assert "Retry-After" not in client.get(f"/jobs/{job['id']}").headers
    # the same Idempotency-Key: the same job, not a second one
    first = client.post_json("/work/square", {"n": 2}, headers={"Idempotency-Key": "k1"}, status=202).json
    again = client.post_json("/work/square", {"n": 3}, headers={"Idempotency-Key": "k1"}, status=202).json
    assert again["id"] == first["id"]


def test_a_job_that_made_a_resource_answers_303(service: tuple[App, Jobs, dict[str, Any]]) -> None:
    app, _, _ = service
    client = make_client(app)
    job = client.post_json("/work/thumbnail", {"image": 5}, status=202).json
    wait_for(lambda: client.get(f"/jobs/{job['id']}").status_int == 303, "the thumbnail")
    answer = client.get(f"/jobs/{job['id']}", status=303)
    assert answer.headers["Location"] == "/images/5/thumbnail"
    assert answer.json["location"] == "/images/5/thumbnail" and answer.json["result"] == {"width": 64}


def test_a_raising_job_is_retried_then_failed_with_its_error(service: tuple[App, Jobs, dict[str, Any]]) -> None:
    app, _, seen = service
    client = make_client(app)
    job = client.post_json("/work/flaky", {}, status=202).json
    failed = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").json)["status"] == "failed" and j, "failing")
    assert failed["attempts"] == 3 and seen["attempts"] == [1, 2, 3]
    assert failed["error"] == "ValueError: attempt 3 broke"


def test_a_result_that_is_not_json_fails_the_job(service: tuple[App, Jobs, dict[str, Any]]) -> None:
    app, _, _ = service
    client = make_client(app)
    job = client.post_json("/work/opaque", {}, status=202).json
    failed = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").json)["status"] == "failed" and j, "failing")
    assert failed["error"].startswith("the result of opaque is not JSON")


def test_cancel_a_queued_a_running_and_a_finished_job(service: tuple[App, Jobs, dict[str, Any]]) -> None:
    app, jobs, seen = service
    client = make_client(app)
    running = client.post_json("/work/slow", {}, status=202).json
    assert seen["gate"].wait(30)
    asked = client.delete(f"/jobs/{running['id']}", status=202)
    assert asked.json["status"] == "running" and asked.json["cancel_requested"] is True
    wait_for(lambda: client.get(f"/jobs/{running['id']}").json["status"] == "cancelled", "the running job stopping")
    assert client.delete(f"/jobs/{running['id']}", status=200).json["status"] == "cancelled"  # again: the same
    jobs.stop()  # no runner: the next one stays queued
    queued = client.post_json("/work/square", {"n": 1}, status=202).json
    cancelled_now = client.delete(f"/jobs/{queued['id']}", status=200).json
    assert cancelled_now["status"] == "cancelled" and cancelled_now["finished_at"]
    jobs.start()
    done = client.post_json("/work/square", {"n": 2}, status=202).json
    wait_for(lambda: client.get(f"/jobs/{done['id']}").json["status"] == "succeeded", "the job")
    refused = client.delete(f"/jobs/{done['id']}", status=409).json
    assert refused == {"error": f"job {done['id']} has already succeeded: there is nothing to cancel"}
    assert client.get("/jobs/nope", status=404).json == {"error": "job nope does not exist"}
    assert client.delete("/jobs/" + "x" * 300, status=404).json["error"].startswith("job xxx")
    assert client.get(f"/jobs/{queued['id']}").json["status"] == "cancelled"  # never run


def test_the_api_document_has_the_202_its_headers_and_the_job_schema(service: tuple[App, Jobs, dict[str, Any]]) -> None:
    app, _, _ = service
    document = app.openapi()
    submit = document["paths"]["/work/{kind}"]["post"]["responses"]["202"]
    assert submit["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    assert set(submit["headers"]) == {"Location", "Retry-After"}
    show = document["paths"]["/jobs/{job}"]["get"]["responses"]
    assert set(show["303"]["headers"]) == {"Location"} and "200" in show
    cancel = document["paths"]["/jobs/{job}"]["delete"]["responses"]
    assert {"200", "202", "404", "409"} <= set(cancel) and set(cancel["202"]["headers"]) == {"Retry-After"}
    assert set(show["200"]["headers"]) == {"Retry-After"}
    schema = document["components"]["schemas"]["Job"]
    assert schema["properties"]["status"] == {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]}


def test_a_kind_is_registered_once_and_an_unknown_kind_is_refused() -> None:
    jobs = Jobs(MemoryStore())

    @jobs.kind("a")
    def a(job: Any) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        jobs.kind("a")(a)
    with pytest.raises(LookupError, match="no job kind 'b'"):
        jobs.submit("b")
    with pytest.raises(TypeError):
        jobs.submit("a", {"not json": object()})


def test_a_store_that_is_gone_is_a_503_never_a_500(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    app = App()
    jobs = app.use(Jobs(SQLiteStore(path), threads=0))

    @jobs.kind("k")
    def k(job: Any) -> None:
        return None

    @app.post("/k")
    def submit(request: Any) -> Any:
        return jobs.accepted(request, jobs.submit("k"))

    for leftover in tmp_path.iterdir():
        leftover.unlink()  # deleted under the app: it is not created again, empty, in its place
    client = make_client(app)
    for answer in (client.get("/jobs/abc", status=503), client.post("/k", status=503)):
        assert answer.json == {"error": "the job store is unavailable: unable to open database file; try again"}
        assert answer.headers["Retry-After"] == "5"
    assert not path.exists()
    jobs.close()
