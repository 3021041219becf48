"""Behind a reverse proxy: believe the forwarding headers of the proxies you run, and only theirs.

::

    from restkit import App
    from restkit.proxy import ProxyHeaders

    app = App()
    app.use(ProxyHeaders(["127.0.0.1", "10.0.0.0/8"]))          # one balancer in front
    # or, one of these instead:
    #   ProxyHeaders(["10.0.0.0/8"], hops=2)                    # a CDN, then a balancer
    #   ProxyHeaders(["::1"], headers="forwarded")              # a proxy that writes RFC 7239

Behind a proxy every request comes from the proxy's address, by plain HTTP,
with the Host the proxy chose.  The proxy says what the client saw in
headers; anyone else can send the same headers, so they are believed only
when the immediate peer (``REMOTE_ADDR``) is one of ``trusted``, and then
only as far as trusted proxies vouch for them.

Theory of operation
-------------------
Each proxy appends the address it received the request from to
``X-Forwarded-For`` (or an element ``for=...;proto=...;host=...`` to
``Forwarded``), so the right end of the list was written by the nearest
proxy and the left end by whoever sent the request first, a client that may
lie.  The client is found from the right: starting at the peer, while the
current address is trusted, the next entry to the left is believed; at most
``hops`` entries are taken.  The leftmost entry is never taken blindly.

The scheme and host come from the same hop as the address: the Forwarded
element whose ``for=`` was taken last, or in ``X-Forwarded-Proto`` and
``X-Forwarded-Host`` the entry as far from the right (their last entry when
they are shorter: proxies usually set them rather than append).  The environ
is rewritten the WSGI way (``REMOTE_ADDR``, ``wsgi.url_scheme``, ``HTTP_HOST``,
``SERVER_NAME``, ``SERVER_PORT``), so ``request.remote_addr``,
``request.scheme``, ``request.host``, ``request.base_url``, ``url_for(...,
_external=True)``, rate limits and paging links see the client's view with no
other change.  What was there before is kept in
``environ["restkit.proxy.orig"]`` (set whenever the peer is trusted).

Choices
-------
* **A feature, run before routing.**  ``app.use(ProxyHeaders(...))`` as for
  every other cross-cutting part of restkit; its ``before_routing`` step is
  :meth:`rewrite`, which ``app.use`` adds to :meth:`App.before_routing <restkit.App.before_routing>`:
  it runs first on every request, before the request is routed, so 404s,
  414s and rate limits see the client too.  A WSGI wrapper would do the same
  but hide the app behind another object (its ``use``, ``debug``,
  ``close()``...); an ``App`` option would make the app module know about
  proxies.  A server that is not restkit's needs nothing more: the rewrite is
  inside the app.
* **One header style, never both.**  ``headers="x-forwarded"`` (the default:
  what haproxy's ``option forwardfor``, nginx and cloud balancers send) or
  ``"forwarded"`` (RFC 7239).  The other style is not read at all: a proxy
  writes one and passes the other through from the client, where anyone could
  have written it, so no precedence between them would be safe.
* **A value that cannot be used is ignored, never a 400 or a 500.**
  Garbage, ``unknown`` and obfuscated identifiers (``_hidden``, valid in
  RFC 7239) stop the walk: the client is the last address believed (the
  proxy's own, if the first entry is unusable).  A proto other than http or
  https, or a host that is not ``host[:port]`` (a name, IPv4 or ``[IPv6]``,
  a port of 1-5 digits), leaves the scheme or Host as they were.  A client
  cannot get a refusal out of its own headers, and what went unused stays
  readable in the headers themselves.
* Multiple header lines of one name arrive in WSGI joined by commas: they
  read as one list, which is what RFC 9110 says they mean.  The list is cut
  at commas before any quoted string is read: a ``Forwarded`` element whose
  quoted value holds a comma is malformed here (``for``, ``proto`` and
  ``host`` never hold one), so a client's unbalanced quote cannot swallow the
  elements proxies appended after it.
* Addresses are normalised (``2001:DB8::0001`` is ``2001:db8::1``, an
  IPv4-mapped ``::ffff:192.0.2.1`` is ``192.0.2.1``) so that one client has
  one rate-limit key; a port given with the address is dropped (WSGI has no
  standard key for the client's port, and ``REMOTE_PORT`` stays as it was).
"""

from __future__ import annotations

import functools
import ipaddress  # PERF(lazy-import): with this module, which only apps behind a proxy import
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .feature import Feature
from .httprules import TOKEN_PATTERN as _TOKEN

