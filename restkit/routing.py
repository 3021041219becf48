"""The route table: patterns, converters, matching and URL building.

Theory of operation
-------------------
A pattern such as ``/zoos/<int:zoo_id>/animals`` is split on ``/`` into
segments; each segment is either literal text or one whole parameter
``<converter:name>`` (``<name>`` means ``<str:name>``).  Routes are stored
in a trie keyed by segment, so finding a route costs one dict lookup per
literal segment and one converter call per candidate parameter: it does not
grow with the number of routes.  Routes without parameters are also kept in
a dict keyed by the whole path, which answers most requests in one lookup.

At each node literal children are tried first, then parameters (``int``
before ``float`` before ``uuid`` before custom converters before ``str``),
then a trailing ``path`` parameter.  A converter that rejects its text means
"try the next candidate", so ``/animals/recently_added`` beats
``/animals/<int:animal>`` and ``/animals/abc`` is a 404, never a 500.

A path that matches some route but not with the request's method is a
partial match: :meth:`Router.match` reports the methods that would have
matched, which the app turns into ``405`` with ``Allow``.  ``HEAD`` falls
back to the ``GET`` route; ``OPTIONS`` is answered by the app.

Trailing slashes are significant: ``/zoos`` and ``/zoos/`` are different
paths.  The app redirects (308) a request for one to the other when only the
other exists.  Because WSGI hands the app an already-decoded ``PATH_INFO``,
an encoded slash (``%2F``) in a segment is indistinguishable from ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from .datastructures import Record

if TYPE_CHECKING:
    import uuid
    from .feature import FeatureOptions
    from typing import TypedDict, Unpack

    class RouteOptions(TypedDict, total=False):
        """The options a route takes, besides ``methods`` and ``name`` (see :data:`ROUTE_OPTIONS`)."""

        produces: str | None
        body: Any
        query: Any
        partial: bool
        unknown_fields: str
        responses: Mapping[int, Any]
        errors: Iterable[int]
        tags: Iterable[str]
        security: Iterable[Mapping[str, Iterable[str]]]
        header_params: Iterable[str]
        include_in_schema: bool
        deprecated: bool
        app_features: bool
        # The options of the features restkit ships (restkit.feature.SHIPPED_FEATURES; a test keeps them equal).
        auth: Any
        rate_limit: Any
        conditional: Any
        paging: Any
        idempotency: Any

__all__ = [
    "BuildError",
    "Converter",
    "FloatConverter",
    "IntConverter",
    "Match",
    "PathConverter",
    "Route",
    "RouteError",
    "Router",
    "StrConverter",
    "UUIDConverter",
    "DEFAULT_CONVERTERS",
    "ROUTE_OPTIONS",
]

Handler = Callable[..., Any]


def _is_type(value: Any) -> bool:
    # a class, or a parametrised one such as list[Pet]
    return isinstance(value, type) or hasattr(value, "__origin__")


def _strings(value: Any) -> bool:
    return not isinstance(value, str) and isinstance(value, Iterable) and all(isinstance(v, str) for v in value)


class OptionSpec(Record):
    """What a route option must be: a test, and the words for the message when it fails (read-only)."""

    __slots__ = ("accepts", "expected")
    accepts: Callable[[Any], bool]
    expected: str

    def __init__(self, accepts: Callable[[Any], bool], expected: str) -> None:
        self._fill(accepts=accepts, expected=expected)


#: The route options of the router and the app.  Together with the options of
#: features (:attr:`Router.feature_options`) they are the closed set: a name in
#: neither fails when the route is added, with a suggestion; a value of the
#: wrong kind fails there too.
ROUTE_OPTIONS: Mapping[str, OptionSpec] = {
    "produces": OptionSpec(lambda v: v is None or isinstance(v, str), "a media type such as 'text/html', or None"),
    "body": OptionSpec(lambda v: v is None or _is_type(v), "a dataclass or TypedDict (or list[Model])"),
    "query": OptionSpec(lambda v: v is None or isinstance(v, type), "a dataclass"),
    "partial": OptionSpec(lambda v: isinstance(v, bool), "True or False"),
    "unknown_fields": OptionSpec(lambda v: v in ("reject", "ignore"), "'reject' or 'ignore'"),
    "responses": OptionSpec(
        lambda v: isinstance(v, Mapping) and all(isinstance(k, int) and 100 <= k <= 599 for k in v),
        "a dict of status code to model, e.g. {201: Zoo, 204: None}",
    ),
    "errors": OptionSpec(
        lambda v: isinstance(v, Iterable) and not isinstance(v, str) and all(isinstance(k, int) for k in v),
        "a list of status codes, e.g. [404, 409]",
    ),
    "tags": OptionSpec(_strings, "a list of strings, e.g. ['zoos']"),
    "security": OptionSpec(
        lambda v: isinstance(v, Iterable) and all(isinstance(r, Mapping) for r in v),
        "a list of requirements, e.g. [{'bearerAuth': []}]",
    ),
    "header_params": OptionSpec(_strings, "a list of header names, e.g. ['If-Match']"),
    "include_in_schema": OptionSpec(lambda v: isinstance(v, bool), "True or False"),
    # True: the API document marks the operation ``deprecated`` (the route still answers)
    "deprecated": OptionSpec(lambda v: isinstance(v, bool), "True or False"),
    # False: none of the app-wide features (app.use) apply, only those the route names.
    "app_features": OptionSpec(lambda v: isinstance(v, bool), "True or False"),
}
# The options of features (auth=, rate_limit=...) are not here: the feature classes declare them,
# and each router keeps them in its Router.feature_options (see restkit.feature).

# The methods a route may declare.  HEAD comes with GET, OPTIONS with every path.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteError(ValueError):
    """A route that cannot be added: bad pattern, duplicate, unknown converter."""


class BuildError(LookupError):
    """``url_for`` could not build a URL: unknown name or missing parameter."""


# --- converters --------------------------------------------------------------


class Converter:
    """Turns one path segment into a Python value and back.

    Subclasses override :meth:`to_python`, raising :class:`ValueError` when
    the text does not fit (the route then does not match), and
    :meth:`to_url`.  ``priority`` orders parameters tried at the same place:
    lower goes first.  A converter with ``multi_segment = True`` takes the
    rest of the path, slashes included, and must be the last segment.
    """

    priority: ClassVar[int] = 50
    multi_segment: ClassVar[bool] = False
    # JSON Schema of the converted value, for generated API documents.
    schema: ClassVar[dict[str, Any]] = {"type": "string"}

    def to_python(self, value: str) -> Any:
        if not value:
            raise ValueError("empty segment")
        return value

    def to_url(self, value: Any) -> str:
        from urllib.parse import quote  # PERF(lazy-import)

        return quote(str(value), safe="")


class StrConverter(Converter):
    """Any non-empty segment without a slash (the default)."""

    priority = 90


class IntConverter(Converter):
    """ASCII digits, ``0 <= n < 2**63`` (so it fits a database integer)."""

    priority = 10
    schema = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    _MAX = 2**63

    def to_python(self, value: str) -> int:
        if len(value) < 19 and value.isdigit() and value.isascii():  # PERF(int-param): below 10**18, no range check
            return int(value)
        if not (value.isascii() and value.isdigit()) or len(value) > 19:
            raise ValueError("not an integer")
        number = int(value)
        if number >= self._MAX:
            raise ValueError("integer too large")
        return number

    def to_url(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"int parameter needs a non-negative integer, not {value!r}")
        return str(value)


class FloatConverter(Converter):
    """Decimal digits with an optional fraction: ``3``, ``2.5``; no sign, no exponent."""

    priority = 20
    schema = {"type": "number", "minimum": 0}
    # PERF: patterns are compiled on first use (re caches them), not on import.
    _PATTERN = r"[0-9]+(?:\.[0-9]+)?\Z"

    def to_python(self, value: str) -> float:
        if len(value) > 64 or not re.match(self._PATTERN, value):
            raise ValueError("not a number")
        return float(value)

    def to_url(self, value: Any) -> str:
        number = float(value)
        if not number >= 0 or number == float("inf"):
            raise ValueError(f"float parameter needs a finite non-negative number, not {value!r}")
        return repr(number)


class UUIDConverter(Converter):
    """A UUID in its canonical 8-4-4-4-12 hex form; gives :class:`uuid.UUID`."""

    priority = 30
    schema = {"type": "string", "format": "uuid"}
    _PATTERN = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z"

    def to_python(self, value: str) -> uuid.UUID:
        if not re.match(self._PATTERN, value):
            raise ValueError("not a UUID")
        import uuid  # PERF(lazy-import): only apps with UUID routes

        return uuid.UUID(value)

    def to_url(self, value: Any) -> str:
        import uuid

        return str(uuid.UUID(str(value)))


class PathConverter(Converter):
    """The rest of the path, slashes included (must be the last segment)."""

    priority = 100
    multi_segment = True

    def to_url(self, value: Any) -> str:
        from urllib.parse import quote

        return quote(str(value), safe="/")


DEFAULT_CONVERTERS: Mapping[str, type[Converter]] = {
    "str": StrConverter,
    "string": StrConverter,
    "int": IntConverter,
    "float": FloatConverter,
    "uuid": UUIDConverter,
    "path": PathConverter,
}


# --- patterns and routes -----------------------------------------------------

# segment = literal / "<" [ converter ":" ] name ">"
_PARAM = r"<(?:(?P<conv>[A-Za-z_][A-Za-z0-9_]*):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>\Z"


class Param(Record):
    """A parameter segment of a pattern (read-only)."""

    __slots__ = ("name", "converter", "converter_name")
    name: str
    converter: Converter
    converter_name: str

    def __init__(self, name: str, converter: Converter, converter_name: str) -> None:
        self._fill(name=name, converter=converter, converter_name=converter_name)


Segment = str | Param


class Route(Record):
    """One pattern with its handler, the methods it answers and its name (read-only).

    ``options`` holds what the app or extensions read per route (for
    example ``produces``, the media type a handler answers with).
    """

    __slots__ = ("path", "handler", "methods", "name", "segments", "options")
    _repr_fields = ("path", "handler", "methods", "name")
    _hash_fields = ("path", "methods", "name")  # not options, a dict
    path: str
    handler: Handler
    methods: frozenset[str]
    name: str
    segments: tuple[Segment, ...]
    options: Mapping[str, Any]

    def __init__(
        self,
        path: str,
        handler: Handler,
        methods: frozenset[str],
        name: str,
        segments: tuple[Segment, ...],
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._fill(
            path=path, handler=handler, methods=methods, name=name, segments=segments,
            options={} if options is None else options,
        )

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.segments if isinstance(s, Param))

    def build(self, params: Mapping[str, Any]) -> str:
        """Fill the pattern with ``params``; leftovers go to the query string.

        Raises:
            BuildError: a parameter is missing or does not convert.
        """
        from urllib.parse import quote, urlencode  # PERF(lazy-import)

        parts = []
        for segment in self.segments:
            if isinstance(segment, Param):
                if segment.name not in params:
                    raise BuildError(f"url_for({self.name!r}) needs the parameter {segment.name!r}")
                try:
                    parts.append(segment.converter.to_url(params[segment.name]))
                except (TypeError, ValueError) as exc:
                    raise BuildError(f"url_for({self.name!r}): {segment.name}: {exc}") from None
            else:
                parts.append(quote(segment, safe="@:!$&'()*+,;=-._~"))
        url = "/" + "/".join(parts)
        extra = {k: v for k, v in params.items() if k not in self.param_names}
        if extra:
            url += "?" + urlencode(extra, doseq=True)
        return url


def parse_pattern(path: str, converters: Mapping[str, type[Converter]]) -> tuple[Segment, ...]:
    """Split a pattern into literal and parameter segments.

    Raises:
        RouteError: the pattern is malformed (``{name}`` included: restkit
            writes ``<name>``), names an unknown converter, repeats a
            parameter name or puts a ``path`` parameter before the end.
    """
    if not path.startswith("/"):
        raise RouteError(f"route pattern must start with '/': {path!r}")
    raw = path[1:].split("/")
    segments: list[Segment] = []
    seen: set[str] = set()
    for index, text in enumerate(raw):
        if "{" in text or "}" in text:
            # The OpenAPI / FastAPI / Falcon spelling; a URL path cannot hold
            # a literal brace anyway (RFC 3986), so there is nothing to lose.
            braces = r"\{([^{}:]*)(?::[^{}]*)?\}"
            plain, typed = re.sub(braces, r"<\1>", path), re.sub(braces, r"<int:\1>", path)
            raise RouteError(
                f"bad segment {text!r} in {path!r}: restkit writes a path parameter as <name> or "
                f"<converter:name>, not {{name}}: write {plain!r} (or {typed!r} for an integer)"
            )
        if "<" not in text and ">" not in text:
            segments.append(text)
            continue
        found = re.match(_PARAM, text)
        if not found:
            raise RouteError(
                f"bad segment {text!r} in {path!r}: a parameter must be a whole segment, <name> or <converter:name>"
            )
        name, conv_name = found["name"], found["conv"] or "str"
        if conv_name not in converters:
            raise RouteError(f"unknown converter {conv_name!r} in {path!r}; known: {', '.join(sorted(converters))}")
        if name in seen:
            raise RouteError(f"parameter {name!r} appears twice in {path!r}")
        seen.add(name)
        converter = converters[conv_name]()
        if converter.multi_segment and index != len(raw) - 1:
            raise RouteError(f"a {conv_name!r} parameter must be the last segment: {path!r}")
        segments.append(Param(name, converter, conv_name))
    return tuple(segments)


# --- the trie ----------------------------------------------------------------


class Edge(Record):
    """A parameter edge of the trie: convert a segment with ``converter``, store it as ``name``, go to ``target``."""

    __slots__ = ("name", "converter", "converter_name", "target")
    _repr_fields = ("name", "converter_name")
    name: str
    converter: Converter
    converter_name: str
    target: State

    def __init__(self, name: str, converter: Converter, converter_name: str, target: State) -> None:
        self._fill(name=name, converter=converter, converter_name=converter_name, target=target)


class State:
    """A node of the route trie (Werkzeug's ``State``): where a path prefix leads.

    ``static`` maps a literal segment to the next state; ``dynamic`` holds the
    one-segment parameters and ``tail`` the rest-of-path ones, each sorted by
    converter priority; ``routes`` holds the routes that end here, by method.
    """

    __slots__ = ("static", "dynamic", "tail", "routes")

    def __init__(self) -> None:
        self.static: dict[str, State] = {}
        self.dynamic: list[Edge] = []
        self.tail: list[Edge] = []
        self.routes: dict[str, Route] = {}

    def child(self, segment: Segment) -> State:
        """The state after ``segment``, created if needed."""
        if isinstance(segment, str):
            state = self.static.get(segment)
            if state is None:
                state = self.static[segment] = State()
            return state
        edges = self.tail if segment.converter.multi_segment else self.dynamic
        for edge in edges:
            if edge.name == segment.name and edge.converter_name == segment.converter_name:
                return edge.target
        state = State()
        edges.append(Edge(segment.name, segment.converter, segment.converter_name, state))
        edges.sort(key=lambda edge: edge.converter.priority)
        return state

    def find(self, parts: list[str], index: int, params: dict[str, Any], method: str,
             allowed: list[str]) -> Route | None:
        """Depth-first search in priority order; record the methods of paths that match in ``allowed``."""
        state = self
        end = len(parts)
        # Where a state has only literal children there is nothing to backtrack
        # to: follow them in a loop instead of a call per segment.
        while index < end and not state.dynamic and not state.tail:
            following = state.static.get(parts[index])
            if following is None:
                return None
            state = following
            index += 1
        if index == end:
            routes = state.routes
            if routes:
                route = routes.get(method) or (routes.get("GET") if method == "HEAD" else None)
                if route is not None:
                    return route
                allowed.extend(routes)
            return None
        part = parts[index]
        # PERF(empty-static): a state with parameters seldom has literal children too; asking an
        # empty dict costs 340 instructions a parameter (benchmarks.instructions, params scenario)
        child = state.static.get(part) if state.static else None
        if child is not None:
            found = child.find(parts, index + 1, params, method, allowed)
            if found is not None:
                return found
        last = index + 1 == end
        for edge in state.dynamic:
            name, target = edge.name, edge.target
            try:
                params[name] = edge.converter.to_python(part)
            except ValueError:
                continue
            if last and not target.tail:
                # PERF: the last segment (/zoos/<int:id>): the target's routes
                # are looked at here, as find() would, without a call.
                routes = target.routes
                if routes:
                    found = routes.get(method) or (routes.get("GET") if method == "HEAD" else None)
                    if found is not None:
                        return found
                    allowed.extend(routes)
            else:
                found = target.find(parts, index + 1, params, method, allowed)
                if found is not None:
                    return found
            del params[name]
        return state._find_tail(parts, index, params, method, allowed) if state.tail else None

    def _find_tail(self, parts: list[str], index: int, params: dict[str, Any], method: str,
                   allowed: list[str]) -> Route | None:
        """The rest of the path, ``parts[index:]``, as one ``<path:...>`` parameter, in priority order."""
        for edge in self.tail:
            name, target = edge.name, edge.target
            try:
                params[name] = edge.converter.to_python("/".join(parts[index:]))
            except ValueError:
                continue
            found = target.find(parts, len(parts), params, method, allowed)
            if found is not None:
                return found
            del params[name]
        return None


class Match(NamedTuple):
    """The outcome of :meth:`Router.match`.

    ``route`` is None when nothing matched; then ``allowed`` holds the
    methods that would have matched the path (empty: the path is unknown).
    """

    route: Route | None
    params: dict[str, Any]
    allowed: frozenset[str]


_EMPTY: frozenset[str] = frozenset()


def _allow(methods: Iterable[str]) -> set[str]:
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    allowed.add("OPTIONS")
    return allowed


class Router:
    """A group of routes, usable on its own or mounted under a prefix.

    Args:
        converters: extra path converters by name, added to the defaults.
        tags: API-document tags for every route added to this router.
        defaults: route options for every route added to this router that does
            not set its own (e.g. ``{"auth": writer}``).
        prepare: called with every route as it is stored here (mounted ones
            too) and returns the route to store; :class:`restkit.App` binds
            typed validation to handlers with it.
    """

    def __init__(
        self,
        *,
        converters: Mapping[str, type[Converter]] | None = None,
        tags: Iterable[str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        prepare: Callable[[Route], Route] | None = None,
    ) -> None:
        self._feature_options: FeatureOptions | None = None
        self._defaults = dict(defaults or {})
        self._check_options(self._defaults, "Router(defaults=...)")
        self._prepare = prepare
        self._tags = list(tags) if tags is not None else None
        self._converters: dict[str, type[Converter]] = {**DEFAULT_CONVERTERS, **(converters or {})}
        self._routes: list[Route] = []
        self._names: dict[str, Route] = {}
        self._static: dict[str, dict[str, Route]] = {}
        self._root = State()
        self._parents: list[tuple[Router, str, str | None]] = []

    @property
    def feature_options(self) -> FeatureOptions:
        """The route options of features this router takes (:class:`restkit.feature.FeatureOptions`)."""
        if self._feature_options is None:
            from .feature import FeatureOptions  # PERF(lazy-import): only for routes with options of features

            self._feature_options = FeatureOptions()
        return self._feature_options

    def _check_options(self, options: Mapping[str, Any], where: str) -> None:
        """Refuse an option restkit does not know, or one of the wrong kind."""
        for key, value in options.items():
            spec = ROUTE_OPTIONS.get(key)
            if spec is not None:
                if not spec.accepts(value):
                    raise RouteError(f"route option {key}= for {where} must be {spec.expected}, not {value!r}")
                continue
            declared = self.feature_options.declared_by(key, value)
            if declared is None:
                import difflib  # PERF(lazy-import): only for a mistake

                known = [*ROUTE_OPTIONS, *self.feature_options.names()]
                close = difflib.get_close_matches(key, [*known, "methods", "name"], n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}=? " if close else ""
                raise RouteError(f"unknown route option {key}= for {where}: {hint}route options are {', '.join(known)}")
            if not declared.accepts_option(value):
                raise RouteError(f"route option {key}= for {where} must be {declared.option_takes}, not {value!r}")

    # -- building ---------------------------------------------------------

    def add_converter(self, name: str, converter: type[Converter]) -> None:
        """Register a converter for patterns added from now on (``<name:param>``)."""
        if not (isinstance(converter, type) and issubclass(converter, Converter)):
            raise RouteError(f"converter {name!r} must be a Converter subclass")
        self._converters[name] = converter

    def add_route(
        self,
        path: str,
        handler: Handler,
        *,
        methods: Iterable[str] = ("GET",),
        name: str | None = None,
        **options: Unpack[RouteOptions],
    ) -> Route:
        """Add a route and return it.

        Args:
            path: the pattern, e.g. ``/zoos/<int:zoo_id>``.
            handler: called as ``handler(request, **params)``.
            methods: the methods it answers; ``GET`` also answers ``HEAD``.
            name: the name for :meth:`url_for`; default the handler's ``__name__``.
            **options: one of :data:`ROUTE_OPTIONS` or :attr:`feature_options`, stored on the route for
                the app and the API document: ``produces`` (media type
                checked against ``Accept``), ``body``/``query`` (typed
                models, see :mod:`restkit.validation`), ``partial``,
                ``unknown_fields``, ``responses``, ``errors``, ``tags``,
                ``security``, ``header_params``, ``include_in_schema``,
                ``deprecated``; the
                features ``auth``, ``rate_limit``, ``conditional``,
                ``paging``, ``idempotency``, and ``app_features=False`` to leave out the
                app-wide ones (see :mod:`restkit.feature`).

        Raises:
            RouteError: bad pattern, unknown method, unknown option or an
                option of the wrong kind, a handler whose parameters do not
                fit the route, a method already taken on this pattern, or a
                name already used by another handler.
        """
        if not callable(handler):
            raise RouteError(f"handler for {path!r} is not callable")
        wanted = frozenset(m.upper() for m in ([methods] if isinstance(methods, str) else methods))
        if not wanted:
            raise RouteError(f"route {path!r} needs at least one method")
        unknown = wanted - KNOWN_METHODS
        if unknown:
            raise RouteError(f"unknown method(s) {', '.join(sorted(unknown))} for {path!r}")
        where = f"{' '.join(sorted(wanted))} {path!r}"
        self._check_options(options, where)
        route_name = name or getattr(handler, "__name__", None) or path
        segments = parse_pattern(path, self._converters)
        if self._tags is not None:
            options.setdefault("tags", list(self._tags))
        for option, value in self._defaults.items():
            options.setdefault(option, value)  # type: ignore[misc]
        # body= and query= reach the handler as keyword arguments, like path parameters.
        declared = [key for key in ("body", "query") if options.get(key) is not None]
        check_handler(handler, [s.name for s in segments if isinstance(s, Param)], declared, where)
        route = Route(path, handler, wanted, route_name, segments, dict(options))
        self._insert(route)
        return route

    def _insert(self, route: Route) -> None:
        if self._prepare is not None:
            route = self._prepare(route)
        existing = self._names.get(route.name)
        if existing is not None and _endpoint(existing.handler) != _endpoint(route.handler):
            raise RouteError(
                f"route name {route.name!r} is already used by {existing.path!r}; pass name= to tell them apart"
            )
        node = self._root
        for segment in route.segments:
            node = node.child(segment)
        clash = route.methods & node.routes.keys()
        if clash:
            other = node.routes[next(iter(clash))]
            raise RouteError(f"{', '.join(sorted(clash))} {route.path!r} is already routed (as {other.path!r})")
        for method in route.methods:
            node.routes[method] = route
        if not any(isinstance(s, Param) for s in route.segments):
            self._static.setdefault(route.path, {}).update(dict.fromkeys(route.methods, route))
        self._names.setdefault(route.name, route)
        self._routes.append(route)
        for parent, prefix, namespace in self._parents:
            parent._insert(_prefixed(route, prefix, namespace))

    def route(
        self, path: str, *, methods: Iterable[str] = ("GET",), name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add_route`; returns the handler unchanged."""

        def register(handler: Handler) -> Handler:
            self.add_route(path, handler, methods=methods, name=name, **options)
            return handler

        return register

    def get(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """``@router.get(path)``: a GET (and HEAD) route."""
        return self.route(path, methods=("GET",), name=name, **options)

    def post(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """``@router.post(path)``: a POST route."""
        return self.route(path, methods=("POST",), name=name, **options)

    def put(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """``@router.put(path)``: a PUT route."""
        return self.route(path, methods=("PUT",), name=name, **options)

    def patch(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """``@router.patch(path)``: a PATCH route."""
        return self.route(path, methods=("PATCH",), name=name, **options)

    def delete(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """``@router.delete(path)``: a DELETE route."""
        return self.route(path, methods=("DELETE",), name=name, **options)

    def mount(self, prefix: str, router: Router, *, namespace: str | None = None) -> None:
        """Serve every route of ``router`` under ``prefix`` (e.g. ``/v1``).

        Routes added to ``router`` later are mounted too.  ``/`` in the
        mounted router becomes ``prefix`` itself (``/v1``).  With
        ``namespace="v1"`` names become ``v1.<name>``, so one router can be
        mounted twice.

        Raises:
            RouteError: a malformed prefix, or a route or name that clashes.
        """
        if router is self:
            raise RouteError("a router cannot be mounted into itself")
        if prefix != "" and (not prefix.startswith("/") or prefix.endswith("/") or "<" in prefix):
            raise RouteError(f"mount prefix must look like '/v1' (no trailing slash, no parameters): {prefix!r}")
        for route in router._routes:
            self._insert(_prefixed(route, prefix, namespace))
        router._parents.append((self, prefix, namespace))

    # -- looking up -------------------------------------------------------

    def match(self, method: str, path: str) -> Match:
        """Find the route for ``method`` and ``path`` (already percent-decoded)."""
        return Match(*self._lookup(method, path))

    def _lookup(self, method: str, path: str) -> tuple[Route | None, dict[str, Any], frozenset[str]]:
        # PERF: match() as a plain tuple, for the app's hot path: building a
        # NamedTuple costs as much as finding a static route.
        by_method = self._static.get(path)
        if by_method is not None:
            route = by_method.get(method) or (by_method.get("GET") if method == "HEAD" else None)
            if route is not None:
                return route, {}, _EMPTY
        # PERF(allowed-list): the methods of the paths that match, in a list (a literal) rather than a set
        # (a call): 300 of the 41,000 instructions of a 304
        allowed: list[str] = []
        params: dict[str, Any] = {}
        route = self._root.find(path[1:].split("/"), 0, params, method, allowed)
        if route is not None:
            return route, params, _EMPTY
        return None, {}, frozenset(_allow(allowed)) if allowed else _EMPTY

    def allowed_methods(self, path: str) -> frozenset[str]:
        """Every method that ``path`` answers (with HEAD and OPTIONS); empty if none."""
        allowed: list[str] = []
        self._root.find(path[1:].split("/"), 0, {}, "", allowed)
        return frozenset(_allow(allowed)) if allowed else _EMPTY

    def url_for(self, name: str, /, **params: Any) -> str:
        """Build the path of the route called ``name``; extra params become the query.

        Raises:
            BuildError: no route has that name, or a parameter is missing or invalid.
        """
        route = self._names.get(name)
        if route is None:
            raise BuildError(f"no route is named {name!r}")
        return route.build(params)

    @property
    def routes(self) -> list[Route]:
        """Every route, in the order added (mounted ones with their prefix)."""
        return list(self._routes)


def _prefixed(route: Route, prefix: str, namespace: str | None) -> Route:
    """A copy of ``route`` that lives under ``prefix`` (``/`` becomes the prefix itself)."""
    if not prefix:
        path, segments = route.path, route.segments
    elif route.path == "/":
        path, segments = prefix, tuple(prefix[1:].split("/"))
    else:
        path, segments = prefix + route.path, tuple(prefix[1:].split("/")) + route.segments
    name = f"{namespace}.{route.name}" if namespace else route.name
    return Route(path, route.handler, route.methods, name, segments, route.options)


def _endpoint(handler: Handler) -> Handler:
    """The user's function behind a validation wrapper.

    Compared with ``==``: a bound method is a new object at each attribute
    access, but two of the same method are equal.
    """
    return getattr(handler, "__wrapped__", handler)


def check_handler(handler: Handler, path_params: list[str], declared: list[str], where: str) -> None:
    """Refuse a handler that could not be called as ``handler(request, **path_params, body=, query=)``.

    ``declared`` names the options (``body``, ``query``) whose value the
    handler receives as a keyword argument.

    Every request to such a route would end in a 500 (a ``TypeError`` from
    the call), so the mistake is reported when the route is added, with the
    signature to write instead.

    Raises:
        RouteError: the handler takes no request, does not take one of
            those keywords, or requires a parameter nobody passes.
    """
    keywords = [*path_params, *declared]
    import inspect  # PERF(lazy-import): when routes are added, not by `import restkit`

    try:
        # The signature of what is called: a decorator's wrapper (which may
        # supply arguments itself) rather than the function it wraps.
        signature = inspect.signature(handler, follow_wrapped=False)
    except (TypeError, ValueError):  # a callable whose signature cannot be read: trust it
        return
    P = inspect.Parameter
    parameters = list(signature.parameters.values())
    label = getattr(handler, "__name__", None) or type(handler).__name__
    bare = [p.replace(annotation=P.empty) for p in parameters]  # shown without annotations
    shown = label + str(signature.replace(parameters=bare, return_annotation=inspect.Signature.empty))
    instead = f"write def {label}({', '.join(['request', *keywords])})"
    positional = [p for p in parameters if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    takes_any_keyword = any(p.kind is P.VAR_KEYWORD for p in parameters)
    request = positional[0] if positional else None
    if request is None and not any(p.kind is P.VAR_POSITIONAL for p in parameters):
        raise RouteError(f"handler {shown} for {where} must take the request as its first parameter: {instead}")
    if request is not None and request.name in keywords:
        raise RouteError(
            f"handler {shown} for {where} would receive the request in {request.name}: "
            f"the request comes first; {instead}"
        )
    for key in keywords:
        parameter = next((p for p in parameters if p.name == key and p is not request), None)
        if takes_any_keyword or (parameter is not None and parameter.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)):
            continue
        what = f"the path parameter {key}" if key in path_params else f"{key}=, the validated {key} the route declares,"
        raise RouteError(f"handler {shown} for {where} does not take {what} as a keyword argument: {instead}")
    for parameter in parameters:
        if parameter is request or parameter.name in keywords or parameter.default is not P.empty:
            continue
        if parameter.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            continue
        supplied = ", ".join(keywords) if keywords else "nothing but the request"
        raise RouteError(
            f"handler {shown} for {where} requires {parameter.name}, which the route does not pass "
            f"(it passes {supplied}): give {parameter.name} a default, or {instead}"
        )
