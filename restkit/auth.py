"""Authentication: bearer tokens, API keys and HTTP Basic, with scopes.

::

    tokens = {"s3cret": Identity("ada", {"read", "write"}), "r3ad": Identity("bob", {"read"})}
    bearer = Bearer(tokens)
    app.use(bearer)                                    # every route needs a valid token...
    @app.get("/health", auth=None)                     # ...but this one
    @app.post("/items", auth=bearer.require("write"))  # and this one needs the scope "write"

A request without credentials (or with other credentials than the scheme's)
gets **401** with ``WWW-Authenticate``; credentials that are not valid get
**401** with ``error="invalid_token"``; valid ones without a required scope
get **403**.  Secrets are compared with :func:`hmac.compare_digest` on their
UTF-8 bytes, so how long a comparison takes does not tell how much matched.
The identity of an accepted request is ``request.context["identity"]``.

A route that declares ``auth=`` is documented with the scheme in
``components.securitySchemes``, a ``security`` requirement and its 401 (and
403 when it needs scopes).  App-wide auth leaves restkit's own ``/docs`` and
``/openapi.json`` public.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, Forbidden, Unauthorized
from .feature import DocumentContext, Feature

if TYPE_CHECKING:
    from .request import Request

__all__ = ["APIKey", "Auth", "Basic", "Bearer", "Identity"]


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

    def missing(self, request: Request) -> str:
        """The 401 message when the request has no credentials."""
        raise NotImplementedError

    # -- the feature ---------------------------------------------------------------

    def authenticate(self, request: Request) -> Identity:
        """The identity of the request, checked for this scheme's scopes.

        Raises:
            Unauthorized: no credentials, or invalid ones.
            Forbidden: valid credentials without a required scope.
        """
        secret = self.credentials(request)
        if secret is None:
            raise Unauthorized(self.missing(request), www_authenticate=self.challenge())
        identity = self.verify(secret)
        if identity is None:
            raise Unauthorized(f"invalid {self.kind}", www_authenticate=self.challenge("invalid_token"))
        lacking = self.scopes - identity.scopes
        if lacking:
            raise Forbidden(
                self.message or f"these credentials lack the scope(s) {', '.join(sorted(lacking))} that {request.method} {request.path} needs"
            )
        return identity

    def before(self, request: Request) -> None:
        if request.route is not None and request.route.name.startswith("restkit."):
            return None  # app-wide auth leaves the API document and /docs public
        request.context["identity"] = self.authenticate(request)
        return None

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        if context.route.name.startswith("restkit."):
            return
        context.security_schemes.setdefault(self.scheme_name, dict(self.scheme))
        operation["security"] = [{self.scheme_name: []}]
        context.add_response(operation, 401)
        if self.scopes:
            forbidden = context.add_response(operation, 403)
            forbidden["description"] = f"Forbidden: needs the scope(s) {', '.join(sorted(self.scopes))}"


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

    def missing(self, request: Request) -> str:
        return f"{request.method} {request.path} needs an 'Authorization: Bearer <token>' header"


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
            raise BadRequest("malformed Authorization header: Basic credentials must be base64 of user:password") from None
        user, colon, password = text.partition(":")
        if not colon:
            raise BadRequest("malformed Authorization header: Basic credentials must be base64 of user:password")
        return self._check(user, password)

    def challenge(self, error: str | None = None) -> str:
        return f'Basic realm="{self.realm}", charset="UTF-8"'

    def missing(self, request: Request) -> str:
        return f"{request.method} {request.path} needs an 'Authorization: Basic ...' header (user name and password)"


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

    def missing(self, request: Request) -> str:
        where = " or ".join(
            text for text in (self.header and f"an {self.header} header", self.query and f"the query parameter {self.query}") if text
        )
        return f"{request.method} {request.path} needs an API key in {where}"


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