__all__ = ["ProxyHeaders", "ORIGINAL_KEY"]

#: The environ key holding what the rewrite replaced (set whenever the peer is trusted).
ORIGINAL_KEY = "restkit.proxy.orig"
_REWRITTEN = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT")
_STYLES = ("x-forwarded", "forwarded")

# RFC 9110, section 5.6.2: token = 1*tchar
# RFC 7239, section 4: forwarded-pair = token "=" value; value = token / quoted-string.  Unquoted
# values may also hold ":" and "[]" here, as proxies configured by hand send ``for=192.0.2.1:80``.
_PAIR = re.compile(rf'({_TOKEN})=(?:([^\s;,"]+)|"((?:[^"\\]|\\.)*)")[ \t]*')
_ESCAPE = re.compile(r"\\(.)")
# RFC 7239, section 6: node-port = port / obfport; port = 1*5DIGIT; obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
_PORT = re.compile(r":(?:[0-9]{1,5}|_[A-Za-z0-9._-]+)")
# RFC 9110, section 7.2: Host = uri-host [ ":" port ]; uri-host = IP-literal / IPv4address / reg-name,
# with reg-name kept to what a DNS name holds: it goes into URLs the app sends back.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?")


class ProxyHeaders(Feature):
    """Take the client's address, scheme and host from the headers of trusted proxies.

    Args:
        trusted: the addresses and networks of the proxies you run (``"127.0.0.1"``,
            ``"10.0.0.0/8"``, ``"::1"``, ``"fd00::/8"``), as a list or one
            comma-separated string.  Only list proxies you run: a listed address
            can make the app believe any client address.
        hops: the most proxies a request passes through on its way here (1: one
            balancer); entries beyond are not read.
        headers: ``"x-forwarded"`` (``X-Forwarded-For``, ``-Proto`` and ``-Host``)
            or ``"forwarded"`` (RFC 7239); the other style is ignored.

    Raises:
        ValueError: an entry of ``trusted`` is not an address or network (a
            network with host bits set, ``10.0.0.1/8``, is refused as a likely
            typo), none is given, ``hops`` is below 1, or ``headers`` is unknown.
    """

    per_request = False  # it works before routing, not in the routes' chains

    def __init__(self, trusted: str | Iterable[str], *, hops: int = 1, headers: str = "x-forwarded") -> None:
        entries = trusted.split(",") if isinstance(trusted, str) else list(trusted)
        networks = [_network(entry) for entry in entries if entry.strip()]
        if not networks:
            raise ValueError("no trusted proxy given: name the addresses of the proxies you run")
        if hops < 1:
            raise ValueError(f"hops must be at least 1, not {hops}")
        if headers not in _STYLES:
            raise ValueError(f"headers must be 'x-forwarded' or 'forwarded', not {headers!r}")
        self.trusted = tuple(networks)
        self.hops = hops
        self.headers = headers
        # PERF(proxy): single addresses, the usual case, are found by their text in a set;
        # anything else is parsed once per distinct address (a bounded cache: clients are many).
        self._exact = frozenset(str(n.network_address) for n in networks if n.num_addresses == 1)
        self._in_networks = functools.lru_cache(maxsize=1024)(self._parse_and_check)

    def __repr__(self) -> str:
        trusted = ", ".join(repr(str(n.network_address) if n.num_addresses == 1 else str(n)) for n in self.trusted)
        return f"ProxyHeaders([{trusted}], hops={self.hops}, headers={self.headers!r})"

    def trusts(self, address: str) -> bool:
        """Whether ``address`` (as in ``REMOTE_ADDR``) is one of the trusted proxies."""
        return address in self._exact or self._in_networks(address)

    def _parse_and_check(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.trusted)

    # -- the rewrite ---------------------------------------------------------------

    def rewrite(self, environ: dict[str, Any]) -> None:
        """Put the client's address, scheme and host in ``environ``, if its peer is a trusted proxy."""
        peer = environ.get("REMOTE_ADDR")
        if not peer or not self.trusts(peer):
            return  # headers from anyone else are not read at all
        if self.headers == "forwarded":
            client, proto, host = self._read_forwarded(environ, peer)
        else:
            client, proto, host = self._read_x_forwarded(environ, peer)
        environ[ORIGINAL_KEY] = {key: environ.get(key) for key in _REWRITTEN}
        environ["REMOTE_ADDR"] = client
        scheme = _scheme(proto)
        if scheme is not None:
            environ["wsgi.url_scheme"] = scheme
        found = None if host is None else _HOST.fullmatch(host.strip())
        if found is not None and int(found.group(2) or 0) <= 65535:
            environ["HTTP_HOST"] = found.group(0)
            environ["SERVER_NAME"] = found.group(1)
            environ["SERVER_PORT"] = found.group(2) or ("443" if environ.get("wsgi.url_scheme") == "https" else "80")

    #: Step 1 of the lifecycle (see :mod:`restkit.feature`): ``app.use`` runs :meth:`rewrite` before routing.
    before_routing = rewrite

    def _read_x_forwarded(self, environ: dict[str, Any], peer: str) -> tuple[str, str | None, str | None]:
        client, depth = self._walk(peer, _from_the_right(environ.get("HTTP_X_FORWARDED_FOR"), self.hops))
        depth = max(depth, 1)  # with no address taken, the peer's own values
        proto = _at_depth(environ.get("HTTP_X_FORWARDED_PROTO"), depth)
        return client, proto, _at_depth(environ.get("HTTP_X_FORWARDED_HOST"), depth)

    def _read_forwarded(self, environ: dict[str, Any], peer: str) -> tuple[str, str | None, str | None]:
        elements = [_element(text) for text in _from_the_right(environ.get("HTTP_FORWARDED"), self.hops)]
        client, depth = self._walk(peer, (None if element is None else element.get("for") for element in elements))
        hop = elements[max(depth, 1) - 1] if elements else None  # the element of the hop the address came from
        return client, None if hop is None else hop.get("proto"), None if hop is None else hop.get("host")

    def _walk(self, peer: str, nodes: Iterable[str | None]) -> tuple[str, int]:
        """The client's address and how many entries were taken.

        Each entry is believed only if the one right of it is trusted.
        """
        client, depth = peer, 0
        for node in nodes:
            if depth and not self.trusts(client):
                break
            address = _address(node)
            if address is None:
                break  # unknown, obfuscated or garbage: nothing further left can be placed
            client, depth = address, depth + 1
        return client, depth


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = entry.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        raise ValueError(f"trusted proxy {entry.strip()!r} is not an address or a network: {exc}") from None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` names (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip


def _address(node: str | None) -> str | None:
    """The normalised address of a node, or None.

    A node is ``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:4711`` or a bare IPv6 address.
    """
    if not node:
        return None
    node = node.strip()
    if node.startswith("["):
        end = node.find("]")
        text, port = (node[1:end], node[end + 1 :]) if end > 0 else ("", "")
    elif node.count(":") == 1:  # IPv4 with a port; a bare IPv6 has two colons or more
        text, colon, rest = node.partition(":")
        port = colon + rest
    else:
        text, port = node, ""
    if port and not _PORT.fullmatch(port):
        return None
    ip = _ip(text)
    return None if ip is None else str(ip)


def _scheme(proto: str | None) -> str | None:
    scheme = None if proto is None else proto.strip().lower()
    return scheme if scheme in ("http", "https") else None


def _from_the_right(value: str | None, count: int) -> Iterator[str]:
    """The last ``count`` entries of a comma-separated header, the rightmost first."""
    if not value:
        return iter(())
    # PERF(proxy): rsplit with a limit cuts no more than it needs, however long the header
    return reversed(value.rsplit(",", count)[-count:])


def _at_depth(value: str | None, depth: int) -> str | None:
    """The entry ``depth`` places from the right of a comma-separated header (its first, if shorter)."""
    if not value:
        return None
    parts = value.rsplit(",", depth)
    return parts[-depth] if len(parts) >= depth else parts[0]


def _element(text: str) -> dict[str, str] | None:
    """The parameters of one ``Forwarded`` element (names lower-cased), or None when it is malformed.

    RFC 7239, section 4: forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] );
    a parameter may appear once per element.
    """
    pairs: dict[str, str] = {}
    position, end = 0, len(text)
    while position < end:
        if text[position] in "; \t":
            position += 1
            continue
        match = _PAIR.match(text, position)
        if match is None:
            return None
        name = match.group(1).lower()
        if name in pairs:
            return None
        unquoted = match.group(2)
        pairs[name] = unquoted if unquoted is not None else _ESCAPE.sub(r"\1", match.group(3))
        position = match.end()
        if position < end and text[position] != ";":
            return None
    return pairs or None
