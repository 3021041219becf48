"""The zoo's PostgreSQL store (examples/zoo/store_pg.py) and the throwaway cluster the tests use.

The whole zoo suite runs against both engines (the ``zoo_db`` fixture);
here are the parts only PostgreSQL has: the cluster itself, the URL that
selects the engine, the versioned schema.
"""

from __future__ import annotations

import pytest

from tests.pg import PgCluster
from tests.zoo_pg_fixtures import pg_cluster, pg_database  # noqa: F401


def test_the_cluster_listens_on_loopback_only_and_each_database_is_new(pg_cluster: PgCluster) -> None:
    psycopg = pytest.importorskip("psycopg")
    first, second = pg_cluster.create_database(), pg_cluster.create_database()
    assert first != second and first.startswith(f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/")
    with psycopg.connect(first, connect_timeout=10) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
    for url in (first, second):
        pg_cluster.drop_database(url)
