"""Authentication: bearer tokens, API keys and HTTP Basic, with scopes.

::

    from restkit import App
    from restkit.auth import AnyOf, APIKey, Bearer, Identity

    app = App()
    tokens = {"s3cret": Identity("ada", {"read", "write"}), "r3ad": Identity("bob", {"read"})}
    keys = {"k-123": Identity("nightly-export", {"read"})}
    bearer = Bearer(tokens)
    app.use(bearer)                                      # every route needs a valid token...

    @app.get("/health", auth=None)                       # ...but this one
    def health(request):
        return {"ok": True}

    @app.post("/items", auth=bearer.require("write"))    # and this one needs the scope "write"
    def create_item(request):
        return request.json, 201

    @app.get("/feed", auth=AnyOf(bearer, APIKey(keys)))  # a token or an API key
    def feed(request):
        return {"for": request.context["identity"].name}

A request without credentials (or with other credentials than the scheme's)
gets **401** with ``WWW-Authenticate``; credentials that are not valid get
**401** with ``error="invalid_token"``; valid ones without a required scope
get **403**.  Secrets are compared with :func:`hmac.compare_digest` on their
UTF-8 bytes, so how long a comparison takes does not tell how much matched.
The identity of an accepted request is ``request.context["identity"]``.

A route that declares ``auth=`` is documented with the scheme in
``components.securitySchemes``, a ``security`` requirement naming the scopes
it needs (``[{"bearerAuth": ["write"]}]``) and its 401 (and 403 when it needs
scopes).  App-wide auth leaves restkit's own ``/docs`` and
``/openapi.json`` public.  :class:`AnyOf` accepts one of several schemes.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, Forbidden, Unauthorized
from .feature import DocumentContext, Feature

if TYPE_CHECKING:
    from .request import Request

__all__ = ["APIKey", "AnyOf", "Auth", "Basic", "Bearer", "Identity"]


class Identity:
    """Who made a request, and the scopes their credentials grant."""

    __slots__ = ("name", "scopes")

    def __init__(self, name: str, scopes: Iterable[str] = ()) -> None:
        self.name = name
        self.scopes = frozenset(scopes)

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, {sorted(self.scopes)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and (self.name, self.scopes) == (other.name, other.scopes)

    def __hash__(self) -> int:
        return hash((self.name, self.scopes))


Secrets = Mapping[str, "Identity | Iterable[str]"]
Verifier = Callable[[str], "Identity | None"]


def _lookup(secrets: Secrets | Verifier) -> Verifier:
    """A function from a presented secret to its identity, comparing in constant time."""
    if callable(secrets):
        return secrets
    table: list[tuple[bytes, Identity]] = []
    for index, (secret, value) in enumerate(secrets.items()):
        if not secret:
            raise ValueError("an empty secret would let anyone in")
        identity = value if isinstance(value, Identity) else Identity(f"client{index + 1}", value)
        table.append((secret.encode("utf-8"), identity))

    def verify(presented: str) -> Identity | None:
        # WSGI header values are Latin-1 text: compare the bytes the client sent
        given = presented.encode("latin-1", "replace")
        found = None
        for secret, identity in table:  # every entry, so the time does not tell which one matched
            if hmac.compare_digest(given, secret):
                found = identity
        return found

    return verify


class Auth(Feature):
    """The base of the schemes: finds credentials, checks them and the scopes.

    Args:
        scopes: the scopes a request must have (all of them).
        scheme_name: the name of the scheme in the API document.
        message: the 403 message when scopes are missing.
    """

    option = "auth"
    option_takes = "an auth feature (e.g. Bearer(...)), or None"
    stage = 20
    #: The OpenAPI security scheme object.
    scheme: dict[str, Any] = {}
    #: What the secret is called in messages ("token", "API key"...).
    kind = "credentials"

    def __init__(self, *, scopes: Iterable[str] = (), scheme_name: str = "auth", message: str | None = None) -> None:
        self.scopes = frozenset(scopes)
        self.scheme_name = scheme_name
        self.message = message

    def require(self, *scopes: str, message: str | None = None) -> Auth:
        """The same scheme and secrets, needing ``scopes`` as well (e.g. ``bearer.require("write")``)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.scopes = self.scopes | frozenset(scopes)
        clone.message = message if message is not None else self.message
        return clone

    # -- what a scheme provides -------------------------------------------------

    def credentials(self, request: Request) -> str | None:
        """The secret the request presents for this scheme, or None."""
        raise NotImplementedError

    def verify(self, secret: str) -> Identity | None:
        raise NotImplementedError

    def challenge(self, error: str | None = None) -> str:
        """The ``WWW-Authenticate`` value."""
        raise NotImplementedError

    def wanted(self) -> str:
        """The credentials this scheme reads, as a phrase: "an 'Authorization: Bearer <token>' header"."""
        raise NotImplementedError

    def missing(self, request: Request) -> str:
        """The 401 message when the request has no credentials."""
        return f"{request.method} {request.path} needs {self.wanted()}"

    def _alternatives(self) -> list[tuple[Auth, frozenset[str]]]:
        """The schemes a request may use, in the order they are tried, each with the scopes it must then have."""
        return [(self, self.scopes)]

    # -- the feature ---------------------------------------------------------------

    def authenticate(self, request: Request) -> Identity:
        """The identity of the request, checked for the scopes.

        The first scheme whose credentials the request presents decides; the
        others are not looked at (see :class:`AnyOf`).

        Raises:
            Unauthorized: no credentials, or invalid ones.
            Forbidden: valid credentials without a required scope.
        """
        for scheme, scopes in self._alternatives():
            secret = scheme.credentials(request)
            if secret is None:
                continue
            identity = scheme.verify(secret)
            if identity is None:
                raise Unauthorized(f"invalid {scheme.kind}", www_authenticate=scheme.challenge("invalid_token"))
            lacking = scopes - identity.scopes
            if lacking:
                raise Forbidden(
                    self.message
                    or scheme.message
                    or f"these credentials lack the scope(s) {', '.join(sorted(lacking))}"
                    f" that {request.method} {request.path} needs"
                )
            return identity
        raise Unauthorized(self.missing(request), www_authenticate=self.challenge())

    def before(self, request: Request) -> None:
        if request.route is not None and request.route.name.startswith("restkit."):
            return None  # app-wide auth leaves the API document and /docs public
        request.context["identity"] = self.authenticate(request)
        return None

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        if context.route.name.startswith("restkit."):
            return
        alternatives = self._alternatives()
        for scheme, _ in alternatives:
            context.security_schemes.setdefault(scheme.scheme_name, dict(scheme.scheme))
        # A list of requirements is OpenAPI's "or": any one of them will do.  Each names the
        # scopes it needs: OpenAPI 3.1 allows role names for every scheme type, not only OAuth2.
        operation["security"] = [{scheme.scheme_name: sorted(scopes)} for scheme, scopes in alternatives]
        context.add_response(operation, 401)
        distinct = {scopes for _, scopes in alternatives}
        if distinct == {frozenset()}:
            return  # no scopes: nothing to forbid
        if len(distinct) == 1:
            needs = ", ".join(sorted(distinct.pop()))
        else:  # AnyOf whose schemes need different scopes
            needs = "; ".join(
                f"{', '.join(sorted(scopes))} with {scheme.scheme_name}" for scheme, scopes in alternatives if scopes
            )
        context.add_response(operation, 403)["description"] = f"Forbidden: needs the scope(s) {needs}"


