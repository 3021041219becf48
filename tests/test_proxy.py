"""restkit.proxy: a trusted proxy's forwarding headers, and nobody else's."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import pytest

from restkit import App, Request
from restkit.paging import Paging
from restkit.proxy import ORIGINAL_KEY, ProxyHeaders
from restkit.ratelimit import RateLimit
from tests.conftest import LiveServer, wsgi_call

TRUSTED = ["127.0.0.1", "10.0.0.0/8", "2001:db8:1::/48"]
ITEMS = Paging(default_limit=2)


def make_app(*features: Any, trusted: list[str] = TRUSTED, **options: Any) -> App:
    """An app that says what it sees of the client, behind ``ProxyHeaders(trusted, **options)``."""
    app = App()
    app.use(ProxyHeaders(trusted, **options))
    for feature in features:
        app.use(feature)

    @app.get("/whoami")
    def whoami(request: Request) -> dict[str, Any]:
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host, "base_url": request.base_url,
                "orig": request.environ.get(ORIGINAL_KEY)}

    @app.get("/items", paging=ITEMS)
    def items(request: Request) -> Any:
        page = ITEMS.read(request)
        found, total = page.apply([{"id": n} for n in range(1, 6)])
        return page.response(request, found, total)

    @app.post("/items", name="item")
    def create(request: Request) -> Any:
        return {"id": 7}, 201, {"Location": request.url_for("show_item", _external=True, item=7)}

    @app.get("/items/<int:item>", name="show_item")
    def show(request: Request, item: int) -> dict[str, int]:
        return {"id": item}

    return app


def whoami(app: App, peer: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, _, body = wsgi_call(app, "GET", "/whoami", headers, REMOTE_ADDR=peer, HTTP_HOST="internal:8000")
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


XFF = "X-Forwarded-For"


def seen(addr: str, scheme: str = "http", host: str = "internal:8000") -> tuple[str, str, str]:
    return addr, scheme, host


# (peer, headers, options, what the app sees: address, scheme, host)
X_FORWARDED = [
    ("untrusted-peer-ignored", "203.0.113.9", {XFF: "198.51.100.7", "X-Forwarded-Proto": "https",
                                               "X-Forwarded-Host": "api.example"}, {}, seen("203.0.113.9")),
    ("no-headers", "127.0.0.1", {}, {}, seen("127.0.0.1")),
    ("one-entry", "127.0.0.1", {XFF: "198.51.100.7"}, {}, seen("198.51.100.7")),
    ("spoofed-leftmost", "127.0.0.1", {XFF: "6.6.6.6, 198.51.100.7"}, {}, seen("198.51.100.7")),
    ("spoofed-trusted-leftmost", "127.0.0.1", {XFF: "10.0.0.1, 198.51.100.7"}, {"hops": 3}, seen("198.51.100.7")),
    ("two-proxies", "10.0.0.2", {XFF: "6.6.6.6, 198.51.100.7, 10.0.0.9"}, {"hops": 2}, seen("198.51.100.7")),
    ("hops-bound-the-walk", "10.0.0.2", {XFF: "198.51.100.7, 10.0.0.9"}, {}, seen("10.0.0.9")),
    ("hops-more-than-proxies", "127.0.0.1", {XFF: "6.6.6.6, 198.51.100.7"}, {"hops": 5}, seen("198.51.100.7")),
    ("all-trusted", "10.0.0.2", {XFF: "10.0.0.5, 10.0.0.9"}, {"hops": 5}, seen("10.0.0.5")),
    ("comma-joined-lines", "127.0.0.1", {XFF: "6.6.6.6, 198.51.100.7,198.51.100.8"}, {}, seen("198.51.100.8")),
    ("ipv4-with-port", "127.0.0.1", {XFF: "198.51.100.7:5555"}, {}, seen("198.51.100.7")),
    ("ipv6-bracketed-with-port", "127.0.0.1", {XFF: "[2001:db8::7]:443"}, {}, seen("2001:db8::7")),
    ("ipv6-normalised", "127.0.0.1", {XFF: "2001:DB8:0::0007"}, {}, seen("2001:db8::7")),
    ("ipv4-mapped", "127.0.0.1", {XFF: "::ffff:198.51.100.7"}, {}, seen("198.51.100.7")),
    ("ipv6-cidr-peer", "2001:db8:1::5", {XFF: "198.51.100.7"}, {}, seen("198.51.100.7")),
    ("ipv6-peer-outside", "2001:db8:2::5", {XFF: "198.51.100.7"}, {}, seen("2001:db8:2::5")),
    ("ipv4-mapped-peer", "::ffff:127.0.0.1", {XFF: "198.51.100.7"}, {}, seen("198.51.100.7")),
    ("ipv4-cidr-peer", "10.200.3.4", {XFF: "198.51.100.7"}, {}, seen("198.51.100.7")),
    ("proto-https", "127.0.0.1", {"X-Forwarded-Proto": "https"}, {}, seen("127.0.0.1", "https")),
    ("proto-case", "127.0.0.1", {"X-Forwarded-Proto": " HTTPS "}, {}, seen("127.0.0.1", "https")),
    ("proto-rightmost", "127.0.0.1", {XFF: "198.51.100.7", "X-Forwarded-Proto": "http, https"}, {},
     seen("198.51.100.7", "https")),
    ("proto-of-the-client-hop", "10.0.0.2", {XFF: "198.51.100.7, 10.0.0.9", "X-Forwarded-Proto": "https, http"},
     {"hops": 2}, seen("198.51.100.7", "https")),
    ("proto-set-not-appended", "10.0.0.2", {XFF: "198.51.100.7, 10.0.0.9", "X-Forwarded-Proto": "https"},
     {"hops": 2}, seen("198.51.100.7", "https")),
    ("host", "127.0.0.1", {"X-Forwarded-Host": "api.example"}, {}, seen("127.0.0.1", host="api.example")),
    ("host-with-port", "127.0.0.1", {"X-Forwarded-Host": "api.example:8443"}, {}, seen("127.0.0.1", host="api.example:8443")),
    ("host-ipv6", "127.0.0.1", {"X-Forwarded-Host": "[2001:db8::1]:8080"}, {}, seen("127.0.0.1", host="[2001:db8::1]:8080")),
    ("forwarded-ignored-by-default", "127.0.0.1", {"Forwarded": "for=198.51.100.7;proto=https"}, {}, seen("127.0.0.1")),
]

FORWARDED = [
    ("for", "127.0.0.1", {"Forwarded": "for=198.51.100.7"}, seen("198.51.100.7")),
    ("quoted-ipv6-port-proto-host", "127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:4711";proto=https;host=api.example'},
     seen("2001:db8::1", "https", "api.example")),
    ("names-case-insensitive", "127.0.0.1", {"Forwarded": 'For="198.51.100.7:80";PROTO=https'}, seen("198.51.100.7", "https")),
    ("spoofed-leftmost", "127.0.0.1", {"Forwarded": "for=6.6.6.6;host=evil.example, for=198.51.100.7"}, seen("198.51.100.7")),
    ("unknown", "127.0.0.1", {"Forwarded": "for=unknown;proto=https"}, seen("127.0.0.1", "https")),
    ("obfuscated", "127.0.0.1", {"Forwarded": "for=_hidden;proto=https"}, seen("127.0.0.1", "https")),
    ("obfuscated-port", "127.0.0.1", {"Forwarded": 'for="198.51.100.7:_p1"'}, seen("198.51.100.7")),
    ("client-unbalanced-quote", "127.0.0.1", {"Forwarded": 'for="6.6.6.6, for=198.51.100.7'}, seen("198.51.100.7")),
    ("escaped-quoted-host", "127.0.0.1", {"Forwarded": r'for=198.51.100.7;host="api\.example"'},
     seen("198.51.100.7", host="api.example")),
    ("empty-pairs", "127.0.0.1", {"Forwarded": "for=198.51.100.7;;proto=https;"}, seen("198.51.100.7", "https")),
    ("duplicate-parameter", "127.0.0.1", {"Forwarded": "for=198.51.100.7;for=6.6.6.6"}, seen("127.0.0.1")),
    ("garbage", "127.0.0.1", {"Forwarded": "nonsense"}, seen("127.0.0.1")),
    ("x-forwarded-ignored", "127.0.0.1", {XFF: "6.6.6.6", "Forwarded": "for=198.51.100.7"}, seen("198.51.100.7")),
    ("untrusted-peer-ignored", "203.0.113.9", {"Forwarded": "for=198.51.100.7;proto=https"}, seen("203.0.113.9")),
]


@pytest.mark.parametrize("peer, headers, options, expected", [case[1:] for case in X_FORWARDED],
                         ids=[case[0] for case in X_FORWARDED])
def test_x_forwarded(peer: str, headers: dict[str, str], options: dict[str, Any], expected: tuple[str, str, str]) -> None:
    got = whoami(make_app(**options), peer, headers)
    assert (got["addr"], got["scheme"], got["host"]) == expected


@pytest.mark.parametrize("peer, headers, expected", [case[1:] for case in FORWARDED], ids=[case[0] for case in FORWARDED])
def test_forwarded(peer: str, headers: dict[str, str], expected: tuple[str, str, str]) -> None:
    got = whoami(make_app(headers="forwarded"), peer, headers)
    assert (got["addr"], got["scheme"], got["host"]) == expected


def test_two_forwarded_hops_take_scheme_and_host_from_the_client_facing_one() -> None:
    header = "for=198.51.100.7;proto=https;host=api.example, for=10.0.0.9;proto=http;host=internal.lb"
    got = whoami(make_app(headers="forwarded", hops=2), "10.0.0.2", {"Forwarded": header})
    assert (got["addr"], got["scheme"], got["host"], got["base_url"]) == ("198.51.100.7", "https", "api.example",
                                                                           "https://api.example")


# Values a client (or a broken proxy) may send: never a 400 or a 500; the unusable value is ignored.
BAD = [
    ("garbage", {XFF: "garbage"}),
    ("unknown", {XFF: "unknown"}),
    ("obfuscated", {XFF: "_hidden"}),
    ("empty-entry", {XFF: "198.51.100.7, "}),
    ("not-an-address", {XFF: "999.1.1.1"}),
    ("port-too-long", {XFF: "198.51.100.7:123456"}),
    ("unclosed-bracket", {XFF: "[2001:db8::1"}),
    ("latin-1", {XFF: "\xe9\xe9"}),
    ("proto-ftp", {"X-Forwarded-Proto": "ftp"}),
    ("proto-empty", {"X-Forwarded-Proto": ""}),
    ("host-with-path", {"X-Forwarded-Host": "evil.example/x"}),
    ("host-with-userinfo", {"X-Forwarded-Host": "user@evil.example"}),
    ("host-with-space", {"X-Forwarded-Host": "a b"}),
    ("host-port-too-large", {"X-Forwarded-Host": "api.example:99999"}),
    ("host-empty", {"X-Forwarded-Host": ""}),
]


@pytest.mark.parametrize("headers", [case[1] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_values_are_ignored_and_the_app_serves_on(headers: dict[str, str]) -> None:
    app = make_app()
    status, _, body = wsgi_call(app, "GET", "/whoami", headers, REMOTE_ADDR="127.0.0.1", HTTP_HOST="internal:8000")
    got = json.loads(body)
    assert status == 200 and (got["addr"], got["scheme"], got["host"]) == seen("127.0.0.1")
    assert whoami(app, "127.0.0.1", {XFF: "198.51.100.7"})["addr"] == "198.51.100.7"  # and the next request is fine


def test_a_malformed_entry_stops_the_walk_at_the_last_good_address() -> None:
    got = whoami(make_app(hops=3), "10.0.0.2", {XFF: "198.51.100.7, junk, 10.0.0.9"})
    assert got["addr"] == "10.0.0.9"


def test_the_originals_are_kept() -> None:
    got = whoami(make_app(), "127.0.0.1", {XFF: "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"})
    assert got["orig"] == {"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "HTTP_HOST": "internal:8000",
                           "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}
    assert whoami(make_app(), "203.0.113.9", {XFF: "198.51.100.7"})["orig"] is None  # not a trusted peer: untouched


def test_https_at_the_proxy_makes_links_and_locations_https() -> None:
    app = make_app()
    headers = {XFF: "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    got = whoami(app, "127.0.0.1", headers)
    assert got["base_url"] == "https://api.example"
    status, answer, _ = wsgi_call(app, "GET", "/items", headers, REMOTE_ADDR="127.0.0.1", HTTP_HOST="internal:8000")
    assert status == 200 and answer["Link"].startswith("<https://api.example/items?limit=2&offset=0>")
    assert "internal" not in answer["Link"]
    status, answer, _ = wsgi_call(app, "POST", "/items", headers, REMOTE_ADDR="127.0.0.1", HTTP_HOST="internal:8000")
    assert status == 201 and answer["Location"] == "https://api.example/items/7"


def test_a_forwarded_host_without_a_port_takes_the_schemes() -> None:
    app = make_app()
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    status, _, body = wsgi_call(app, "GET", "/whoami", headers, REMOTE_ADDR="127.0.0.1", HTTP_HOST="")
    assert status == 200 and json.loads(body)["base_url"] == "https://api.example"


def test_the_rate_limit_keys_on_the_real_client() -> None:
    app = make_app(RateLimit(2))
    via_proxy: Callable[[str], int] = lambda client: wsgi_call(
        app, "GET", "/whoami", {XFF: client}, REMOTE_ADDR="127.0.0.1")[0]
    assert [via_proxy("198.51.100.7") for _ in range(3)] == [200, 200, 429]
    assert via_proxy("198.51.100.8") == 200  # another client behind the same proxy
    assert wsgi_call(app, "GET", "/nowhere", {XFF: "198.51.100.9"}, REMOTE_ADDR="127.0.0.1")[0] == 404  # 404s count too
    assert wsgi_call(app, "GET", "/nowhere", {XFF: "198.51.100.9"}, REMOTE_ADDR="127.0.0.1")[0] == 404
    assert via_proxy("198.51.100.9") == 429
    # an untrusted peer naming a fresh address is counted as itself
    spoof = [wsgi_call(app, "GET", "/whoami", {XFF: f"192.0.2.{n}"}, REMOTE_ADDR="203.0.113.9")[0] for n in range(3)]
    assert spoof == [200, 200, 429]


@pytest.mark.parametrize(
    "trusted, options, message",
    [
        (["10.0.0.1/8"], {}, "has host bits set"),
        (["proxy.internal"], {}, "'proxy.internal' is not an address or a network"),
        ([], {}, "no trusted proxy"),
        (" , ", {}, "no trusted proxy"),
        (["127.0.0.1"], {"hops": 0}, "hops must be at least 1"),
        (["127.0.0.1"], {"headers": "both"}, "headers must be 'x-forwarded' or 'forwarded'"),
    ],
    ids=["host-bits", "a-name", "none", "blank-string", "no-hops", "unknown-style"],
)
def test_mistakes_fail_when_the_feature_is_made(trusted: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProxyHeaders(trusted, **options)


def test_trusted_as_a_comma_separated_string() -> None:
    proxy = ProxyHeaders("127.0.0.1, [::1], 10.0.0.0/8")
    assert repr(proxy) == "ProxyHeaders(['127.0.0.1', '::1', '10.0.0.0/8'], hops=1, headers='x-forwarded')"
    assert [proxy.trusts(a) for a in ("127.0.0.1", "::1", "10.9.8.7", "::ffff:10.0.0.1", "11.0.0.1", "nonsense")] == [
        True, True, True, True, False, False]


def get_from(source: str, port: int, headers: dict[str, str]) -> dict[str, Any]:
    """GET /whoami on 127.0.0.1:port from the loopback address ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/whoami", headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())  # type: ignore[no-any-return]
    finally:
        conn.close()


def test_over_a_real_socket_under_restkits_server(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(trusted=["127.0.0.1"]))
    headers = {XFF: "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    got = get_from("127.0.0.1", server.port, headers)
    assert (got["addr"], got["base_url"]) == ("198.51.100.7", "https://api.example")
    assert got["orig"]["REMOTE_ADDR"] == "127.0.0.1" and got["orig"]["HTTP_HOST"] == f"127.0.0.1:{server.port}"
    try:
        untrusted = get_from("127.0.0.2", server.port, headers)  # all of 127.0.0.0/8 is loopback on Linux
    except OSError as exc:
        pytest.skip(f"cannot send from 127.0.0.2 here: {exc}")
    assert (untrusted["addr"], untrusted["base_url"], untrusted["orig"]) == ("127.0.0.2", f"http://127.0.0.1:{server.port}", None)

