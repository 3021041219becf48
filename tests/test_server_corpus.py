"""gunicorn's request corpus against restkit.server.

gunicorn's source distribution carries ``tests/requests/valid/*.http`` (requests
its parser accepts, each with a ``.py`` of what it must parse to) and
``tests/requests/invalid/*.http`` (requests it refuses).  It is the largest
public collection of edge cases for an HTTP/1.1 request parser, so restkit
runs every file through a live server:

* valid: the app is called and sees the expected method, path, query,
  headers and body (one call per expected request, pipelined ones included);
* invalid: the app is never called; the server answers 4xx/5xx or closes.

The two parsers disagree where restkit's contract (notes/server-spec.md)
chose differently; each such file is listed in :data:`DIFFERENCES` with the
reason and what restkit does instead.  The corpus version is pinned, so a new
gunicorn release cannot change the test set under us.

The corpus is downloaded once (``pip download`` of the sdist) into
``~/.cache/restkit-test-corpus``; without network the tests skip, which
``RESTKIT_REQUIRE_ALL=1`` (CI) turns into a failure.
"""

from __future__ import annotations

import builtins
import functools
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import pytest

pytest.importorskip("h11")

from tests.http_client import Probe, Response, ResponseReader, connect

CORPUS_VERSION = "27.0.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "restkit-test-corpus"
# the loader adds this Host to HTTP/1.1 requests that have none: gunicorn's parser does not
# require Host, restkit's contract does (RFC 9112 section 3.2), and without it every such
# file would be refused for that one reason instead of being tested for its own
INJECTED_HOST = "corpus.test"


# -- obtaining the corpus ------------------------------------------------------------------------------------


@functools.cache
def corpus_dir() -> Path | str:
    """The extracted ``tests/requests`` folder, or the reason it could not be had."""
    target = CACHE / f"gunicorn-{CORPUS_VERSION}" / "requests"
    if (target / "valid").is_dir() and (target / "invalid").is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"gunicorn-{CORPUS_VERSION}.tar.gz"
    if not sdist.exists():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"gunicorn=={CORPUS_VERSION}", "-d", str(CACHE)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"pip download of gunicorn {CORPUS_VERSION} failed: {exc}"
        if done.returncode != 0 or not sdist.exists():
            return f"pip download of gunicorn {CORPUS_VERSION} failed: {done.stderr.strip()[-500:]}"
    prefix = f"gunicorn-{CORPUS_VERSION}/tests/requests/"
    # extract to a fresh folder, then move it into place: a run killed half-way leaves no partial corpus
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch, tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers()
                   if m.name.startswith(prefix) and m.isfile() and m.name.endswith((".http", ".py"))]
        if not members:
            return f"{sdist} has no {prefix}"
        for member in members:
            member.name = member.name[len(prefix):]
            archive.extract(member, Path(scratch) / "requests", filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(Path(scratch) / "requests", target)
        except OSError:
            if not (target / "valid").is_dir():  # not a parallel run that got there first
                raise
    return target


@pytest.fixture(scope="session")
def gunicorn_requests() -> Path:
    """gunicorn's ``tests/requests`` folder (downloaded once), or a skip saying why not."""
    found = corpus_dir()
    if isinstance(found, str):
        pytest.skip(found)
    return found


def case_names(kind: str) -> list[str]:
    found = corpus_dir()
    if isinstance(found, str):
        return ["corpus-unavailable"]  # the fixture skips it with the reason
    return sorted(path.stem for path in (found / kind).glob("*.http"))


# -- reading gunicorn's files ----------------------------------------------------------------------------------

# The .http files are text: their own line breaks are layout only, and the bytes on the
# wire are written as escapes: \r\n, \0, \n, \t and \xHH.
_ESCAPE = re.compile(rb"\\(r\\n|0|n|t|x[0-9A-Fa-f]{2})")
_ESCAPES = {b"r\\n": b"\r\n", b"0": b"\0", b"n": b"\n", b"t": b"\t"}


def decode_http(text: bytes) -> bytes:
    data = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1)) or bytes([int(m.group(1)[1:], 16)]),
                       text.replace(b"\n", b""))
    if b"\\" in data:
        raise ValueError("an escape this loader does not know")
    return data


def split_uri(raw: str) -> dict[str, str]:
    """Path, query and fragment of a request target, the way the .py files' ``uri()`` gives them."""
    if raw.startswith("/"):
        rest, _, fragment = raw.partition("#")
        path, _, query = rest.partition("?")
    elif "://" in raw:
        parts = urlsplit(raw)
        path, query, fragment = parts.path, parts.query, parts.fragment
    else:  # "*" or an authority
        path, query, fragment = raw, "", ""
    return {"raw": raw, "path": path, "query": query, "fragment": fragment}