class AnyOf(Auth):
    """Any one of several schemes: ``AnyOf(bearer, api_key)`` takes a token or an API key.

    It goes wherever a single scheme does (``auth=``, ``app.use``,
    ``Router(defaults={"auth": ...})``) and ``.require("write")`` adds scopes
    on top of those of each scheme.

    * The schemes are tried in the order given; the first whose credentials
      the request presents decides: its secret valid, that identity (checked
      for this object's scopes and the scheme's own); not valid, 401 for that
      scheme (``error="invalid_token"`` in its challenge).
    * Credentials for two schemes at once: the first of them decides and the
      other is not even read.  Not a 400, because a client rarely chooses
      both: a gateway or an HTTP library's defaults add an API key to
      requests that also carry a user's token, and refusing those would break
      clients that did nothing wrong.  Not "any valid one", because then an
      expired token would pass unnoticed behind a key, and a request would
      have two identities.  Put first the scheme that should win.
    * No credentials for any scheme: 401 naming every accepted way, with one
      challenge per scheme in one ``WWW-Authenticate`` value (a
      comma-separated list of challenges, RFC 9110 section 11.6.1).

    The API document lists each scheme in ``components.securitySchemes`` and
    the operation's ``security`` as alternatives, ``[{"bearerAuth": []},
    {"apiKeyAuth": []}]``.

    Args:
        schemes: the schemes, in the order they are tried; their
            ``scheme_name`` must differ.
        scopes, message: see :class:`Auth`; without a message of its own the
            403 is the deciding scheme's.

    Raises:
        TypeError: a scheme is not an :class:`Auth`, or is an ``AnyOf``.
        ValueError: no scheme, or two with the same ``scheme_name``.
    """

    def __init__(self, *schemes: Auth, scopes: Iterable[str] = (), message: str | None = None) -> None:
        if not schemes:
            raise ValueError("AnyOf needs at least one scheme")
        for scheme in schemes:
            if isinstance(scheme, AnyOf):
                raise TypeError("AnyOf inside AnyOf: list all the schemes in one AnyOf(a, b, c)")
            if not isinstance(scheme, Auth):
                raise TypeError(f"AnyOf takes auth schemes (Bearer, APIKey, Basic...), not {scheme!r}")
        names = [scheme.scheme_name for scheme in schemes]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            # one name would document only one of the schemes
            raise ValueError(f"two schemes are named {', '.join(twice)}: give one a scheme_name=")
        super().__init__(scopes=scopes, message=message)
        self.schemes = schemes

    def _alternatives(self) -> list[tuple[Auth, frozenset[str]]]:
        return [(scheme, self.scopes | scheme.scopes) for scheme in self.schemes]

    def challenge(self, error: str | None = None) -> str:
        return ", ".join(scheme.challenge(error) for scheme in self.schemes)

    def wanted(self) -> str:
        phrases = [scheme.wanted() for scheme in self.schemes]
        return " or ".join(phrases) if len(phrases) < 3 else f"{', '.join(phrases[:-1])} or {phrases[-1]}"


