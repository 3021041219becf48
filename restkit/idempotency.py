"""Idempotent retries: a POST or PATCH sent again with the same ``Idempotency-Key`` runs once.

::

    from restkit import App
    from restkit.idempotency import Idempotency, SQLiteKeyStore

    app = App()
    keys = Idempotency(SQLiteKeyStore("keys.db"))          # or MemoryKeyStore(), PostgresKeyStore(url)
    app.use(keys)                                          # every POST and PATCH route takes the header

    @app.post("/payments", idempotency=keys.require())     # this one refuses a request without it (400)
    def pay(request):
        return {"paid": request.json["amount"]}, 201

    @app.post("/search", idempotency=None)                 # this one ignores it
    def search(request):
        return []

A client that did not get an answer (a timeout, a dropped connection) cannot
know whether its POST was done; with a key it sends the same request again
and gets the first answer back, whether or not the first one reached it.
This follows the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header), with Stripe's API as the model.

Theory of operation
-------------------
The first request with a key **claims** it and runs; its answer (status,
headers, body) is **kept** for ``ttl`` seconds (24 hours by default).  What a
request with a key gets depends on what the store holds for that key, and on
whether the request is the same (method, path, query, ``Content-Type`` and
body: the *fingerprint*):

================================  =====================================  ======================
the store holds, for the key      the same request                       another request
================================  =====================================  ======================
nothing, or an expired entry      claims the key; the handler runs       (the same)
a claim (the first still runs)    **409** with ``Retry-After: 1``        **422**
a kept answer                     that answer, ``Idempotent-Replayed``   **422**
================================  =====================================  ======================

When the handler's answer is a 5xx (or a stream, which cannot be kept), the
claim is **released**: the next retry runs again.  Any other answer, 4xx
included, is kept.  A claim whose process died (``kill -9``) is taken over by
a retry after ``lease`` seconds (60 by default; make it longer than the
slowest handler).  Keys are 1 to 255 visible ASCII characters, bare or as the
draft's quoted string (``"8e03978e-..."``); anything else is **400**.

Keys are **scoped to the credential**: the identity :mod:`restkit.auth` set
(so install auth before, or name it on the route), else the ``Authorization``
header (hashed), else one scope for every anonymous client (where only an
unguessable key, a UUID, keeps one client from getting another's answer); or
give ``scope=`` a function of the request.  The store sees a hash of the
scope and the key, never either.

Stores: :class:`MemoryKeyStore` (one process: tests, ``restkit.serve``
without workers), :class:`SQLiteKeyStore` (every process of one host:
``--workers N``, gunicorn) and :class:`PostgresKeyStore` (every instance
on every host).  When the store fails, ``on_store_error="refuse"`` (the
default) answers **503** with ``Retry-After`` to requests with a key (the
client asked for exactly-once; running it unchecked could do it twice);
``"allow"`` runs them unchecked.  Requests without a key never touch the store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import BadRequest, Conflict, ServiceUnavailable, UnprocessableEntity
from .feature import DocumentContext, Feature
from .response import Response
from .storage import PostgresDatabase, SQLiteDatabase, StoreUnavailable, table_name

if TYPE_CHECKING:
    from .request import Request
    from .routing import Route

__all__ = [
    "Answer",
    "Claim",
    "Idempotency",
    "KeyStore",
    "MemoryKeyStore",
    "PostgresKeyStore",
    "SQLiteKeyStore",
    "parse_key",
]

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255
_KEY_PATTERN = r'^(?:"[!#-\[\]-~]+"|[!#-~][!-~]*|"[!-~]*[!#-~]|")$'
_CLAIMED = "restkit.idempotency"  # request.context key: (store key, token) of the claim this request holds


class Answer(NamedTuple):
    """A kept answer: what a replay sends."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Claim(NamedTuple):
    """What the store said to a request with a key: ``outcome`` is one of :data:`OUTCOMES`."""

    outcome: str
    answer: Answer | None = None


#: run: the key is this request's now; replay: ``answer`` is the first's;
#: running: the first still runs; mismatch: the key was used for another request.
OUTCOMES = ("run", "replay", "running", "mismatch")


class KeyStore:
    """Where keys and kept answers live.  ``key`` is a hash of the scope and the client's key."""

    def claim(self, key: str, fingerprint: str, token: str, lease: float) -> Claim:
        """Claim ``key`` for ``lease`` seconds unless it is held: atomically, whoever else asks at once."""
        raise NotImplementedError

    def keep(self, key: str, token: str, answer: Answer, ttl: float) -> None:
        """Keep ``answer`` for ``ttl`` seconds, if the claim ``token`` still holds the key."""
        raise NotImplementedError

    def release(self, key: str, token: str) -> None:
        """Forget the claim ``token`` (the next request with the key runs)."""
        raise NotImplementedError


