"""Fixtures for the zoo on both storage engines; import the ones a test module uses.

    from tests.zoo_pg_fixtures import pg_cluster, zoo_db  # noqa: F401

``pg_cluster`` is one throwaway PostgreSQL cluster for the whole session
(see :mod:`tests.pg`); ``zoo_db`` is parametrised over ``sqlite`` and
``postgresql`` and gives a new, empty database of either: a file path or a
``postgresql://`` URL, what ``--db`` takes.  Without PostgreSQL the
``postgresql`` variants skip with the reason (a failure under
``RESTKIT_REQUIRE_ALL=1``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.pg import PgCluster, missing_postgres

__all__ = ["ENGINES", "new_pg_cluster", "pg_cluster", "pg_database", "zoo_db", "zoo_dbs"]

ENGINES = ["sqlite", "postgresql"]


def new_pg_cluster() -> Iterator[PgCluster]:
    """A fixture's body: a new PostgreSQL cluster on 127.0.0.1, closed after (skips when PostgreSQL is missing)."""
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster on 127.0.0.1 for the session (skips when PostgreSQL is missing)."""
    yield from new_pg_cluster()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a new, empty database on the session's cluster, dropped afterwards."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=ENGINES)
def zoo_dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Make new databases for the zoo, all on one engine: SQLite file paths or PostgreSQL URLs."""
    made: list[str] = []
    cluster: PgCluster | None = request.getfixturevalue("pg_cluster") if request.param == "postgresql" else None

    def new() -> str:
        if cluster is None:
            db = str(tmp_path / f"zoo{len(made) or ''}.db")
        else:
            db = cluster.create_database()
        made.append(db)
        return db

    yield new
    if cluster is not None:
        for url in made:
            cluster.drop_database(url)


@pytest.fixture
def zoo_db(zoo_dbs: Callable[[], str]) -> str:
    """A new database for the zoo, on each engine: an SQLite file path or a PostgreSQL URL."""
    return zoo_dbs()
