"""The scenarios, and one adapter module per framework that implements them.

Every adapter module defines ``make_app(route_count: int = 10, compressed:
bool = False)``, which returns a WSGI callable answering all the scenarios
the way that framework is normally used; ``compressed=True`` adds what that
framework's users add to gzip large answers (the ``gzip_not_modified``
scenario runs on that app, the others on the plain one).  ``route_count`` is the number of
``/r{i}/<int:id>`` routes; the benchmarks build one app with 10 of them and
one with 1,000, and hit the last.  Every adapter answers every scenario with
the same status and the same JSON (``tests/test_benchmarks.py`` checks it).

Importing an adapter imports its framework; a missing framework raises
:class:`ImportError`, which the benchmarks report as "skipped".
"""

from __future__ import annotations

import importlib
import io
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["ADAPTERS", "EXTRA_ADAPTERS", "SCENARIOS", "Scenario", "app_for", "apps_for", "environ_for", "load", "pure_python_falcon"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Adapter modules, the floor first, restkit second.
ADAPTERS = ("bare", "restkit", "bottle", "falcon", "flask")
#: Adapters run only when named: restkit with :class:`restkit.metrics.Metrics` (``inprocess --metrics``).
EXTRA_ADAPTERS = ("restkit_metrics",)

#: The text of scenario 1.
HELLO = "Hello, World!"

#: A 200-byte JSON document for scenario 4 (the assert keeps it honest).
ZOO_JSON = json.dumps(
    {
        "name": "Kensington Garden Zoo",
        "city": "London",
        "country": "GB",
        "opened": 828,
        "keepers": ["Ada", "Grace", "Barbara"],
        "tags": ["birds", "reptiles", "open-air"],
        "latitude": 51.5073,
        "longitude": -0.1657,
        "note": "",
    },
    separators=(",", ":"),
).encode()
assert len(ZOO_JSON) == 200, len(ZOO_JSON)

#: The urlencoded form of scenario 5.
ITEM_FORM = b"name=widget&color=blue&size=10&note=hello+world"

#: The collection that scenario 9 pages through: 100 short items.
PETS = [{"id": n, "name": f"pet {n}", "href": f"/pets/{n}"} for n in range(1, 101)]

#: The entity tag of scenario 10's resource (set by the handler, as the zoo does from a version).
PET_ETAG = '"pet-7-v3"'
PET = {"id": 7, "name": "pet 7", "version": 3}

#: Scenario 11's resource: a list big enough to be worth gzip (about 2 kB of JSON), and its entity tag;
#: the gzipped representation's tag is the identity tag with a ``-gzip`` suffix (restkit's rule).
HERD = [{"id": n, "name": f"animal {n}", "species": "zebra", "href": f"/animals/{n}"} for n in range(1, 31)]
HERD_ETAG = '"herd-v2"'
HERD_GZIP_ETAG = '"herd-v2-gzip"'


def page_links(url: str, limit: int, offset: int, total: int) -> str:
    """The RFC 8288 Link value of scenario 9 (restkit's paging rules, written out for the others)."""
    from urllib.parse import urlencode

    last = (total - 1) // limit * limit if total else 0
    pages = [("first", 0)]
    if offset > 0:
        pages.append(("prev", min(max(offset - limit, 0), last)))
    if offset + limit < total:
        pages.append(("next", offset + limit))
    pages.append(("last", last))
    return ", ".join(f'<{url}?{urlencode([("limit", limit), ("offset", start)])}>; rel="{rel}"' for rel, start in pages)


@dataclass(frozen=True)
class Scenario:
    """One request of the benchmark and what every adapter must answer."""

    key: str
    title: str
    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str = ""
    status: int = 200
    route_count: int = 10
    headers: tuple[tuple[str, str], ...] = ()
    #: Run on the app built with ``make_app(route_count, compressed=True)`` (gzip for large answers).
    compressed: bool = False

    @property
    def app_key(self) -> tuple[int, bool]:
        """Which app of an adapter answers this scenario: its route count, and whether it compresses."""
        return self.route_count, self.compressed


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("hello", "GET /hello, text", "GET", "/hello"),
    Scenario("params", "GET /zoos/123/animals/456 (two int params) -> JSON", "GET", "/zoos/123/animals/456"),
    Scenario(
        "query",
        "GET /animals?limit=10&offset=20&sortby=name&order=asc -> JSON echo",
        "GET",
        "/animals",
        query="limit=10&offset=20&sortby=name&order=asc",
    ),
    Scenario(
        "post_json", "POST /zoos, 200-byte JSON -> 201 JSON", "POST", "/zoos",
        body=ZOO_JSON, content_type="application/json", status=201,
    ),
    Scenario(
        "put_form", "PUT /items/7, urlencoded form -> JSON", "PUT", "/items/7",
        body=ITEM_FORM, content_type="application/x-www-form-urlencoded",
    ),
    Scenario("missing", "GET /missing -> 404", "GET", "/missing", status=404),
    Scenario("routes_10", "10 routes /r{i}/<int:id>, hit the last", "GET", "/r9/42"),
    Scenario("routes_1000", "1,000 such routes, hit the last", "GET", "/r999/42", route_count=1000),
    Scenario("paged", "GET /pets?limit=20&offset=40: paged list of 20 items with Link and X-Total-Count", "GET",
             "/pets", query="limit=20&offset=40"),
    Scenario("not_modified", "GET /pets/7 with If-None-Match: its ETag -> 304", "GET", "/pets/7", status=304,
             headers=(("If-None-Match", PET_ETAG),)),
    Scenario("gzip_not_modified", "GET /herd, gzip accepted, with If-None-Match: its gzip ETag -> 304", "GET", "/herd",
             status=304, headers=(("Accept-Encoding", "gzip, deflate"), ("If-None-Match", HERD_GZIP_ETAG)),
             compressed=True),
)


