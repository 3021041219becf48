"""restkit.compression: when gzip is used, Vary, ETags of the compressed representation, what is never touched."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from restkit import App, Response
from restkit.compression import Compression, accepts_gzip
from tests.conftest import wsgi_call

BIG = [{"id": n, "name": f"animal number {n}"} for n in range(200)]


def make_app() -> App:
    app = App()
    app.use(Compression(min_size=500))

    @app.get("/big", conditional=True)
    def big(request: Any) -> list[dict[str, Any]]:
        return BIG

    @app.get("/weak")
    def weak(request: Any) -> Any:
        return BIG, 200, {"ETag": 'W/"w1"'}

    @app.get("/small")
    def small(request: Any) -> dict[str, int]:
        return {"id": 1}

    @app.get("/image")
    def image(request: Any) -> Response:
        return Response(b"\x89PNG" + b"\0" * 5000, content_type="image/png")

    @app.get("/stream")
    def stream(request: Any) -> Any:
        return (b"x" * 1000 for _ in range(3))

    @app.get("/encoded")
    def encoded(request: Any) -> Response:
        return Response(gzip.compress(b"{}" * 1000), headers={"Content-Encoding": "gzip"}, content_type="application/json")

    @app.get("/text")
    def text(request: Any) -> str:
        return "word " * 300

    @app.get("/missing")
    def missing(request: Any) -> None:
        from restkit import NotFound

        raise NotFound("x" * 1000)

    return app


APP = make_app()

ACCEPT = [
    ("gzip", True),
    ("gzip, deflate, br", True),
    ("GZIP", True),
    ("br;q=1.0, gzip;q=0.8", True),
    ("x-gzip", True),
    ("*", True),
    ("gzip;q=0", False),
    ("*;q=0", False),
    ("gzip;q=0, *", False),
    ("identity", False),
    ("br", False),
    ("", False),
    ("gzip;q=abc", False),
]


@pytest.mark.parametrize("header, accepted", ACCEPT, ids=[h or "empty" for h, _ in ACCEPT])
def test_accept_encoding(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
    status, headers, body = wsgi_call(APP, "GET", "/big", {"Accept-Encoding": header} if header else {})
    assert status == 200 and headers["Vary"] == "Accept-Encoding"
    if accepted:
        assert headers["Content-Encoding"] == "gzip" and headers["Content-Length"] == str(len(body))
        assert gzip.decompress(body) == wsgi_call(APP, "GET", "/big")[2]
    else:
        assert "Content-Encoding" not in headers


# (path, compressed?, Vary: Accept-Encoding?)
WHAT = [
    ("/big", True, True),
    ("/text", True, True),
    ("/small", False, True),  # under min_size, but compressible: it varies
    ("/image", False, False),  # not a compressible type
    ("/stream", False, False),  # never streams
    ("/encoded", False, False),  # already encoded
    ("/missing", False, True),  # errors are left as they are
]


@pytest.mark.parametrize("path, compressed, varies", WHAT, ids=[w[0] for w in WHAT])
def test_what_is_compressed(path: str, compressed: bool, varies: bool) -> None:
    status, headers, body = wsgi_call(APP, "GET", path, {"Accept-Encoding": "gzip"})
    assert (headers.get("Content-Encoding") == "gzip") is compressed or path == "/encoded"
    assert ("Accept-Encoding" in headers.get("Vary", "")) is varies
    if path == "/encoded":
        assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == b"{}" * 1000


def test_the_compressed_representation_has_its_own_etag() -> None:
    plain = wsgi_call(APP, "GET", "/big")[1]["ETag"]
    status, headers, _ = wsgi_call(APP, "GET", "/big", {"Accept-Encoding": "gzip"})
    packed = headers["ETag"]
    assert packed == plain[:-1] + '-gzip"' and packed != plain
    # each client revalidates the tag it holds
    for tag, encoding in ((packed, "gzip"), (plain, "identity"), (plain, "gzip")):
        status, headers, body = wsgi_call(APP, "GET", "/big", {"Accept-Encoding": encoding, "If-None-Match": tag})
        assert status == 304 and body == b"" and headers["ETag"] == tag and "Content-Encoding" not in headers
    # the compressed tag means nothing to a client that does not take gzip
    assert wsgi_call(APP, "GET", "/big", {"If-None-Match": packed})[0] == 200
    # a weak tag may be shared by both
    assert wsgi_call(APP, "GET", "/weak", {"Accept-Encoding": "gzip"})[1]["ETag"] == 'W/"w1"'


def test_head_gets_the_compressed_headers() -> None:
    get = wsgi_call(APP, "GET", "/big", {"Accept-Encoding": "gzip"})[1]
    status, head, body = wsgi_call(APP, "HEAD", "/big", {"Accept-Encoding": "gzip"})
    assert status == 200 and body == b"" and head["Content-Length"] == get["Content-Length"]
