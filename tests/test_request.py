"""restkit.request: the path, URL, headers, query, cookies and body a handler sees.

Most tests go through an App and the validated WebTest client.  Tests that
need an environ WebTest cannot build (a wsgi.input that must not be read, a
truncated body) call the app through ``wsgiref.validate.validator`` directly.
"""

from __future__ import annotations

import io
import json
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from restkit import App, BadRequest, PayloadTooLarge, Request, UnsupportedMediaType
from restkit.datastructures import MultiDict
from restkit.request import decode_path, media_type_accepted

from tests.conftest import make_client

# -- helpers ---------------------------------------------------------------------------------


class ExplodingInput:
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("wsgi.input must not be read")

    readline = read

    def readlines(self, *args: Any) -> list[bytes]:
        raise AssertionError("wsgi.input must not be read")

    def __iter__(self) -> Any:
        raise AssertionError("wsgi.input must not be read")


class CountingInput(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, *args: Any) -> bytes:  # type: ignore[override]
        self.reads += 1
        return super().read(*args)


def environ_for(method: str = "GET", path: str = "/", body: bytes | None = None, **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": ""}
    if body is not None:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    environ.update(extra)
    setup_testing_defaults(environ)
    return environ


def call(app: Any, environ: dict[str, Any], *, validate: bool = True) -> tuple[int, dict[str, str], bytes]:
    """Call ``app`` (through the validator unless told not to); return status, headers, body."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    wsgi = validator(app) if validate else app
    result = wsgi(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return int(captured["status"][:3]), dict(captured["headers"]), body


def echo_app(**options: Any) -> App:
    """An app whose routes report what the request looked like."""
    app = App(**options)

    @app.route("/echo/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    def echo(request: Request, rest: str) -> dict[str, Any]:
        return {"path": request.path, "rest": rest, "method": request.method}

    @app.get("/ok")
    def ok(request: Request) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/url")
    def url(request: Request) -> dict[str, Any]:
        return {"url": request.url, "base": request.base_url, "host": request.host, "scheme": request.scheme,
                "script_name": request.script_name, "self": request.url_for("url", _external=True, a="1"),
                "self_path": request.url_for("url")}

    @app.get("/query")
    def query(request: Request) -> dict[str, Any]:
        return {k: request.query.getall(k) for k in request.query}

    @app.get("/headers")
    def headers(request: Request) -> dict[str, Any]:
        return {"x-token": request.headers.get("x-token"), "X-TOKEN": request.headers["X-TOKEN"],
                "all": request.headers.getall("X-Token"), "missing": request.headers.getall("x-missing"),
                "has": "x-TOKEN" in request.headers, "ua": request.headers.get("User-Agent")}

    @app.get("/cookies")
    def cookies(request: Request) -> dict[str, str]:
        return request.cookies

    @app.get("/remote")
    def remote(request: Request) -> dict[str, Any]:
        return {"remote_addr": request.remote_addr}

    @app.post("/json")
    def post_json(request: Request) -> dict[str, Any]:
        return {"got": request.json}

    @app.post("/form")
    def post_form(request: Request) -> dict[str, Any]:
        return {
            "form": {k: request.form.getall(k) for k in request.form},
            "files": {
                k: [{"filename": f.filename, "content_type": f.content_type, "size": f.size,
                     "hex": f.data.hex(), "stream_hex": f.stream.read().hex()} for f in request.files.getall(k)]
                for k in request.files
            },
        }

    @app.post("/body")
    def body(request: Request) -> dict[str, Any]:
        first = request.body
        again = request.body
        rest = request.environ["wsgi.input"].read(1) if request.content_length else b""
        return {"len": len(first), "same": first is again, "left": len(rest), "hex": first.hex()[:64],
                "content_length": request.content_length, "content_type": request.content_type}

    return app


@pytest.fixture
def client() -> Any:
    return make_client(echo_app())


def still_serves(client: Any) -> None:
    assert client.get("/ok").json == {"ok": True}


# -- path ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, path",
    [("/echo/plain", "/echo/plain"), ("/echo/caf%C3%A9", "/echo/café"), ("/echo/%E2%9C%93/%F0%9F%90%98", "/echo/✓/🐘"),
     ("/echo/a%20b", "/echo/a b"), ("/echo/%25", "/echo/%")],
    ids=["ascii", "latin-letter", "emoji-and-mark", "space", "percent"],
)
def test_path_is_decoded_as_utf8(client: Any, url: str, path: str) -> None:
    resp = client.get(url)
    assert resp.json["path"] == path
    assert resp.json["rest"] == path[len("/echo/"):]


@pytest.mark.parametrize("url", ["/echo/caf%E9", "/echo/%FF%FE", "/echo/%C3"], ids=["latin1-e-acute", "ff-fe", "truncated"])
def test_non_utf8_path_is_400(client: Any, url: str) -> None:
    resp = client.get(url, status=400)
    assert resp.json == {"error": "request path is not valid UTF-8"}
    still_serves(client)


def test_decode_path_unit() -> None:
    assert decode_path("/plain") == "/plain"
    assert decode_path("/caf\xc3\xa9") == "/café"
    with pytest.raises(BadRequest):
        decode_path("/caf\xe9")


def test_missing_path_info_is_root() -> None:
    environ = environ_for()
    del environ["PATH_INFO"]
    environ["SCRIPT_NAME"] = "/app"
    assert Request(environ).path == "/"


# -- url ----------------------------------------------------------------------------------------


def test_url_parts(client: Any) -> None:
    data = client.get("/url?x=1&y=%20", headers={"Host": "api.example.com:8080"}).json
    assert data["url"] == "http://api.example.com:8080/url?x=1&y=%20"
    assert data["base"] == "http://api.example.com:8080"
    assert data["host"] == "api.example.com:8080"
    assert data["scheme"] == "http"
    assert data["self"] == "http://api.example.com:8080/url?a=1"
    assert data["self_path"] == "/url"


def test_url_with_script_name_and_https(client: Any) -> None:
    data = client.get("/url", extra_environ={"SCRIPT_NAME": "/api", "wsgi.url_scheme": "https",
                                              "HTTP_HOST": "example.com"}).json
    assert data["url"] == "https://example.com/api/url"
    assert data["script_name"] == "/api"
    assert data["self"] == "https://example.com/api/url?a=1"
    assert data["self_path"] == "/api/url"


@pytest.mark.parametrize(
    ("script_name", "base"),
    [
        ("", "http://h"),
        ("/api/v1.2_x~y-z", "http://h/api/v1.2_x~y-z"),  # nothing to quote
        ("/my app", "http://h/my%20app"),
        ("/caf\xc3\xa9", "http://h/caf%C3%A9"),  # WSGI's Latin-1 form of UTF-8
        ("/a?b#c", "http://h/a%3Fb%23c"),
    ],
    ids=["empty", "safe", "space", "utf-8", "delimiters"],
)
def test_base_url_quotes_the_script_name_when_needed(script_name: str, base: str) -> None:
    environ = environ_for(HTTP_HOST="h")
    environ["SCRIPT_NAME"] = script_name
    assert Request(environ).base_url == base


def test_url_without_host_header_uses_server_name() -> None:
    environ = environ_for(path="/caf\xc3\xa9", SERVER_NAME="srv", SERVER_PORT="8000")
    environ.pop("HTTP_HOST", None)
    environ["QUERY_STRING"] = "a=1"
    assert Request(environ).url == "http://srv:8000/caf%C3%A9?a=1"
    environ = environ_for(SERVER_NAME="srv", SERVER_PORT="80")
    environ.pop("HTTP_HOST", None)
    assert Request(environ).url == "http://srv/"


def test_url_for_needs_an_app() -> None:
    with pytest.raises(RuntimeError):
        Request(environ_for()).url_for("x")


# -- headers --------------------------------------------------------------------------------------


def test_headers_are_case_insensitive(client: Any) -> None:
    data = client.get("/headers", headers={"X-Token": "abc", "User-Agent": "pytest"}).json
    assert data == {"x-token": "abc", "X-TOKEN": "abc", "all": ["abc"], "missing": [], "has": True, "ua": "pytest"}


def test_headers_include_content_type_and_length() -> None:
    request = Request(environ_for("POST", body=b"abc", CONTENT_TYPE="text/plain", HTTP_X_A="1"))
    assert request.headers["content-type"] == "text/plain"
    assert request.headers["Content-Length"] == "3"
    assert request.headers["X-A"] == "1"
    assert request.headers.getall("x-a") == ["1"]


# -- query ----------------------------------------------------------------------------------------

QUERY_CASES = [
    ("repeated", "a=1&b=2&a=3", {"a": ["1", "3"], "b": ["2"]}),
    ("blank", "a=&b", {"a": [""], "b": [""]}),
    ("plus-and-escapes", "q=a+b%20c&e=caf%C3%A9", {"q": ["a b c"], "e": ["café"]}),
    ("bad-percent", "a=%zz&b=%&c=%4", {"a": ["%zz"], "b": ["%"], "c": ["%4"]}),
    ("non-utf8-escape", "a=%FF", {"a": ["\ufffd"]}),
    ("empty-pairs", "&&a=1&&", {"a": ["1"]}),
    ("semicolon-is-not-a-separator", "a=1;b=2", {"a": ["1;b=2"]}),
]


@pytest.mark.parametrize("qs, expected", [c[1:] for c in QUERY_CASES], ids=[c[0] for c in QUERY_CASES])
def test_query(client: Any, qs: str, expected: dict[str, list[str]]) -> None:
    assert client.get("/query?" + qs).json == expected
    still_serves(client)


def test_query_raw_utf8_bytes() -> None:
    # a client that sent raw UTF-8 in the query: WSGI hands it over as Latin-1 text
    request = Request(environ_for(QUERY_STRING="name=caf\xc3\xa9"))
    assert request.query["name"] == "café"
    assert request.query.get("nope") is None
    assert request.query.getall("nope") == []


def test_empty_query() -> None:
    request = Request(environ_for())
    assert len(request.query) == 0


# -- cookies --------------------------------------------------------------------------------------

COOKIE_CASES = [
    ("simple", "a=1; b=2", {"a": "1", "b": "2"}),
    ("quoted", 'session="abc def"; b=2', {"session": "abc def", "b": "2"}),
    ("first-wins", "a=1; a=2", {"a": "1"}),
    ("malformed-pairs", "novalue; =noname; ; a=1;;b = 2 ", {"a": "1", "b": "2"}),
    ("value-with-equals", "token=a=b=c", {"token": "a=b=c"}),
    ("lone-quote", 'a="', {"a": '"'}),
    ("empty-value", "a=", {"a": ""}),
]


@pytest.mark.parametrize("header, expected", [c[1:] for c in COOKIE_CASES], ids=[c[0] for c in COOKIE_CASES])
def test_cookies(client: Any, header: str, expected: dict[str, str]) -> None:
    assert client.get("/cookies", headers={"Cookie": header}).json == expected
    still_serves(client)


def test_no_cookies(client: Any) -> None:
    assert client.get("/cookies").json == {}


# -- remote_addr ------------------------------------------------------------------------------------


def test_remote_addr(client: Any) -> None:
    assert client.get("/remote", extra_environ={"REMOTE_ADDR": "10.1.2.3"}).json == {"remote_addr": "10.1.2.3"}
    # proxy headers are not trusted
    resp = client.get("/remote", headers={"X-Forwarded-For": "6.6.6.6"}, extra_environ={"REMOTE_ADDR": "10.1.2.3"})
    assert resp.json == {"remote_addr": "10.1.2.3"}


def test_remote_addr_absent() -> None:
    environ = environ_for()
    environ.pop("REMOTE_ADDR", None)
    assert Request(environ).remote_addr is None


# -- JSON -------------------------------------------------------------------------------------------

JSON_OK = [
    ("object", "application/json", b'{"name": "Zo\xc3\xa9", "n": 1}', {"name": "Zoé", "n": 1}),
    ("list", "application/json", b"[1, 2.5, null, true]", [1, 2.5, None, True]),
    ("charset-param", "application/json; charset=utf-8", b'{"a": 1}', {"a": 1}),
    ("upper-case-type", "Application/JSON", b'{"a": 1}', {"a": 1}),
    ("plus-json", "application/merge-patch+json", b'{"a": null}', {"a": None}),
    ("utf8-bom", "application/json", b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
    ("scalar", "application/json", b"42", 42),
]


@pytest.mark.parametrize("ctype, body, expected", [c[1:] for c in JSON_OK], ids=[c[0] for c in JSON_OK])
def test_json_ok(client: Any, ctype: str, body: bytes, expected: Any) -> None:
    assert client.post("/json", body, headers={"Content-Type": ctype}).json == {"got": expected}


JSON_BAD = [
    ("wrong-type", "text/plain", b'{"a": 1}', 415, "application/json"),
    ("form-type", "application/x-www-form-urlencoded", b"a=1", 415, "application/json"),
    ("json-like-but-not", "application/jsonx", b'{"a": 1}', 415, "application/json"),
    ("malformed", "application/json", b'{"a": 1,}', 400, "line 1 column 9"),
    ("malformed-line-2", "application/json", b'{\n"a": }', 400, "line 2 column 6"),
    ("truncated", "application/json", b'{"a": ', 400, "line 1 column"),
    ("single-quotes", "application/json", b"{'a': 1}", 400, "line 1 column 2"),
    ("empty", "application/json", b"", 400, "empty"),
    ("non-utf8", "application/json", b'{"a": "caf\xe9"}', 400, "UTF-8"),
    ("nan", "application/json", b'{"a": NaN}', 400, "NaN"),
    ("infinity", "application/json", b"[Infinity]", 400, "Infinity"),
    ("minus-infinity", "application/json", b"[-Infinity]", 400, "Infinity"),
    ("deep-nesting", "application/json", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("huge-integer", "application/json", b"1" * 5000, 400, "malformed JSON"),
    ("duplicate-key", "application/json", b'{"a": 1, "b": 2, "a": 3}', 400, "duplicate key 'a'"),
    ("duplicate-key-nested", "application/json", b'[{"x": {"k": 1, "k": 1}}]', 400, "duplicate key 'k'"),
    ("duplicate-long-key", "application/json", b'{"' + b"k" * 5000 + b'": 1, "' + b"k" * 5000 + b'": 2}', 400,
     "duplicate key '" + "k" * 64 + "...'"),
]


@pytest.mark.parametrize("ctype, body, code, message", [c[1:] for c in JSON_BAD], ids=[c[0] for c in JSON_BAD])
def test_json_errors(client: Any, ctype: str, body: bytes, code: int, message: str) -> None:
    resp = client.post("/json", body, headers={"Content-Type": ctype}, status=code)
    assert resp.content_type == "application/json"
    assert set(resp.json) == {"error"}
    assert message in resp.json["error"]
    still_serves(client)


def test_json_without_content_type_is_415() -> None:
    environ = environ_for("POST", "/json", body=b'{"a": 1}')
    environ.pop("CONTENT_TYPE", None)
    code, headers, body = call(echo_app(), environ)
    assert code == 415
    assert json.loads(body) == {"error": "expected a body of type application/json, got no Content-Type"}


def test_json_unit_errors() -> None:
    with pytest.raises(UnsupportedMediaType):
        Request(environ_for("POST", body=b"{}", CONTENT_TYPE="text/plain")).json
    with pytest.raises(BadRequest, match="line 1 column 1"):
        Request(environ_for("POST", body=b"nope", CONTENT_TYPE="application/json")).json


# -- forms ----------------------------------------------------------------------------------------


def test_form_urlencoded(client: Any) -> None:
    resp = client.post("/form", "name=Zo%C3%A9&tag=a&tag=b&empty=&plus=a+b&bad=%zz",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.json == {"form": {"name": ["Zoé"], "tag": ["a", "b"], "empty": [""], "plus": ["a b"], "bad": ["%zz"]},
                         "files": {}}


def test_form_of_other_type_is_empty(client: Any) -> None:
    assert client.post("/form", b'{"a": 1}', headers={"Content-Type": "application/json"}).json == {"form": {}, "files": {}}


def test_too_many_form_fields_is_400(client: Any) -> None:
    body = "&".join(f"f{i}=1" for i in range(1001))
    resp = client.post("/form", body, headers={"Content-Type": "application/x-www-form-urlencoded"}, status=400)
    assert "too many form fields" in resp.json["error"]
    still_serves(client)


BINARY = bytes(range(256)) + b"\r\n\r\n--not-the-boundary\r\n\n\r\x00" + bytes(range(255, -1, -1)) + b"\r\n"


def multipart(boundary: str, parts: list[tuple[str, str | None, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, ctype, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_with_files(client: Any) -> None:
    body = multipart("XyZ123", [
        ("title", None, None, "Zoé's photo".encode()),
        ("tag", None, None, b"cats"),
        ("tag", None, None, b"dogs"),
        ("photo", "zoé.bin", "application/octet-stream", BINARY),
        ("notes", "notes.txt", "text/plain", b"line 1\r\nline 2\n"),
        ("empty", "empty.dat", None, b""),
    ])
    resp = client.post("/form", body, headers={"Content-Type": "multipart/form-data; boundary=XyZ123"})
    data = resp.json
    assert data["form"] == {"title": ["Zoé's photo"], "tag": ["cats", "dogs"]}
    photo, = data["files"]["photo"]
    assert photo == {"filename": "zoé.bin", "content_type": "application/octet-stream", "size": len(BINARY),
                     "hex": BINARY.hex(), "stream_hex": BINARY.hex()}
    notes, = data["files"]["notes"]
    assert bytes.fromhex(notes["hex"]) == b"line 1\r\nline 2\n"
    assert notes["content_type"] == "text/plain"
    empty, = data["files"]["empty"]
    assert empty["size"] == 0 and empty["filename"] == "empty.dat"


def test_multipart_quoted_boundary_via_request() -> None:
    body = multipart("a b:c", [("f", "x.png", "image/png", b"\x89PNG\r\n\x1a\n")])
    request = Request(environ_for("POST", body=body, CONTENT_TYPE='multipart/form-data; boundary="a b:c"'))
    upload = request.files["f"]
    assert upload.data == b"\x89PNG\r\n\x1a\n"
    assert upload.stream.read() == b"\x89PNG\r\n\x1a\n"
    assert upload.filename == "x.png" and upload.content_type == "image/png"
    assert len(request.form) == 0


MULTIPART_BAD = [
    ("no-boundary", "multipart/form-data", multipart("B", [("a", None, None, b"1")]), "boundary"),
    ("wrong-boundary", "multipart/form-data; boundary=OTHER", multipart("B", [("a", None, None, b"1")]), "malformed"),
    ("not-multipart-at-all", "multipart/form-data; boundary=B", b"just some text", "malformed"),
]


@pytest.mark.parametrize("ctype, body, message", [c[1:] for c in MULTIPART_BAD], ids=[c[0] for c in MULTIPART_BAD])
def test_multipart_errors(client: Any, ctype: str, body: bytes, message: str) -> None:
    resp = client.post("/form", body, headers={"Content-Type": ctype}, status=400)
    assert message in resp.json["error"]
    still_serves(client)


# -- the body ---------------------------------------------------------------------------------------


def test_body_is_read_once_and_cached(client: Any) -> None:
    data = client.post("/body", b"hello world", headers={"Content-Type": "text/plain; charset=utf-8"}).json
    assert data == {"len": 11, "same": True, "left": 0, "hex": b"hello world".hex(), "content_length": 11,
                    "content_type": "text/plain"}


def test_body_reads_the_stream_only_until_content_length() -> None:
    stream = CountingInput(b"0123456789EXTRA")
    request = Request(environ_for("POST", CONTENT_LENGTH="10", **{"wsgi.input": stream}))
    assert request.body == b"0123456789"
    reads = stream.reads
    assert request.body == b"0123456789"
    assert stream.reads == reads  # cached: no second read
    assert stream.read() == b"EXTRA"  # never read past Content-Length


def test_body_over_limit_is_413_before_reading() -> None:
    app = echo_app(max_body_size=10)
    environ = environ_for("POST", "/body", CONTENT_LENGTH="11", CONTENT_TYPE="text/plain",
                          **{"wsgi.input": ExplodingInput()})
    code, headers, body = call(app, environ)
    assert code == 413
    assert json.loads(body) == {"error": "request body is 11 bytes; the limit is 10"}
    assert call(app, environ_for("POST", "/body", body=b"0123456789", CONTENT_TYPE="text/plain"))[0] == 200


def test_body_over_limit_unit() -> None:
    request = Request(environ_for("POST", CONTENT_LENGTH=str(1 << 30), **{"wsgi.input": ExplodingInput()}),
                      max_body_size=1 << 20)
    with pytest.raises(PayloadTooLarge):
        request.body


def test_body_at_limit_is_fine() -> None:
    app = echo_app(max_body_size=10)
    assert make_client(app).post("/body", b"x" * 10).json["len"] == 10
    resp = make_client(app).post("/body", b"x" * 11, status=413)
    assert resp.json == {"error": "request body is 11 bytes; the limit is 10"}


def test_body_without_content_length_is_empty() -> None:
    environ = environ_for("POST", "/body", **{"wsgi.input": ExplodingInput()})
    environ.pop("CONTENT_LENGTH", None)
    code, _, body = call(echo_app(), environ)
    assert code == 200
    assert json.loads(body)["len"] == 0


def test_body_without_content_length_with_input_terminated_reads_to_limit() -> None:
    app = echo_app(max_body_size=10)
    environ = environ_for("POST", "/body", **{"wsgi.input": io.BytesIO(b"chunked!"), "wsgi.input_terminated": True})
    environ.pop("CONTENT_LENGTH", None)
    code, _, body = call(app, environ)
    assert code == 200 and json.loads(body)["len"] == 8
    environ = environ_for("POST", "/body", **{"wsgi.input": io.BytesIO(b"x" * 11), "wsgi.input_terminated": True})
    environ.pop("CONTENT_LENGTH", None)
    code, _, body = call(app, environ)
    assert code == 413
    assert json.loads(body) == {"error": "request body is over the limit of 10 bytes"}


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "0x10", " 12x", "1" * 30], ids=["word", "negative", "exponent", "hex", "junk", "huge"])
def test_invalid_content_length_is_400(value: str) -> None:
    app = echo_app()
    environ = environ_for("POST", "/body", **{"wsgi.input": ExplodingInput()})
    environ["CONTENT_LENGTH"] = value
    # not through the validator: it refuses such an environ before the app sees it
    code, headers, body = call(app, environ, validate=False)
    assert code == 400
    assert json.loads(body)["error"].startswith("invalid Content-Length header")
    assert call(app, environ_for("GET", "/ok"))[0] == 200


def test_truncated_body_is_400() -> None:
    environ = environ_for("POST", "/body", CONTENT_TYPE="text/plain", **{"wsgi.input": io.BytesIO(b"12345")})
    environ["CONTENT_LENGTH"] = "10"
    code, _, body = call(echo_app(), environ)
    assert code == 400
    assert json.loads(body) == {"error": "request body ended after 5 of 10 bytes"}


def test_body_read_timeout_is_408() -> None:
    class Stalled(io.BytesIO):
        def read(self, *args: Any) -> bytes:  # type: ignore[override]
            raise TimeoutError

    environ = environ_for("POST", "/body", CONTENT_LENGTH="10", **{"wsgi.input": Stalled()})
    code, _, body = call(echo_app(), environ)
    assert code == 408
    assert json.loads(body) == {"error": "timed out reading the request body"}


# -- URL length -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/echo/" + "a" * 200, "/ok?q=" + "b" * 200, "/nowhere/" + "c" * 200],
    ids=["long-path", "long-query", "long-unrouted-path"],
)
def test_414_for_long_urls(url: str) -> None:
    client = make_client(echo_app(max_url_length=100))
    resp = client.get(url, status=414)
    assert resp.json == {"error": "request URL is longer than 100 characters"}
    assert client.get("/echo/" + "a" * 80).json["rest"] == "a" * 80
    still_serves(client)


def test_default_url_limit_is_8k(client: Any) -> None:
    assert client.get("/echo/" + "a" * 8000).status_int == 200
    assert client.get("/echo/" + "a" * 8200, status=414).json["error"].startswith("request URL is longer")


# -- content negotiation ------------------------------------------------------------------------------

ACCEPT = [
    ("exact", "application/json", "application/json", True),
    ("other-type", "text/html", "application/json", False),
    ("any", "*/*", "application/json", True),
    ("main-wildcard", "application/*", "application/json", True),
    ("other-main-wildcard", "text/*", "application/json", False),
    ("list", "text/html, application/json", "application/json", True),
    ("browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/json", True),
    ("q-zero-exact", "application/json;q=0", "application/json", False),
    ("q-zero-exact-beats-any", "application/json;q=0, */*", "application/json", False),
    ("specific-beats-q-zero-any", "*/*;q=0, application/json", "application/json", True),
    ("specific-beats-q-zero-wildcard", "application/*;q=0, application/json;q=0.5", "application/json", True),
    ("wildcard-q-zero", "application/*;q=0, */*", "application/json", False),
    ("any-q-zero-only", "text/html, */*;q=0", "application/json", False),
    ("low-q", "application/json;q=0.001", "application/json", True),
    ("q-0.000", "application/json;q=0.000", "application/json", False),
    ("bad-q", "application/json;q=abc", "application/json", False),
    ("case-insensitive", "Application/JSON", "application/json", True),
    ("spaces", " text/plain ;q=1 , application/json ; q=0.5", "application/json", True),
    ("html-route", "text/html", "text/html", True),
    ("html-route-json-accept", "application/json", "text/html", False),
    ("param-on-range", "application/json; charset=utf-8", "application/json", True),
    ("empty-items", ",,application/json,", "application/json", True),
]


@pytest.mark.parametrize("accept, media_type, expected", [c[1:] for c in ACCEPT], ids=[c[0] for c in ACCEPT])
def test_media_type_accepted(accept: str, media_type: str, expected: bool) -> None:
    assert media_type_accepted(accept, media_type) is expected


def test_accepts_without_header_admits_everything() -> None:
    environ = environ_for()
    environ.pop("HTTP_ACCEPT", None)
    assert Request(environ).accepts("application/json")
    assert Request(environ).accepts("image/png")
    environ["HTTP_ACCEPT"] = "image/png"
    assert not Request(environ).accepts("application/json")


def test_request_repr_and_context() -> None:
    request = Request(environ_for("post", "/x"))
    assert request.method == "POST"
    assert repr(request) == "<Request POST '/x'>"
    assert request.context == {} and request.params == {} and request.route is None


def test_multipart_field_charsets(client: Any) -> None:
    body = multipart("B", [("latin", None, "text/plain; charset=latin-1", "café".encode("latin-1")),
                           ("utf8", None, "text/plain; charset=utf-8", "café".encode()),
                           ("bad_bytes", None, None, b"caf\xe9")])
    resp = client.post("/form", body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert resp.json["form"] == {"latin": ["café"], "utf8": ["café"], "bad_bytes": ["caf\ufffd"]}


def test_multipart_unknown_charset_is_400(client: Any) -> None:
    body = multipart("B", [("f", None, "text/plain; charset=no-such-charset", b"x")])
    resp = client.post("/form", body, headers={"Content-Type": "multipart/form-data; boundary=B"}, status=400)
    assert resp.json == {"error": "form field 'f' names an unknown charset 'no-such-charset'"}
    still_serves(client)


def test_multipart_part_without_name_is_skipped(client: Any) -> None:
    body = (b"--B\r\nContent-Disposition: form-data\r\n\r\nnameless\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--B--\r\n")
    resp = client.post("/form", body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert resp.json == {"form": {"a": ["1"]}, "files": {}}


def test_json_is_parsed_once(client: Any) -> None:
    request = Request(environ_for("POST", body=b'{"a": [1]}', CONTENT_TYPE="application/json"))
    assert request.json is request.json


def test_form_is_parsed_once_and_the_body_read_once() -> None:
    stream = CountingInput(b"a=1&b=2")
    request = Request(environ_for("PUT", CONTENT_LENGTH="7", CONTENT_TYPE="application/x-www-form-urlencoded",
                                  **{"wsgi.input": stream}))
    assert request.form is request.form
    reads = stream.reads
    assert request.body == b"a=1&b=2" and request.form.to_dict() == {"a": "1", "b": "2"}
    assert stream.reads == reads


def test_body_json_form_and_length_can_be_assigned_as_lazy_attributes_could() -> None:
    """A hook may replace what the request carries; what is assigned is what is read."""
    request = Request(environ_for("POST", body=b'{"a": 1}', CONTENT_TYPE="application/json"))
    request.body = b'{"b": 2}'
    assert request.json == {"b": 2}  # parsed from the assigned body
    request.json = {"c": 3}
    request.form = MultiDict([("d", "4")])
    request.content_length = 8
    assert (request.json, request.form.to_dict(), request.content_length) == ({"c": 3}, {"d": "4"}, 8)


@pytest.mark.parametrize("method", ["get", "Post", "PATCH", "BREW"])
def test_the_method_is_upper_case(method: str) -> None:
    assert Request(environ_for(method)).method == method.upper()


@pytest.mark.parametrize(
    "text",
    [
        "", "a=1", "a=1&b=2&a=3", "a", "a=", "=b", "&&a=1&&", "a=1=2", "a+b=c+d", "%41%42=%e4%b8%ad",
        "a=%zz&b=%e4", "a=%2B+%2b", "+=+", "a=%", "k=%FF%FE", "é=ü", "a=1;b=2", "a=%25%32%35",
    ],
)
def test_split_pairs_equals_parse_qsl(text: str) -> None:
    """restkit's query and form parser gives what the standard library's does, faster."""
    from urllib.parse import parse_qsl

    from restkit.forms import split_pairs

    assert split_pairs(text) == parse_qsl(text, keep_blank_values=True, errors="replace")