class Bearer(Auth):
    """``Authorization: Bearer <token>`` (RFC 6750).

    Args:
        tokens: token -> :class:`Identity` (or its scopes), or a function
            from a token to its identity (None: invalid).
        realm: the ``realm`` of the challenge.
        scopes, scheme_name, message: see :class:`Auth`.
    """

    kind = "token"

    def __init__(
        self,
        tokens: Secrets | Verifier,
        *,
        realm: str | None = None,
        scopes: Iterable[str] = (),
        scheme_name: str = "bearerAuth",
        message: str | None = None,
    ) -> None:
        super().__init__(scopes=scopes, scheme_name=scheme_name, message=message)
        self._verify = _lookup(tokens)
        self.realm = realm
        self.scheme = {"type": "http", "scheme": "bearer"}

    def verify(self, secret: str) -> Identity | None:
        return self._verify(secret)

    def credentials(self, request: Request) -> str | None:
        return _authorization(request, "bearer")

    def challenge(self, error: str | None = None) -> str:
        return _challenge("Bearer", self.realm, error)

    def wanted(self) -> str:
        return "an 'Authorization: Bearer <token>' header"


class Basic(Auth):
    """``Authorization: Basic base64(user:password)`` (RFC 7617).

    Args:
        users: user name -> password, or a function ``(user, password)`` to
            an :class:`Identity` (None: invalid).  With a mapping the identity
            is the user name and the scopes are ``scopes_of.get(user, ())``.
        scopes_of: user name -> scopes granted.
    """

    kind = "user name or password"

    def __init__(
        self,
        users: Mapping[str, str] | Callable[[str, str], Identity | None],
        *,
        realm: str = "restkit",
        scopes_of: Mapping[str, Iterable[str]] | None = None,
        scopes: Iterable[str] = (),
        scheme_name: str = "basicAuth",
        message: str | None = None,
    ) -> None:
        super().__init__(scopes=scopes, scheme_name=scheme_name, message=message)
        self.realm = realm
        self.scheme = {"type": "http", "scheme": "basic"}
        if callable(users):
            self._check = users
        else:
            table = {name.encode("utf-8"): password.encode("utf-8") for name, password in users.items()}
            grants = {name: frozenset(s) for name, s in (scopes_of or {}).items()}

            def check(user: str, password: str) -> Identity | None:
                expected = table.get(user.encode("utf-8", "replace"))
                # compare against something even for an unknown user: the time does not tell who exists
                ok = hmac.compare_digest(password.encode("utf-8", "replace"), expected or b"\0" * 16)
                return Identity(user, grants.get(user, ())) if ok and expected is not None else None

            self._check = check

    def credentials(self, request: Request) -> str | None:
        return _authorization(request, "basic")

    def verify(self, secret: str) -> Identity | None:
        import base64
        import binascii

        try:
            text = base64.b64decode(secret.encode("latin-1", "replace"), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest(
                "malformed Authorization header: Basic credentials must be base64 of user:password"
            ) from None
        user, colon, password = text.partition(":")
        if not colon:
            raise BadRequest("malformed Authorization header: Basic credentials must be base64 of user:password")
        return self._check(user, password)

    def challenge(self, error: str | None = None) -> str:
        return f'Basic realm="{self.realm}", charset="UTF-8"'

    def wanted(self) -> str:
        return "an 'Authorization: Basic ...' header (user name and password)"


class APIKey(Auth):
    """An API key in a header (default ``X-API-Key``) or, opted into, a query parameter.

    Args:
        keys: key -> :class:`Identity` (or its scopes), or a function from a key to its identity.
        header: the header that carries the key (None: no header).
        query: the query parameter that carries it (None, the default: none;
            keys in URLs end up in logs, so this is opt-in).
    """

    kind = "API key"

    def __init__(
        self,
        keys: Secrets | Verifier,
        *,
        header: str | None = "X-API-Key",
        query: str | None = None,
        scopes: Iterable[str] = (),
        scheme_name: str = "apiKeyAuth",
        message: str | None = None,
    ) -> None:
        if header is None and query is None:
            raise ValueError("APIKey needs a header or a query parameter to read the key from")
        super().__init__(scopes=scopes, scheme_name=scheme_name, message=message)
        self._verify = _lookup(keys)
        self.header, self.query = header, query
        place, name = ("header", header) if header is not None else ("query", query)
        self.scheme = {"type": "apiKey", "in": place, "name": name}

    def verify(self, secret: str) -> Identity | None:
        return self._verify(secret)

    def credentials(self, request: Request) -> str | None:
        if self.header is not None:
            values = request.headers.getall(self.header)
            if len(values) > 1:
                raise BadRequest(f"send one {self.header} header, not {len(values)}")
            if values and values[0].strip():
                return values[0].strip()
        if self.query is not None:
            values = request.query.getall(self.query)
            if len(values) > 1:
                raise BadRequest(f"query parameter {self.query} is given more than once")
            if values and values[0]:
                return values[0]
        return None

    def challenge(self, error: str | None = None) -> str:
        return _challenge("APIKey", None, error)

    def wanted(self) -> str:
        where = " or ".join(
            text for text in (self.header and f"an {self.header} header",
                              self.query and f"the query parameter {self.query}") if text
        )
        return f"an API key in {where}"


def _authorization(request: Request, scheme: str) -> str | None:
    """The credentials of ``Authorization: <scheme> <credentials>``, or None for no or another scheme.

    The scheme is case-insensitive and any number of spaces may follow it
    (RFC 9110, section 11.4).  Two ``Authorization`` headers reach a WSGI app
    joined by a comma: that is a 400.
    """
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    found, _, credentials = str(header).strip().partition(" ")
    if found.lower() != scheme:
        return None
    credentials = credentials.strip()
    if not credentials:
        return None
    if "," in credentials or " " in credentials or "\t" in credentials:
        raise BadRequest(f"malformed Authorization header: send one header, '{scheme.capitalize()} <credentials>'")
    return credentials


def _challenge(scheme: str, realm: str | None, error: str | None) -> str:
    params = []
    if realm:
        params.append(f'realm="{realm}"')
    if error:
        params.append(f'error="{error}"')
    return f"{scheme} {', '.join(params)}" if params else scheme
