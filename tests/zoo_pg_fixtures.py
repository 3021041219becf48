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

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PgCluster, missing_postgres

__all__ = ["ENGINES", "pg_cluster", "pg_database", "zoo_db"]

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster on 127.0.0.1 for the session (skips when PostgreSQL is missing)."""
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a new, empty database on the session's cluster, dropped afterwards."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=ENGINES)
def zoo_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database for the zoo: an SQLite file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "zoo.db")
    url: str = request.getfixturevalue("pg_database")
    return url
