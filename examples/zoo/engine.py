"""Which store the zoo runs on, from the value of ``--db``.

``postgresql://...`` (or ``postgres://...``) is a PostgreSQL database
(:class:`examples.zoo.store_pg.PgStore`, needs ``pip install
'.[postgres]'``); anything else is an SQLite file
(:class:`examples.zoo.store.Store`).  Both have one interface, the
:class:`examples.zoo.records.Store` protocol, and one set of guarantees, so the
HTTP layer does not know which it has.
"""

from __future__ import annotations

from typing import Any

from restkit.idempotency import KeyStore, PostgresKeyStore, SQLiteKeyStore
from restkit.ratelimit import MemoryStore, PostgresStore
from restkit.ratelimit import Store as RateStore

from .records import Store
from .store import Store as SqliteStore

__all__ = ["describe", "is_postgres", "open_key_store", "open_rate_store", "open_store"]


def is_postgres(db: str) -> bool:
    """Whether ``db`` names a PostgreSQL database rather than an SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def describe(db: str) -> str:
    """``db`` fit to print: a PostgreSQL URL without its password."""
    if not is_postgres(db):
        return db
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def open_store(db: str, *, empty: bool = False, create: bool = False, **options: Any) -> Store:
    """The store for ``db``, its schema created or upgraded.

    ``create``: an SQLite file that does not exist is made (else it is an
    error: a deleted file never silently becomes a fresh database).  A
    PostgreSQL database must exist; its schema is created when it has none.
    ``options`` go to the store's constructor: ``deadline=`` and
    ``durability=`` for both, ``pool_size=`` for PostgreSQL.
    """
    if is_postgres(db):
        try:
            from .store_pg import PgStore
        except ImportError as exc:
            raise RuntimeError(
                f"PostgreSQL needs psycopg 3 and psycopg-pool: pip install '.[postgres]' ({exc})"
            ) from exc
        return PgStore(db, empty=empty, **options)
    return SqliteStore(db, empty=empty, create=create, **options)


def open_rate_store(store: Store) -> RateStore:
    """Where the rate limit counts for ``store``: in PostgreSQL (shared by every instance), else in memory."""
    if is_postgres(store.path):
        return PostgresStore(store.path, table="rate_hits")  # the table of the zoo's schema 3
    return MemoryStore()


def open_key_store(store: Store) -> KeyStore:
    """Where idempotency keys live for ``store``: its database (PostgreSQL, or the SQLite file), every process's.

    The table is made by the first request with a key.
    """
    if is_postgres(store.path):
        return PostgresKeyStore(store.path)
    # create=False: a removed file is the zoo store's fault to report, not ours to make
    return SQLiteKeyStore(store.path, create=False)
