"""The tables both stores create, the rows a new database starts with, and the re-keying of zoo names.

Each engine spells the tables in its own types (:data:`TABLES_V1` has
holes for them) and runs these inside its own schema steps:
:meth:`examples.zoo.store.Store._create` on SQLite,
:data:`examples.zoo.store_pg.MIGRATIONS` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .names import name_key
from .records import utc_now

__all__ = [
    "ANIMAL_TYPES",
    "DEMO_ANIMALS",
    "DEMO_EMPLOYEES",
    "DEMO_ZOOS",
    "JOBS_TABLE",
    "KEY_SEPARATOR",
    "TABLES_V1",
    "rekey_zoos",
    "run_script",
    "seed",
]

# The tables are written once with holes for the types, which each engine fills in its own
# words (its TYPES): {type_key}, the animal types' primary key; {key}, a primary key whose
# values are never handed out twice; {id}, a column holding an id; {real}, a float;
# {name_key}, the index expression zoo names are unique by.  Each is a step of both engines'
# history: a change belongs in a later step, never here.

# schema 1
TABLES_V1 = """
CREATE TABLE animal_types (
    id          {type_key},
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE zoos (
    id          {key},
    name        TEXT NOT NULL,
    -- names.name_key(name): unique after NFKC and case folding, for every script (schema 1: casefold())
    name_key    TEXT NOT NULL,
    city        TEXT NOT NULL,
    opened      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX zoos_name_key ON zoos ({name_key});
CREATE TABLE animals (
    id             {key},
    name           TEXT NOT NULL,
    animal_type_id {id} NOT NULL REFERENCES animal_types (id),
    zoo_id         {id} NOT NULL REFERENCES zoos (id),
    born           TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX animals_zoo_id ON animals (zoo_id);
CREATE INDEX animals_animal_type_id ON animals (animal_type_id);
CREATE INDEX animals_created_at ON animals (created_at);
CREATE TABLE employees (
    id          {key},
    name        TEXT NOT NULL,
    title       TEXT,
    zoo_id      {id} REFERENCES zoos (id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX employees_zoo_id ON employees (zoo_id);
CREATE TABLE tombstones (
    kind        TEXT NOT NULL,
    id          {id} NOT NULL,
    deleted_at  TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
"""

# the queue of examples.zoo.jobs (schema 3 on SQLite, 4 on PostgreSQL)
JOBS_TABLE = """
CREATE TABLE jobs (
    id          {key},
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL,
    status      TEXT NOT NULL,
    owner       TEXT,
    lease_until {real},
    attempts    INTEGER NOT NULL DEFAULT 0,
    result      TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs (status, id)
"""


def run_script(conn: Any, script: str) -> None:
    """Run ``;``-separated statements with ``conn.execute``, inside the caller's transaction
    (SQLite's ``executescript`` would commit first)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


ANIMAL_TYPES = [
    ("mammal", "Warm-blooded vertebrates with hair that feed their young on milk."),
    ("bird", "Feathered, winged, egg-laying vertebrates."),
    ("reptile", "Cold-blooded vertebrates with scales, such as snakes, lizards and turtles."),
    ("amphibian", "Cold-blooded vertebrates that live both in water and on land, such as frogs."),
    ("fish", "Cold-blooded vertebrates that live in water and breathe with gills."),
    ("insect", "Six-legged invertebrates with a three-part body."),
]

DEMO_ZOOS = [
    ("Zoo Berlin", "Berlin", "1844-08-01"),
    ("San Diego Zoo", "San Diego", "1916-10-02"),
]
# (name, animal type, zoo, born)
DEMO_ANIMALS = [
    ("Bao Bao", 1, 1, "2013-08-23"),
    ("Knut", 1, 1, None),
    ("Polly", 2, 2, "2019-05-04"),
    ("Speedy", 3, 2, "1990-01-01"),
]
# (name, title, zoo)
DEMO_EMPLOYEES = [
    ("Ada Keeper", "head keeper", 1),
    ("Ben Vet", "veterinarian", 2),
    ("Cleo Guide", None, None),
]


def seed(db: Any, mark: str, *, empty: bool, key: Callable[[str], str] = name_key) -> None:
    """Insert the animal types and, unless ``empty``, the demo zoos, animals and employees.

    ``db.executemany`` runs the inserts inside the caller's transaction;
    ``mark`` is the driver's parameter mark; ``key`` makes a zoo's
    ``name_key`` (PostgreSQL's schema 1 wrote ``casefold()``, which its step 2 redoes).
    """
    now = utc_now()

    def insert(statement: str, rows: list[tuple[Any, ...]]) -> None:
        db.executemany(statement.replace("?", mark), rows)

    insert("INSERT INTO animal_types (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)",
           [(name, text, now, now) for name, text in ANIMAL_TYPES])
    if empty:
        return
    insert("INSERT INTO zoos (name, name_key, city, opened, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
           [(name, key(name), city, opened, now, now) for name, city, opened in DEMO_ZOOS])
    insert("INSERT INTO animals (name, animal_type_id, zoo_id, born, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
           [(*animal, now, now) for animal in DEMO_ANIMALS])
    insert("INSERT INTO employees (name, title, zoo_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
           [(*employee, now, now) for employee in DEMO_EMPLOYEES])


KEY_SEPARATOR = "\x1f"


def rekey_zoos(conn: Any, mark: str) -> None:
    """Recompute every zoo's ``name_key`` with ``conn``, inside the caller's transaction: a schema step
    whenever :func:`examples.zoo.names.name_key` changes (casefold() -> NFKC and folding -> the
    confusable skeleton too).

    ``conn.execute`` must return rows that unpack as ``(id, name)``; ``mark``
    is the driver's parameter mark.  Names that were distinct under the
    old rule may now share a key: the zoo with the lowest id
    keeps it, the others get ``key + "\\x1f" + id`` (still unique; a name
    cannot hold a control character, so no real key collides with it).
    """
    rows = [(row[0], row[1]) for row in conn.execute("SELECT id, name FROM zoos ORDER BY id").fetchall()]
    # free every key first: the index is unique
    conn.execute(f"UPDATE zoos SET name_key = CAST({mark} AS TEXT) || CAST(id AS TEXT)", (KEY_SEPARATOR,))
    taken: set[str] = set()
    for id, name in rows:
        key = name_key(name)
        if key in taken:
            key = f"{key}{KEY_SEPARATOR}{id}"
        taken.add(key)
        conn.execute(f"UPDATE zoos SET name_key = {mark} WHERE id = {mark}", (key, id))