def app_for(module: ModuleType, key: tuple[int, bool]) -> WSGIApp:
    """The adapter's app for a :attr:`Scenario.app_key` (an adapter of an older commit may not compress)."""
    route_count, compressed = key
    if not compressed:
        return module.make_app(route_count)  # type: ignore[no-any-return]
    try:
        return module.make_app(route_count, compressed=True)  # type: ignore[no-any-return]
    except TypeError:  # an adapter from before the gzip scenario: it answers it some other way
        return module.make_app(route_count)  # type: ignore[no-any-return]


def apps_for(module: ModuleType, scenarios: Iterable[Scenario] | None = None) -> dict[tuple[int, bool], WSGIApp]:
    """The apps of an adapter that ``scenarios`` (default all) run on, by :attr:`Scenario.app_key`."""
    keys = sorted({s.app_key for s in (SCENARIOS if scenarios is None else scenarios)})
    return {key: app_for(module, key) for key in keys}


def not_found_message(path: str) -> str:
    """The 404 message every adapter sends (restkit's own wording)."""
    return f"no resource at {path}"


def environ_for(scenario: Scenario) -> dict[str, Any]:
    """A PEP 3333 environ for ``scenario``, without ``wsgi.input`` (add a fresh one per call)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scenario.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scenario.path,
        "QUERY_STRING": scenario.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "restkit-bench/1.0",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in scenario.headers:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if scenario.body:
        environ["CONTENT_TYPE"] = scenario.content_type
        environ["CONTENT_LENGTH"] = str(len(scenario.body))
    environ["wsgi.input"] = io.BytesIO(scenario.body)
    return environ


class _BlockCompiled:
    """An import hook that hides Falcon's Cython helpers (``falcon.cyutil``)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "falcon.cyutil" or name.startswith("falcon.cyutil."):
            raise ImportError(f"{name} is hidden: the benchmark measures Falcon as pure Python")
        return None


def pure_python_falcon() -> None:
    """Make the next ``import falcon`` pure Python.

    Falcon's wheels ship three Cython modules (``falcon.cyutil.misc``,
    ``.uri``, ``.reader``: percent-decoding, query parsing, header
    encoding, a buffered reader) and fall back to their pure-Python twins
    when those do not import.  This hook makes them not import.

    Raises:
        RuntimeError: Falcon was already imported with its compiled helpers.
    """
    if not any(isinstance(finder, _BlockCompiled) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BlockCompiled())
    loaded = [name for name in sys.modules if name.startswith("falcon.cyutil")]
    if loaded:
        raise RuntimeError(f"Falcon was imported before its Cython helpers were hidden: {loaded}")


def falcon_is_pure_python() -> bool:
    """Whether the imported Falcon runs without any compiled module."""
    falcon = sys.modules.get("falcon")
    if falcon is None:
        return False
    compiled = [
        name
        for name, module in list(sys.modules.items())
        if name.startswith("falcon") and str(getattr(module, "__file__", "") or "").endswith((".so", ".pyd"))
    ]
    return not compiled and not str(falcon.__file__).endswith((".so", ".pyd"))


def load(name: str) -> ModuleType:
    """Import adapter ``name`` (Falcon always pure Python).

    Raises:
        ImportError: the framework is not installed.
    """
    if name == "falcon":
        pure_python_falcon()
    return importlib.import_module(f"{__name__}.{name}")


def framework_version(name: str) -> str:
    """The installed version of the framework behind adapter ``name``."""
    if name == "bare":
        return ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
