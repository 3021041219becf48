"""restkit.conditional: ETag comparison tables, 304, 412, 428, Last-Modified dates, the document."""

from __future__ import annotations

import datetime
import gzip
import json
import threading
import zlib
from typing import Any

import pytest

from restkit import App, Request, etag_of
from restkit.compression import Compression
from restkit.conditional import (
    Conditional,
    check_preconditions,
    evaluate_preconditions,
    format_http_date,
    make_etag,
    parse_etags,
    strong_match,
    weak_match,
)
from tests.conftest import wsgi_call

# RFC 9110, section 8.8.3.2: the comparison table, and more
COMPARISONS = [
    ('W/"1"', 'W/"1"', False, True),
    ('W/"1"', 'W/"2"', False, False),
    ('W/"1"', '"1"', False, True),
    ('"1"', '"1"', True, True),
    ('"1"', '"2"', False, False),
    ('"a-gzip"', '"a"', False, False),
    ('""', '""', True, True),
]


@pytest.mark.parametrize("a, b, strong, weak", COMPARISONS, ids=[f"{a} {b}" for a, b, _, _ in COMPARISONS])
def test_strong_and_weak_comparison(a: str, b: str, strong: bool, weak: bool) -> None:
    assert strong_match(a, b) is strong and strong_match(b, a) is strong
    assert weak_match(a, b) is weak and weak_match(b, a) is weak


PARSED = [
    ('"a"', ['"a"']),
    ('W/"a"', ['W/"a"']),
    ('"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"']),
    ('"a",,"b"', ['"a"', '"b"']),
    ("*", ["*"]),
    (" * ", ["*"]),
    ('"a,b"', ['"a,b"']),
    ("a", None),
    ('"a" "b"', None),
    ('"a', None),
    ('w/"a"', None),
    ("", []),
]


@pytest.mark.parametrize("header, tags", PARSED, ids=[repr(h) for h, _ in PARSED])
def test_parse_etags(header: str, tags: list[str] | None) -> None:
    assert parse_etags(header) == tags


def test_make_etag() -> None:
    tag = make_etag(b"body")
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 26
    assert make_etag("body") == tag and make_etag(b"other") != tag
    assert make_etag(b"body", weak=True) == "W/" + tag


