"""Durable background jobs: ``202 Accepted``, a job resource, leases, retries, runner threads or a worker.

See :class:`Jobs` and README.md's "Jobs" section.  Stores: :class:`MemoryStore`
(tests, one process), :class:`SQLiteStore` (one host), :class:`PostgresStore`
(several hosts; psycopg imported when used).
"""

from __future__ import annotations

from .feature import Jobs, find_jobs
from .model import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Created, JobRecord
from .routes import Job
from .runner import JobContext, JobStopped
from .store import Store, StoreUnavailable
from .store_memory import MemoryStore
from .store_postgres import PostgresStore
from .store_sqlite import SQLiteStore

__all__ = [
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "Created",
    "Job",
    "JobContext",
    "JobRecord",
    "JobStopped",
    "Jobs",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "find_jobs",
]