class _StubConfig:
    """Stands in for gunicorn.config.Config: records the settings a case asks for."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        self.settings[name] = value


def _stub_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    # The .py files import gunicorn's Config and error classes; restkit needs neither,
    # and gunicorn need not be installed to read them.
    if name == "gunicorn" or name.startswith("gunicorn."):
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr: _StubConfig if attr == "Config" else attr  # type: ignore[method-assign]
        return module
    return builtins.__import__(name, globals, locals, fromlist, level)


def load_expectation(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"uri": split_uri, "__builtins__": {**vars(builtins), "__import__": _stub_import}}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return namespace


def has_host(data: bytes) -> bool:
    return re.search(rb"(?im)^host:", data) is not None


def add_host(data: bytes, request_line: bytes, start: int = 0) -> tuple[bytes, int]:
    """Insert a Host header after ``request_line`` (found from ``start``); return the data and where it ends."""
    at = data.index(request_line, start) + len(request_line)
    return data[:at] + b"Host: " + INJECTED_HOST.encode() + b"\r\n" + data[at:], at


# -- what restkit does differently, on purpose -------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A corpus file restkit answers differently from gunicorn's default parser.

    ``refuse``: the status restkit answers instead of serving the request (valid files).
    ``accept``: restkit serves a file gunicorn refuses (invalid files).
    ``either``: the contract does not settle it; both answers are fine as long as ``why`` holds.
    """

    kind: str
    why: str
    status: int | None = None


# Grouped by reason: (files, what restkit does and why).
_DIFFERENCES: list[tuple[tuple[str, ...], Difference]] = [
    # -- valid for gunicorn, refused by restkit
    (("valid/024", "valid/026"),
     Difference("refuse", "an 8209-byte header line: over restkit's 8192 (gunicorn's cases raise its limit)", 431)),
    (("valid/025", "valid/025_line", "valid/029", "valid/030", "valid/rfc9112_smuggle_gzip_chunked_01",
      "valid/rfc9112_smuggle_te_identity_chunked_01"),
     Difference("refuse", "Transfer-Encoding with gzip or identity before chunked: only exactly 'chunked' is "
                "served", 501)),
    (("valid/028",),
     Difference("refuse", "whitespace before the colon (gunicorn's case turns on strip_header_spaces)", 400)),
    (("valid/031compat", "valid/031compat2"),
     Difference("refuse", "a lowercase method (gunicorn's cases permit unconventional methods)", 400)),
    (("valid/compat_obs_fold", "valid/compat_obs_fold_huge"),
     Difference("refuse", "obs-fold (gunicorn's cases turn on permit_obsolete_folding)", 400)),
    (("valid/pp_01", "valid/pp_02", "valid/pp_04", "valid/pp_05"),
     Difference("refuse", "the PROXY protocol (v1 line, v2 binary header): restkit speaks none, so it is no "
                "request line", 400)),
    (("valid/rfc9112_target_authority_connect_01", "valid/rfc9112_target_authority_ipv6_01"),
     Difference("refuse", "CONNECT's authority-form: restkit is no proxy", 400)),
    (("valid/099",),
     Difference("refuse", "Content-Length 17914 but 8599 bytes, then EOF: gunicorn's parser hands over what came; "
                "restkit answers 400 to a body cut short", 400)),
    # -- valid for gunicorn, left open by the contract
    (("valid/005",),
     Difference("either", "a '#fragment' in the target (RFC 9112 has none there): refused, or served with the "
                "fragment stripped or left in QUERY_STRING")),
    (("valid/rfc9112_target_absolute_userinfo_01",),
     Difference("either", "userinfo in an absolute-form target (RFC 9110 4.2.4: treat as an error): refused, or "
                "served with HTTP_HOST = host:port, never the credentials")),
    (("valid/rfc9112_target_asterisk_options_01",),
     Difference("either", "OPTIONS * may be answered by the server itself")),
    # -- invalid for gunicorn, served by restkit
    (("invalid/006",),
     Difference("accept", "a 4112-byte request line: over gunicorn's 4094, within restkit's 8192+64")),
    (("invalid/008", "invalid/017", "invalid/limit_header_default_01"),
     Difference("accept", "an 8191- or 8192-byte header line: over gunicorn's 8190, within restkit's 8192")),
    (("invalid/010", "invalid/011", "invalid/012"),
     Difference("accept", "refused by gunicorn only under the lowered limits its cases set")),
    (("invalid/019",),
     Difference("accept", "conflicting X-Forwarded-Proto/-Ssl: restkit does not read them (gunicorn refuses "
                "only with forwarded_allow_ips set)")),
    (("invalid/040", "invalid/chunked_07"),
     Difference("accept", "headers with '_' are dropped, not refused (contract; gunicorn's cases set "
                "header_map=refuse)")),
    (("invalid/rfc9112_leading_crlf_02",),
     Difference("accept", "up to 2 empty lines before the request line are ignored (contract)")),
    (("invalid/rfc9112_target_non_ascii_01", "invalid/rfc9112_target_non_ascii_02"),
     Difference("accept", "raw non-ASCII bytes in the path are served (the contract refuses only CTL, space and "
                "DEL in the target)")),
    # -- invalid for gunicorn, left open by the contract
    (("invalid/041",),
     Difference("either", "two Content-Type lines: the contract joins repeated headers and names only Host and "
                "Content-Length as errors")),
    (("invalid/rfc9110_trailer_forbidden_cl_01", "invalid/rfc9110_trailer_forbidden_host_01",
      "invalid/rfc9110_trailer_forbidden_te_01"),
     Difference("either", "Content-Length, Host or Transfer-Encoding in a trailer: refused, or the trailer "
                "dropped (WSGI has no trailers) and what the app sees unchanged")),
]
DIFFERENCES: dict[str, Difference] = {name: difference for names, difference in _DIFFERENCES for name in names}