VERSION = {"n": 1}
CHANGED = datetime.datetime(2026, 11, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
LOCK = threading.Lock()


def make_app() -> App:
    app = App(openapi=True)
    item = {"id": 1, "name": "one"}

    @app.get("/auto", conditional=True)
    def auto(request: Any) -> dict[str, Any]:
        return item

    @app.get("/weak", conditional=Conditional(weak=True))
    def weak(request: Any) -> dict[str, Any]:
        return item

    @app.get("/tagged", conditional=True)
    def tagged(request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
        return item, 200, {"ETag": '"v1"', "Last-Modified": format_http_date(CHANGED), "Cache-Control": "no-cache"}

    @app.put("/items/1", conditional=Conditional(required=True))
    def replace(request: Any) -> dict[str, Any]:
        with LOCK:  # the transaction: read, check, change
            current = make_etag(str(VERSION["n"]))
            check_preconditions(request, etag=current, last_modified=CHANGED)
            VERSION["n"] += 1
            return {"version": VERSION["n"]}

    @app.delete("/gone", conditional=True)
    def delete_missing(request: Any) -> None:
        check_preconditions(request, etag=None, exists=False)

    return app


APP = make_app()
AUTO_TAG = wsgi_call(APP, "GET", "/auto")[1]["ETag"]

# (path, If-None-Match, status)
IF_NONE_MATCH = [
    ("/auto", AUTO_TAG, 304),
    ("/auto", "W/" + AUTO_TAG, 304),  # weak comparison
    ("/auto", f'"x", {AUTO_TAG}', 304),  # a list
    ("/auto", "*", 304),
    ("/auto", '"x"', 200),
    ("/auto", "garbage", 200),  # malformed: no match
    ("/tagged", '"v1"', 304),
    ("/tagged", 'W/"v1"', 304),
    ("/tagged", '"v2", W/"v3"', 200),
    ("/weak", "W/" + AUTO_TAG, 304),
    ("/weak", AUTO_TAG, 304),
]


@pytest.mark.parametrize("path, header, status", IF_NONE_MATCH, ids=[f"{p} {h}" for p, h, _ in IF_NONE_MATCH])
def test_if_none_match(path: str, header: str, status: int) -> None:
    for method in ("GET", "HEAD"):
        got, headers, body = wsgi_call(APP, method, path, {"If-None-Match": header})
        assert got == status
        if status == 304:
            assert body == b"" and "Content-Type" not in headers and "Content-Length" not in headers
            assert headers["ETag"] == wsgi_call(APP, "GET", path)[1]["ETag"]
            if path == "/tagged":
                assert headers["Cache-Control"] == "no-cache" and headers["Last-Modified"]


def test_made_etags_are_strong_or_weak() -> None:
    assert AUTO_TAG.startswith('"')
    assert wsgi_call(APP, "GET", "/weak")[1]["ETag"] == "W/" + AUTO_TAG


DAY = datetime.timedelta(days=1)
# (If-Modified-Since, status): the date is compared with Last-Modified
IF_MODIFIED_SINCE = [
    (format_http_date(CHANGED), 304),
    (format_http_date(CHANGED + DAY), 304),
    (format_http_date(CHANGED - DAY), 200),
    ("not a date", 200),
    ("Sun, 06 Nov 1994 08:49:37", 200),  # no zone: not an HTTP date
]


@pytest.mark.parametrize("since, status", IF_MODIFIED_SINCE, ids=[s for s, _ in IF_MODIFIED_SINCE])
def test_if_modified_since(since: str, status: int) -> None:
    assert wsgi_call(APP, "GET", "/tagged", {"If-Modified-Since": since})[0] == status
    # If-None-Match wins over the date
    assert wsgi_call(APP, "GET", "/tagged", {"If-Modified-Since": since, "If-None-Match": '"v0"'})[0] == 200


def test_writes_with_preconditions() -> None:
    current = make_etag(str(VERSION["n"]))
    cases = [
        ({}, 428, "needs an If-Match header"),
        ({"If-Match": '"stale"'}, 412, "If-Match does not match the current ETag"),
        ({"If-Match": "W/" + current}, 412, "does not match"),  # strong comparison: weak never matches
        ({"If-Match": "garbage"}, 412, "does not match"),
        ({"If-Unmodified-Since": format_http_date(CHANGED - DAY)}, 412, "modified after If-Unmodified-Since"),
        ({"If-None-Match": "*"}, 428, "needs an If-Match"),
    ]
    for headers, status, fragment in cases:
        got, _, body = wsgi_call(APP, "PUT", "/items/1", headers)
        assert got == status and fragment in json.loads(body)["error"], (headers, body)
    assert VERSION["n"] == 1  # nothing changed
    for headers in ({"If-Match": current}, {"If-Match": f'"x", {make_etag("2")}'}, {"If-Match": "*"},
                    {"If-Unmodified-Since": format_http_date(CHANGED)}):
        got, _, body = wsgi_call(APP, "PUT", "/items/1", headers)
        assert got == 200, (headers, body)
    assert VERSION["n"] == 5


def test_if_match_star_needs_an_existing_resource() -> None:
    assert wsgi_call(APP, "DELETE", "/gone", {"If-Match": "*"})[0] == 412
    assert wsgi_call(APP, "DELETE", "/gone")[0] == 204


def test_if_match_on_a_read_is_412() -> None:
    assert wsgi_call(APP, "GET", "/tagged", {"If-Match": '"v1"'})[0] == 200
    got, _, body = wsgi_call(APP, "GET", "/tagged", {"If-Match": '"v0"'})
    assert got == 412 and "If-Match" in json.loads(body)["error"]


def test_errors_and_streams_are_left_alone() -> None:
    app = App()

    @app.get("/missing", conditional=True)
    def missing(request: Any) -> None:
        from restkit import NotFound

        raise NotFound("no such thing")

    @app.get("/stream", conditional=True)
    def stream(request: Any) -> Any:
        return iter([b"a", b"b"])

    got, headers, body = wsgi_call(app, "GET", "/missing", {"If-None-Match": "*"})
    assert got == 404 and "ETag" not in headers
    got, headers, body = wsgi_call(app, "GET", "/stream")
    assert got == 200 and body == b"ab" and "ETag" not in headers


def test_the_document() -> None:
    document = APP.openapi()
    get = document["paths"]["/tagged"]["get"]
    assert {"If-None-Match", "If-Modified-Since"} <= {p["name"] for p in get["parameters"]}
    assert "content" not in get["responses"]["304"]
    assert {"ETag", "Last-Modified"} <= set(get["responses"]["200"]["headers"])
    put = document["paths"]["/items/1"]["put"]
    assert {"If-Match", "If-Unmodified-Since"} <= {p["name"] for p in put["parameters"]}
    assert {"412", "428"} <= set(put["responses"])
    delete = document["paths"]["/gone"]["delete"]
    assert "412" in delete["responses"] and "428" not in delete["responses"]
    pytest.importorskip("openapi_spec_validator").validate(document)


def test_etags_only() -> None:
    app = App()

    @app.get("/x", conditional=Conditional(dates=False))
    def x(request: Any) -> dict[str, int]:
        return {"x": 1}

    parameters = {p["name"] for p in app.openapi()["paths"]["/x"]["get"]["parameters"]}
    assert parameters == {"If-None-Match"}


# RFC 9110, section 13.2.2: (method, headers, status, the precondition that decided), on /tagged
# ('"v1"', Last-Modified CHANGED) and the write /items/1 (its tag make_etag(version), Last-Modified CHANGED)
OLD, NEW = format_http_date(CHANGED - DAY), format_http_date(CHANGED + DAY)
ORDER = [
    ("If-Match first: it fails, If-None-Match would have said 304", "GET",
     {"If-Match": '"v0"', "If-None-Match": '"v1"'}, 412, "If-Match"),
    ("If-Match passes, then If-None-Match", "GET", {"If-Match": '"v1"', "If-None-Match": '"v1"'}, 304, None),
    ("If-Unmodified-Since alone fails on a GET", "GET", {"If-Unmodified-Since": OLD}, 412, "If-Unmodified-Since"),
    ("If-Unmodified-Since is ignored with If-Match", "GET", {"If-Match": '"v1"', "If-Unmodified-Since": OLD}, 200, None),
    ("If-Unmodified-Since fails before If-None-Match", "GET",
     {"If-Unmodified-Since": OLD, "If-None-Match": '"v1"'}, 412, "If-Unmodified-Since"),
    ("If-Unmodified-Since passes, then If-None-Match", "GET",
     {"If-Unmodified-Since": NEW, "If-None-Match": '"v1"'}, 304, None),
    ("If-Modified-Since is ignored with If-None-Match", "GET",
     {"If-None-Match": '"v0"', "If-Modified-Since": NEW}, 200, None),
    ("If-Modified-Since alone", "GET", {"If-Modified-Since": NEW}, 304, None),
    ("an invalid date is ignored", "GET", {"If-Unmodified-Since": "soon"}, 200, None),
    ("a write: If-Match fails first", "PUT", {"If-Match": '"stale"', "If-None-Match": "*"}, 412, "If-Match"),
    ("a write: If-None-Match * on an existing resource", "PUT",
     {"If-Unmodified-Since": NEW, "If-None-Match": "*"}, 412, "If-None-Match"),
    ("a write: If-Unmodified-Since", "PUT", {"If-Unmodified-Since": OLD}, 412, "If-Unmodified-Since"),
]


@pytest.mark.parametrize("method, headers, status, failed", [o[1:] for o in ORDER], ids=[o[0] for o in ORDER])
def test_the_order_of_rfc_9110_13_2_2(method: str, headers: dict[str, str], status: int, failed: str | None) -> None:
    path = "/tagged" if method == "GET" else "/items/1"
    before = VERSION["n"]
    got, _, body = wsgi_call(APP, method, path, headers)
    assert got == status, body
    if status == 412:
        message = json.loads(body)["error"]
        assert message.startswith(failed) or f"after {failed}" in message, message  # it names the failed precondition
        assert VERSION["n"] == before
        for other in {"If-Match", "If-None-Match", "If-Unmodified-Since"} - {failed}:
            assert other not in message


# Each 412's message: (headers, exists, the message)
MESSAGES = [
    ({"If-Match": '"stale"'}, True, 'If-Match does not match the current ETag "v1"'),
    ({"If-Match": "*"}, False, "If-Match: * but the resource does not exist"),
    ({"If-Unmodified-Since": OLD}, True, f"the resource was modified after If-Unmodified-Since: {OLD}"),
    ({"If-None-Match": '"v1"'}, True, 'If-None-Match matches the current ETag "v1"'),
    ({"If-None-Match": "*"}, True, 'If-None-Match matches the current ETag "v1"'),
]


@pytest.mark.parametrize("headers, exists, message", MESSAGES, ids=[m for _, _, m in MESSAGES])
def test_each_412_names_its_precondition(headers: dict[str, str], exists: bool, message: str) -> None:
    app = App()

    @app.delete("/x")
    def delete(request: Any) -> None:
        check_preconditions(request, etag='"v1"', last_modified=CHANGED, exists=exists)

    got, _, body = wsgi_call(app, "DELETE", "/x", headers)
    assert got == 412 and json.loads(body)["error"] == message
    verdict = evaluate_preconditions(Request(environ_of("DELETE", headers)), etag='"v1"', last_modified=CHANGED,
                                     exists=exists)
    assert verdict is not None and verdict.status == 412 and verdict.message == message


def environ_of(method: str, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": "/x"}
    environ.update(("HTTP_" + name.upper().replace("-", "_"), value) for name, value in headers.items())
    return environ


def test_a_get_that_fails_only_if_unmodified_since_says_so() -> None:
    got, _, body = wsgi_call(APP, "GET", "/tagged", {"If-Unmodified-Since": OLD})
    assert got == 412 and "If-Unmodified-Since" in json.loads(body)["error"]
    assert "If-Match" not in json.loads(body)["error"]


HERD = [{"id": n, "name": f"animal number {n}"} for n in range(100)]


def make_compressed_app() -> App:
    app = App()
    app.use(Compression(min_size=500))

    @app.get("/auto", conditional=True)  # the ETag made from the body: 304 in after()
    def auto(request: Any) -> list[dict[str, Any]]:
        return HERD

    @app.get("/tagged", conditional=True)  # the handler's ETag: 304 in preempt()
    def tagged(request: Any) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
        return HERD, 200, {"ETag": '"herd-v1"'}

    @app.get("/plain")  # no conditional=: Compression answers the revalidation itself
    def plain(request: Any) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
        return HERD, 200, {"ETag": '"herd-v1"'}

    @app.put("/auto", conditional=True)
    def replace(request: Any) -> dict[str, str]:
        check_preconditions(request, etag=etag_of(HERD))
        return {"ok": "yes"}

    return app


COMPRESSED = make_compressed_app()


@pytest.fixture
def gzip_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the gzip compressors made (restkit.compression makes one per compressed answer)."""
    calls: list[int] = []
    real = zlib.compressobj

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(zlib, "compressobj", counting)
    return calls


@pytest.mark.parametrize("path", ["/auto", "/tagged", "/plain"])
def test_a_gzipped_304_compresses_nothing(path: str, gzip_calls: list[int]) -> None:
    status, headers, body = wsgi_call(COMPRESSED, "GET", path, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and gzip.decompress(body)
    assert len(gzip_calls) == 1
    packed = headers["ETag"]
    assert packed.endswith('-gzip"')
    status, headers, body = wsgi_call(COMPRESSED, "GET", path, {"Accept-Encoding": "gzip", "If-None-Match": packed})
    assert status == 304 and body == b"" and headers["ETag"] == packed and "Content-Encoding" not in headers
    assert "Accept-Encoding" in headers["Vary"]
    assert len(gzip_calls) == 1  # no compression for the 304
    # the gzipped tag means nothing to a client that does not take gzip
    assert wsgi_call(COMPRESSED, "GET", path, {"If-None-Match": packed})[0] == 200


def test_if_match_takes_the_tag_of_either_representation() -> None:
    packed = wsgi_call(COMPRESSED, "GET", "/auto", {"Accept-Encoding": "gzip"})[1]["ETag"]
    plain = wsgi_call(COMPRESSED, "GET", "/auto")[1]["ETag"]
    assert plain == etag_of(HERD) and packed == plain[:-1] + '-gzip"'
    for tag in (plain, packed):
        assert wsgi_call(COMPRESSED, "PUT", "/auto", {"If-Match": tag})[0] == 200
    assert wsgi_call(COMPRESSED, "PUT", "/auto", {"If-Match": 'W/' + plain})[0] == 412


def test_etag_of_is_the_tag_a_get_sends() -> None:
    assert etag_of({"id": 1, "name": "one"}) == AUTO_TAG
    assert etag_of({"id": 1, "name": "one"}, weak=True) == "W/" + AUTO_TAG
    assert etag_of(({"id": 1}, 200, {"ETag": '"v7"'})) == '"v7"'
    with pytest.raises(TypeError):
        etag_of(iter([b"a"]))
