"""The zoo on PostgreSQL when its disk fills up for real: 507, logged once, and back once space is freed.

The zoo's tables go to a tablespace on a small tmpfs (the database's
``default_tablespace``, set before the app creates its schema); the
catalogs and the WAL stay on the big disk, as with a full data volume.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_client
from tests.pg import PgCluster
from tests.test_examples_zoo import AUTH, assert_error, db_state, new_app, send_json
from tests.test_examples_zoo_faults import fault_records, fill, small_disk
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401


@pytest.fixture
def small_pg_database(pg_cluster: PgCluster) -> Iterator[tuple[str, Path]]:  # noqa: F811
    """A new database whose tables go to a tablespace on a 4 MiB tmpfs: its URL and the tmpfs.

    Skips where no tmpfs can be mounted (mounting needs root)."""
    import psycopg

    # not under pytest's tmp_path: its 0700 parents would lock the server's user out
    base = Path(tempfile.mkdtemp(prefix="restkit-pg-disk-"))
    os.chmod(base, 0o755)
    try:
        with small_disk(base, "4m") as (disk, mounted):
            if not mounted:
                pytest.skip("cannot mount a tmpfs here (needs root and mount): no disk to fill")
            location = disk / "tablespace"
            location.mkdir(mode=0o700)
            if pg_cluster.user is not None:  # the server runs as its own user: the tablespace is its
                shutil.chown(location, pg_cluster.user, pg_cluster.user)
            tablespace = f"small_{uuid.uuid4().hex[:8]}"
            url = pg_cluster.create_database()
            with psycopg.connect(pg_cluster.url(), autocommit=True, connect_timeout=10) as admin:
                admin.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{location}'")
                admin.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET default_tablespace = {tablespace}')
            try:
                yield url, disk
            finally:
                pg_cluster.drop_database(url)
                with psycopg.connect(pg_cluster.url(), autocommit=True, connect_timeout=10) as admin:
                    admin.execute(f"DROP TABLESPACE IF EXISTS {tablespace}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_full_disk_answers_507_logged_once_changes_nothing_and_recovers(
    small_pg_database: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    url, disk = small_pg_database
    app = new_app(url, rate_limit=0)
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:  # the app's tables are on the small disk
            outside = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                   " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND c.reltablespace = 0"
                                   ).fetchone()
        assert outside == (0,)
        client = make_client(app)
        seeded = int(client.get("/v1/animals").headers["X-Total-Count"])
        filler = fill(disk, 128 * 1024)  # the tables may grow by 128 KiB: a few hundred animals
        monkeypatch.setattr(app.store.incidents, "_clock", lambda: 0.0)  # no time passes: the incident stays open
        created: list[int] = []
        refused = in_a_row = 0
        with caplog.at_level(logging.INFO, logger="examples.zoo"):
            for n in range(5_000):  # bounded: the disk fills long before
                response = send_json(client, "POST", "/v1/animals",
                                     {"name": f"{n:05d} " + "x" * 90, "animal_type_id": 1, "zoo_id": 1})
                if response.status_int == 201:  # nearly full, one may still fit (space of aborted ones reused)
                    created.append(response.json["id"])
                    in_a_row = 0
                    continue
                # what does not fit: 507, naming the disk, with Retry-After; never a 500, and
                # never PostgreSQL's own text, which names the server's data files
                body = assert_error(response, 507, "the database's disk is full")
                assert "pg_tblspc" not in body["error"] and "No space" not in body["error"]
                assert int(response.headers["Retry-After"]) >= 1
                refused, in_a_row = refused + 1, in_a_row + 1
                if in_a_row == 5:
                    break
            assert in_a_row == 5 and created and refused >= in_a_row
            # the refused writes changed nothing, nor does the next; reads go on
            before = db_state(app)
            assert len(before["animals"]) == seeded + len(created)
            again = send_json(client, "POST", "/v1/animals", {"name": "x" * 100, "animal_type_id": 1, "zoo_id": 1})
            assert_error(again, 507, "the database's disk is full")
            assert db_state(app) == before
            assert client.get(f"/v1/animals/{created[-1]}").status_int == 200
            listed = client.get("/v1/animals", params={"limit": 1})
            assert listed.status_int == 200 and listed.headers["X-Total-Count"] == str(seeded + len(created))
            assert len(fault_records(caplog)) == 1  # many refused writes: one incident, one line
            # the log, unlike the client, gets PostgreSQL's own words
            logged = fault_records(caplog)[0].getMessage()
            assert logged.split("the database's disk is full; writes are refused until space is freed", 1)[1].startswith(" (")
            assert not any(r.exc_info for r in caplog.records)
            # space comes back: the next write gets in and ends the incident
            monkeypatch.setattr(app.store.incidents, "quiet", 0.0)
            filler.unlink()
            after = send_json(client, "POST", "/v1/animals", {"name": "After", "animal_type_id": 1, "zoo_id": 1})
            assert after.status_int == 201, after.text
            ended = [r.getMessage() for r in fault_records(caplog, logging.WARNING) if r.levelno == logging.WARNING]
            assert ended == ["storage: disk full no more"] and len(fault_records(caplog)) == 1
        assert client.get(f"/v1/animals/{after.json['id']}").json["name"] == "After"
    finally:
        app.close()