# -- running a case -----------------------------------------------------------------------------------------------


@pytest.fixture
def probe_port(live_server: Any) -> tuple[Probe, int]:
    probe = Probe()
    srv = live_server(probe, timeout=5.0)
    return probe, srv.port


# How the bytes go out: in one piece, or one byte per send (with Nagle off, so mostly one byte per
# segment), as gunicorn's own runs feed its parser: a parser that assumes a line, a header or a chunk
# size arrives whole in one read fails the second way.
SENDING = ["whole", "bytewise"]


def send(sock: socket.socket, data: bytes, sending: str) -> None:
    if sending == "whole":
        sock.sendall(data)
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before the end: the answer is already on its way


def exchange(port: int, data: bytes, methods: list[str], *, half_close: bool, sending: str) -> list[Response]:
    """Send ``data``; read up to one response per method, stopping at the first that closes or breaks."""
    with connect(port) as sock:
        send(sock, data, sending)
        if half_close:
            try:
                sock.shutdown(socket.SHUT_WR)  # everything is sent: the parser may see the end, as gunicorn's does
            except OSError:
                pass  # already closed by the server
        reader = ResponseReader(sock)
        responses = []
        for method in methods:
            response = reader.read(method)
            if response.status is None and response.error is None:
                break  # closed with nothing more
            responses.append(response)
            if not response.complete or response.error or response.closes:
                break
        return responses


def expected_environ(request: dict[str, Any]) -> dict[str, str]:
    """The environ keys and values gunicorn's expected headers become under PEP 3333."""
    joined: dict[str, list[str]] = {}
    for name, value in request["headers"]:
        if "_" in name:
            continue  # restkit drops headers with "_" (contract; gunicorn's 040_compat keeps them)
        if name == "TRANSFER-ENCODING":
            continue  # framing, consumed by the server
        key = name.replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        joined.setdefault(key, []).append(value)
    return {key: ("; " if key == "HTTP_COOKIE" else ", ").join(values) for key, values in joined.items()}


