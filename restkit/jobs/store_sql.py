"""What the SQLite and PostgreSQL stores share: the table, its SQL, and rows to records and back.

A subclass gives a transaction (:meth:`SQLStore._transaction`) that yields an
``execute(sql, params)`` taking ``?`` placeholders, and says how a claiming
``SELECT`` locks its row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; nothing on
SQLite, whose ``BEGIN IMMEDIATE`` already makes writers take turns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ..response import json_dumps
from .model import QUEUED, STATES, JobRecord
from .store import Change, Store, settle_claim

__all__ = ["COLUMNS", "Execute", "SQLStore", "schema_script"]

Execute = Callable[[str, Sequence[Any]], Any]  # returns a cursor: fetchone(), fetchall()

#: The table's columns, in the order of :class:`JobRecord`'s fields.
COLUMNS = ("id", "kind", "payload", "status", "dedupe_key", "attempts", "max_attempts", "created_at", "run_after",
           "progress", "message", "result", "location", "error", "cancel_requested", "owner", "lease_until",
           "started_at", "finished_at")
_MUTABLE = COLUMNS[3:4] + COLUMNS[5:]  # all but id, kind, payload and the key
_SELECT = ", ".join(COLUMNS)
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}\Z")


def schema_script(table: str, real: str) -> list[str]:
    """The statements that create the table and its indexes when missing (``real``: the engine's float type)."""
    states = ", ".join(f"'{state}'" for state in STATES)
    return [
        f"""CREATE TABLE IF NOT EXISTS {table} (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({states})), dedupe_key TEXT,
            attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, created_at {real} NOT NULL,
            run_after {real} NOT NULL, progress {real}, message TEXT, result TEXT, location TEXT, error TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0, owner TEXT, lease_until {real},
            started_at {real}, finished_at {real})""",
        # NULL keys never collide: jobs submitted without a key are never deduplicated
        f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_key ON {table} (kind, dedupe_key)",
        f"CREATE INDEX IF NOT EXISTS {table}_queued ON {table} (run_after) WHERE status = 'queued'",
        f"CREATE INDEX IF NOT EXISTS {table}_running ON {table} (lease_until) WHERE status = 'running'",
    ]


def _json(value: Any) -> str:
    return json_dumps(value).decode()


def _record(row: Sequence[Any]) -> JobRecord:
    values = dict(zip(COLUMNS, row))
    values["payload"] = json.loads(values["payload"])
    values["result"] = None if values["result"] is None else json.loads(values["result"])
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["key"] = values.pop("dedupe_key")
    return JobRecord(**values)


def _row(job: JobRecord) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "payload": _json(job.payload), "status": job.status,
            "dedupe_key": job.key, "attempts": job.attempts, "max_attempts": job.max_attempts,
            "created_at": job.created_at, "run_after": job.run_after, "progress": job.progress,
            "message": job.message, "result": None if job.result is None else _json(job.result),
            "location": job.location, "error": job.error, "cancel_requested": int(job.cancel_requested),
            "owner": job.owner, "lease_until": job.lease_until, "started_at": job.started_at,
            "finished_at": job.finished_at}


class SQLStore(Store):
    """Jobs in one table of an SQL database (``restkit_jobs`` unless told otherwise)."""

    #: What ends a claiming SELECT (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    claim_lock = ""
    #: What ends a SELECT that reads a row to change it (PostgreSQL: ``FOR UPDATE``).
    row_lock = ""

    def __init__(self, table: str) -> None:
        super().__init__()
        if not _NAME.match(table):
            raise ValueError(f"table name {table!r}: use lower-case letters, digits and _ (at most 41)")
        self.table = table
        t = table
        self._insert = (f"INSERT INTO {t} ({_SELECT}) VALUES ({', '.join('?' * len(COLUMNS))})"
                        " ON CONFLICT (kind, dedupe_key) DO NOTHING RETURNING id")
        self._by_key = f"SELECT {_SELECT} FROM {t} WHERE kind = ? AND dedupe_key = ?"
        self._by_id = f"SELECT {_SELECT} FROM {t} WHERE id = ?"
        self._update = f"UPDATE {t} SET {', '.join(f'{c} = ?' for c in _MUTABLE)} WHERE id = ?"

    # -- what a subclass gives ----------------------------------------------------------

    def _transaction(self) -> AbstractContextManager[Execute]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Execute]:
        """A read (the default: a transaction too)."""
        return self._transaction()

    def _queued(self, execute: Execute) -> None:
        """A job became claimable in this transaction (PostgreSQL tells the other hosts)."""

    # -- the store ----------------------------------------------------------------------

    def add(self, job: JobRecord) -> tuple[JobRecord, bool]:
        row = _row(job)
        with self._transaction() as execute:
            if execute(self._insert, [row[c] for c in COLUMNS]).fetchone() is None:
                existing = execute(self._by_key, (job.kind, job.key)).fetchone()
                if existing is not None:
                    return _record(existing), False
                raise RuntimeError(f"job {job.id} was neither stored nor found by its key")  # never: the id is random
            self._queued(execute)
        self.notify()
        return job, True

    def get(self, id: str) -> JobRecord | None:
        with self._read() as execute:
            row = execute(self._by_id, (id,)).fetchone()
        return None if row is None else _record(row)

    def claim(self, kinds: Collection[str], owner: str, lease: float, now: float) -> JobRecord | None:
        if not kinds:
            return None
        marks = ", ".join("?" * len(kinds))
        select = (f"SELECT {_SELECT} FROM {self.table} WHERE kind IN ({marks})"
                  " AND ((status = 'queued' AND run_after <= ?) OR (status = 'running' AND lease_until < ?))"
                  f" ORDER BY run_after LIMIT 1{self.claim_lock}")
        with self._transaction() as execute:
            while True:
                row = execute(select, (*kinds, now, now)).fetchone()
                if row is None:
                    return None
                record, ours = settle_claim(_record(row), owner, lease, now)
                self._write(execute, record)
                if ours:
                    return record

    def change(self, id: str, change: Change) -> JobRecord | None:
        with self._transaction() as execute:
            row = execute(self._by_id + self.row_lock, (id,)).fetchone()
            record = None if row is None else change(_record(row))
            if record is not None:
                self._write(execute, record)
                if record.status == QUEUED:
                    self._queued(execute)
        if record is not None and record.status == QUEUED:
            self.notify()
        return record

    def _write(self, execute: Execute, record: JobRecord) -> None:
        row = _row(record)
        execute(self._update, [*(row[c] for c in _MUTABLE), record.id])