def decide(fingerprint: str, found_fingerprint: str, answer: Answer | None) -> Claim:
    """What a request gets when the store holds a live entry for its key."""
    if found_fingerprint != fingerprint:
        return Claim("mismatch")
    return Claim("replay", answer) if answer is not None else Claim("running")


class MemoryKeyStore(KeyStore):
    """Keys in this process: for tests and single-process servers (each worker has its own)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> (fingerprint, token, expires, answer or None while running)
        self._entries: dict[str, tuple[str, str, float, Answer | None]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, key: str, fingerprint: str, token: str, lease: float) -> Claim:
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                for stale in [k for k, entry in self._entries.items() if entry[2] <= now]:
                    del self._entries[stale]
                self._next_sweep = now + 60
            found = self._entries.get(key)
            if found is not None and found[2] > now:
                return decide(fingerprint, found[0], found[3])
            self._entries[key] = (fingerprint, token, now + lease, None)
            return Claim("run")

    def keep(self, key: str, token: str, answer: Answer, ttl: float) -> None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[1] == token:
                self._entries[key] = (found[0], token, self._clock() + ttl, answer)

    def release(self, key: str, token: str) -> None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[1] == token:
                del self._entries[key]


def _pack(answer: Answer) -> str:
    return json.dumps([list(pair) for pair in answer.headers])


def _unpack(status: int | None, headers: str | None, body: bytes | None) -> Answer | None:
    if status is None:
        return None
    return Answer(int(status), tuple((str(k), str(v)) for k, v in json.loads(headers or "[]")), bytes(body or b""))


SWEEP_EVERY = 1000  # claims between sweeps of expired entries, per process


class SQLiteKeyStore(KeyStore):
    """Keys in an SQLite file, shared by every process of one host (``--workers N``, gunicorn).

    A claim is one ``BEGIN IMMEDIATE`` transaction (processes take turns on
    the file's writer lock), so of two processes claiming one key at once
    exactly one runs.  Times come from the host's clock.

    Args:
        path: the file (created when missing); not on a network file system.
        table: the table's name.
        timeout: seconds a claim waits for the writer lock before the store counts as failed.
        retry: seconds the store fails fast after a failure (see :mod:`restkit.storage`).
        create: make the file when it is missing (False: the file is the app's database, which must exist).
    """

    def __init__(self, path: str, *, table: str = "restkit_idempotency", timeout: float = 1.0,
                 retry: float = 1.0, create: bool = True) -> None:
        self.table = table = table_name(table)
        schema = (f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
                  " token TEXT NOT NULL, expires REAL NOT NULL, status INTEGER, headers TEXT, body BLOB);"
                  f" CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires);")
        self.db = SQLiteDatabase(path, schema, timeout=timeout, retry=retry, create=create,
                                 name=f"the idempotency keys' SQLite store {path}")
        self._claims = 0

    def claim(self, key: str, fingerprint: str, token: str, lease: float) -> Claim:
        table = self.table
        self._claims += 1
        with self.db.write() as conn:
            now = time.time()
            row = conn.execute(f"SELECT fingerprint, expires, status, headers, body FROM {table} WHERE key = ?",
                               (key,)).fetchone()
            if row is not None and row[1] > now:
                return decide(fingerprint, row[0], _unpack(row[2], row[3], row[4]))
            conn.execute(f"INSERT OR REPLACE INTO {table} (key, fingerprint, token, expires) VALUES (?, ?, ?, ?)",
                         (key, fingerprint, token, now + lease))
            if self._claims % SWEEP_EVERY == 0:
                conn.execute(f"DELETE FROM {table} WHERE expires <= ?", (now,))
        return Claim("run")

    def keep(self, key: str, token: str, answer: Answer, ttl: float) -> None:
        with self.db.write() as conn:
            conn.execute(f"UPDATE {self.table} SET status = ?, headers = ?, body = ?, expires = ?"
                         " WHERE key = ? AND token = ?",
                         (answer.status, _pack(answer), answer.body, time.time() + ttl, key, token))

    def release(self, key: str, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(f"DELETE FROM {self.table} WHERE key = ? AND token = ?", (key, token))

    def close(self) -> None:
        """Close this process's connections."""
        self.db.close()


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL, shared by every instance on every host.

    A claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``:
    of two instances claiming one key at once, the second waits for the
    first's row and finds it taken.  Times come from the database's clock.
    psycopg 3 is imported on the first claim.

    Args:
        url: a libpq connection string, ``postgresql://user@host:5432/dbname``.
        table: the table's name.
        timeout: seconds a statement may take before the store counts as failed.
        retry: seconds the store fails fast after a failure (see :mod:`restkit.storage`).
    """

    def __init__(self, url: str, *, table: str = "restkit_idempotency", timeout: float = 0.5,
                 retry: float = 1.0) -> None:
        self.table = table = table_name(table)
        schema = [
            f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
            " token TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL, status INTEGER, headers TEXT, body BYTEA)",
            f"CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires)",
        ]
        self.db = PostgresDatabase(url, schema, timeout=timeout, retry=retry,
                                   name="the idempotency keys' PostgreSQL store")
        self._claims = 0

    def claim(self, key: str, fingerprint: str, token: str, lease: float) -> Claim:
        table = self.table
        self._claims += 1
        with self.db.connection() as conn:
            for _ in range(3):  # the row found may be released before it is read: claim again
                taken = conn.execute(
                    f"INSERT INTO {table} AS t (key, fingerprint, token, expires)"
                    " VALUES (%s, %s, %s, now() + %s * interval '1 second')"
                    " ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token,"
                    " expires = EXCLUDED.expires, status = NULL, headers = NULL, body = NULL"
                    " WHERE t.expires <= now() RETURNING 1",
                    (key, fingerprint, token, lease),
                ).fetchone()
                if taken is not None:
                    if self._claims % SWEEP_EVERY == 0:
                        conn.execute(f"DELETE FROM {table} WHERE expires <= now()")
                    return Claim("run")
                row = conn.execute(f"SELECT fingerprint, status, headers, body FROM {table} WHERE key = %s",
                                   (key,)).fetchone()
                if row is not None:
                    return decide(fingerprint, row[0], _unpack(row[1], row[2], row[3]))
        return Claim("running")  # claimed and released three times while we looked: busy enough

    def keep(self, key: str, token: str, answer: Answer, ttl: float) -> None:
        with self.db.connection() as conn:
            conn.execute(f"UPDATE {self.table} SET status = %s, headers = %s, body = %s,"
                         " expires = now() + %s * interval '1 second' WHERE key = %s AND token = %s",
                         (answer.status, _pack(answer), answer.body, ttl, key, token))

    def release(self, key: str, token: str) -> None:
        with self.db.connection() as conn:
            conn.execute(f"DELETE FROM {self.table} WHERE key = %s AND token = %s", (key, token))

    def close(self) -> None:
        """Close this process's connections."""
        self.db.close()


# -- the feature -------------------------------------------------------------------


def parse_key(value: str) -> str:
    """The key a header value names: bare or a quoted string, 1 to 255 visible ASCII characters.

    Raises:
        BadRequest: anything else (the JSON error names the rule).
    """
    key = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    # visible ASCII (%x21-7E); in a quoted string no quote or backslash (no escapes)
    if not 1 <= len(key) <= MAX_KEY or not key.isascii() or not key.isprintable() or " " in key or (
        key is not value and ('"' in key or "\\" in key)
    ):
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters (a UUID, say), bare or in quotes")
    return key


def credential(request: Request) -> str:
    """The scope of a request's keys: its identity, else its ``Authorization`` header, else anonymous."""
    who = request.context.get("identity")
    if who is not None:
        return f"identity:{who.name}"
    authorization = request.environ.get("HTTP_AUTHORIZATION")
    if authorization:
        return "credentials:" + hashlib.sha256(authorization.encode("latin-1", "replace")).hexdigest()
    return "anonymous"


def fingerprint(request: Request) -> str:
    """What makes two requests the same: method, path, query, ``Content-Type`` and body."""
    head = "\n".join((request.method, request.script_name + request.path, request.query_string,
                      request.environ.get("CONTENT_TYPE", "")))
    return hashlib.sha256(head.encode("utf-8", "surrogateescape") + b"\n" + request.body).hexdigest()


class Idempotency(Feature):
    """Answer a retried POST or PATCH with the first answer, by its ``Idempotency-Key``.

    Args:
        store: where keys and answers live (default: a new :class:`MemoryKeyStore`, one process).
        ttl: seconds an answer is kept (default 24 hours).
        lease: seconds a claim holds without an answer before a retry may take it over.
        required: refuse a request without the header (400).
        methods: the methods that take a key.
        scope: a function of the request naming whose keys it uses (default :func:`credential`).
        on_store_error: when the store fails, ``"refuse"`` (503, default) or ``"allow"`` (run unchecked).
    """

    option = "idempotency"
    option_takes = "an Idempotency(...), or None"
    stage = 27  # after auth (20) and a per-identity rate limit (25); before preconditions (30)

    def __init__(
        self,
        store: KeyStore | None = None,
        *,
        ttl: float = 24 * 3600.0,
        lease: float = 60.0,
        required: bool = False,
        methods: Iterable[str] = ("POST", "PATCH"),
        scope: Callable[[Request], str] = credential,
        on_store_error: str = "refuse",
    ) -> None:
        if ttl <= 0 or lease <= 0:
            raise ValueError("ttl and lease must be positive")
        if on_store_error not in ("allow", "refuse"):
            raise ValueError(f"on_store_error must be 'allow' or 'refuse', not {on_store_error!r}")
        self.store = store if store is not None else MemoryKeyStore()
        self.ttl = float(ttl)
        self.lease = float(lease)
        self.required = required
        self.methods = frozenset(m.upper() for m in methods)
        self.scope = scope
        self.on_store_error = on_store_error

    def require(self) -> Idempotency:
        """The same keys, with the header required (``idempotency=keys.require()``)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.required = True
        return clone

    def applies_to(self, route: Route) -> bool:
        return not self.methods.isdisjoint(route.methods)

    # -- the steps -------------------------------------------------------------------

    def before(self, request: Request) -> Response | None:
        if request.method not in self.methods:
            return None
        value = request.environ.get("HTTP_IDEMPOTENCY_KEY")
        if value is None:
            if self.required:
                raise BadRequest(f"{request.method} {request.path} needs an {HEADER} header (a new UUID per operation)")
            return None
        key = parse_key(value)
        scoped = hashlib.sha256(f"{self.scope(request)}\0{key}".encode("utf-8", "surrogateescape")).hexdigest()
        token = secrets.token_hex(8)
        try:
            claim = self.store.claim(scoped, fingerprint(request), token, self.lease)
        except StoreUnavailable as exc:  # the store logged it, once per incident
            if self.on_store_error == "allow":
                return None
            raise ServiceUnavailable(f"idempotency keys cannot be checked now; retry in {exc.retry_after} s",
                                     retry_after=exc.retry_after) from None
        if claim.outcome == "run":
            request.context[_CLAIMED] = (scoped, token)
            return None
        if claim.outcome == "replay" and claim.answer is not None:
            answer = claim.answer
            return Response(answer.body, answer.status, [*answer.headers, (REPLAYED, "true")])
        if claim.outcome == "running":
            raise Conflict(f"a request with this {HEADER} is still being answered; retry in a moment",
                           headers=[("Retry-After", "1")])
        raise UnprocessableEntity(f"this {HEADER} was used for another request (method, path or body);"
                                  " use a new key for a new request")

    def after(self, request: Request, response: Response) -> Response:
        held = request.context.pop(_CLAIMED, None)
        if held is None:
            return response
        scoped, token = held
        try:
            if response.status >= 500 or not isinstance(response.body, bytes):
                self.store.release(scoped, token)
            else:
                self.store.keep(scoped, token, Answer(response.status, tuple(response.headers), response.body),
                                self.ttl)
        except StoreUnavailable:
            pass  # logged by the store; the claim ends with its lease
        return response

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        if context.method not in self.methods:
            return
        context.add_parameter(operation, {
            "name": HEADER,
            "in": "header",
            "required": self.required,
            "description": "A new unique value (a UUID) per operation; a retry with the same key and request gets"
            f" the first answer again, with `{REPLAYED}: true`, for {self.ttl / 3600:g} hours",
            # exactly what parse_key takes (within 255 characters): a quoted key, or a bare one
            # that is not a quoted string with a quote or backslash inside
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": _KEY_PATTERN},
        })
        context.add_response(operation, 400)
        running = context.add_response(operation, 409)
        context.add_header(running, "Retry-After", "seconds until the first request with this key may be answered",
                           {"type": "integer"})
        context.add_response(operation, 422)
        if self.on_store_error == "refuse":
            unavailable = context.add_response(operation, 503)
            context.add_header(unavailable, "Retry-After", "seconds until the keys' store may answer",
                               {"type": "integer"})
        for response in context.success_responses(operation):
            context.add_header(response, REPLAYED, "`true` when this is the kept answer of an earlier request",
                               {"type": "string", "enum": ["true"]})