def check_seen(seen: Any, request: dict[str, Any], name: str) -> None:
    uri = request["uri"]
    assert seen.method == request["method"]
    if uri["raw"].startswith("/"):
        path = uri["path"]
    elif "://" in uri["raw"]:
        path = urlsplit(uri["raw"]).path or "/"
    else:
        path = uri["path"]
    assert seen.path == unquote_to_bytes(path).decode("latin-1"), (seen.path, uri)
    queries = {uri["query"]}
    if uri["fragment"]:
        queries.add(f"{uri['query']}#{uri['fragment']}")  # see DIFFERENCES["valid/005"]
    assert seen.query in queries, (seen.query, uri)
    assert seen.protocol == "HTTP/%d.%d" % request["version"]
    expected = expected_environ(request)
    if "://" in uri["raw"]:
        expected["HTTP_HOST"] = urlsplit(uri["raw"]).netloc.rpartition("@")[2]  # the target's authority wins
    actual = dict(seen.headers)
    actual.pop("HTTP_TRANSFER_ENCODING", None)  # framing: whether the app sees it is not the question here
    if any(n == "TRANSFER-ENCODING" for n, _ in request["headers"]):
        # a chunked body needs no CONTENT_LENGTH; if the server gives one, it must be the truth
        length = actual.pop("CONTENT_LENGTH", "")
        assert not length or int(length) == len(seen.body), length
    assert actual == expected, name
    body = request["body"]
    assert seen.body == (body.encode() if isinstance(body, str) else body)


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # valid/031's "-BLARGH" is a legal token
@pytest.mark.parametrize("sending", SENDING)
@pytest.mark.parametrize("name", case_names("valid"))
def test_valid(gunicorn_requests: Path, probe_port: tuple[Probe, int], name: str, sending: str) -> None:
    probe, port = probe_port
    data = decode_http((gunicorn_requests / "valid" / f"{name}.http").read_bytes())
    spec = load_expectation(gunicorn_requests / "valid" / f"{name}.py")
    requests = spec["request"] if isinstance(spec["request"], list) else [spec["request"]]
    position = 0
    for request in requests:
        if request["version"] == (1, 1) and not any(n == "HOST" for n, _ in request["headers"]):
            line = f"{request['method']} {request['uri']['raw']} HTTP/1.1\r\n".encode("latin-1")
            if line in data[position:]:
                data, position = add_host(data, line, position)
                request["headers"] = [*request["headers"], ("HOST", INJECTED_HOST)]
    methods = ["HEAD" if r["method"] == "HEAD" else "GET" for r in requests]
    difference = DIFFERENCES.get(f"valid/{name}")
    # a refused request is sent whole, then EOF (099's body is short: the server must not wait for the rest)
    responses = exchange(port, data, methods, half_close=difference is not None and difference.kind == "refuse",
                         sending=sending)
    for response in responses:
        assert response.error is None, response.describe()
    if difference is not None and difference.kind == "refuse":
        assert responses and responses[0].status == difference.status, (difference.why, responses[0].describe()
                                                                         if responses else "closed")
        assert probe.calls == []
        return
    if difference is not None and difference.kind == "either" and responses and responses[0].status == 400:
        assert probe.calls == [], difference.why
        return
    if name == "rfc9112_target_asterisk_options_01" and not probe.calls:
        assert responses and 200 <= (responses[0].status or 0) < 300, responses[0].describe()
        return
    assert [r.status for r in responses] == [200] * len(requests), [r.describe() for r in responses]
    assert len(probe.calls) == len(requests)
    for seen, request in zip(probe.calls, requests):
        check_seen(seen, request, name)


@pytest.mark.parametrize("sending", SENDING)
@pytest.mark.parametrize("name", case_names("invalid"))
def test_invalid(gunicorn_requests: Path, probe_port: tuple[Probe, int], name: str, sending: str) -> None:
    probe, port = probe_port
    data = decode_http((gunicorn_requests / "invalid" / f"{name}.http").read_bytes())
    first_line = data.split(b"\n", 1)[0]
    if first_line.endswith(b" HTTP/1.1\r") and not has_host(data):
        data, _ = add_host(data, first_line + b"\n")
    responses = exchange(port, data, ["GET"] * 3, half_close=True, sending=sending)
    for response in responses:
        assert response.error is None, response.describe()
    difference = DIFFERENCES.get(f"invalid/{name}")
    if difference is not None and (difference.kind == "accept" or
                                   (difference.kind == "either" and responses and responses[0].status == 200)):
        assert responses and responses[0].status == 200, (difference.why, [r.describe() for r in responses])
        assert probe.calls, difference.why
        if "trailer" in name:
            # the trailer must not have changed what the app sees
            assert probe.calls[0].body == b"hello"
            assert probe.calls[0].headers.get("HTTP_HOST") == "example.com"
            assert "CONTENT_LENGTH" not in probe.calls[0].headers or probe.calls[0].headers["CONTENT_LENGTH"] == "5"
        return
    assert probe.calls == [], f"the app was called for {name}: {[c.path for c in probe.calls]}"
    for response in responses:
        assert response.status is not None and response.status >= 400, response.describe()


def test_every_listed_difference_is_a_corpus_file(gunicorn_requests: Path) -> None:
    # the list must not keep entries for files that are gone (or misspelt, and so never applied)
    assert [name for name in DIFFERENCES if not (gunicorn_requests / f"{name}.http").is_file()] == []
