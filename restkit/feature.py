"""Opt-in features (auth, rate limits, preconditions, CORS, compression) and how they run.

Theory of operation
-------------------
A feature is an object with up to five methods, all optional:

* ``install(app)``: called once by ``app.use(feature)``; registers after-hooks
  for what must see every response (CORS headers, compression, counting
  requests the router answered itself);
* ``before(request)``: runs for a routed request before the app's
  before-hooks and the handler; it raises an :class:`HTTPError` to refuse;
* ``preempt(request, result)``: sees what the handler returned before it is
  rendered, and may answer instead (a 304 whose body need not be encoded);
* ``after(request, response)``: returns the response to send (a 304, more
  headers), for routed requests, errors included;
* ``document(operation, context)``: adds what it does to the route's
  OpenAPI operation (parameters, statuses, headers, security).

A feature applies app-wide (``app.use(feature)``) or per route, as the route
option named by its ``option`` (``auth=``, ``rate_limit=``, ``conditional=``,
``paging=``, ``idempotency=``); a router passes options to all its routes with
``Router(defaults={...})``.  A route option replaces the app-wide feature of
the same name; ``auth=None`` makes one route public.  ``app_features=False``
leaves every app-wide feature out of a route (health probes, see
:mod:`restkit.health`): its chain has only the features it names, and the
after-hooks of app-wide features pass it by (see :func:`exempt`).

The app builds a route's chain on the first request to it (:func:`chain_for`)
and keeps it, so a route without features costs one dict lookup.  The chain
runs the ``before`` steps by ``stage`` (rate limit, then auth, then
idempotency keys, then preconditions), the app's before-hooks, the handler, and the ``after`` steps in
reverse; an error on the way goes through the app's error handlers first, so
the ``after`` steps see it as the response it becomes (one that no handler
takes as the 500: an idempotency key must learn that its request failed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .response import Response, render

if TYPE_CHECKING:
    from .app import App
    from .request import Request
    from .routing import Route

__all__ = ["Chain", "DocumentContext", "Feature", "FEATURE_OPTIONS", "chain_for", "exempt", "features_of"]

# The route options that hold a feature, in the order their steps run.
FEATURE_OPTIONS = ("rate_limit", "auth", "idempotency", "conditional", "paging")


class Feature:
    """The base of restkit's opt-in features; every method is optional."""

    #: The route option that sets (or with None turns off) this feature per route.
    option: ClassVar[str | None] = None
    #: Where its steps run in a chain: lower first (rate limit 10, auth 20, preconditions 30).
    stage: int = 50
    #: Whether it has before/after steps for routed requests.
    per_request: ClassVar[bool] = True

    def install(self, app: App) -> None:
        """Called by ``app.use(self)``."""

    def before(self, request: Request) -> Any:
        """Refuse (raise) or pass (return None) a routed request."""
        return None

    def after(self, request: Request, response: Response) -> Response:
        """The response to send instead of ``response``."""
        return response

    #: False when this instance's ``before`` has nothing to do (it is then not called).
    has_before: bool = True
    #: Optional: ``preempt(request, result)`` sees the handler's return value
    #: before it is rendered and may return another (a 304 instead of a body
    #: that would be thrown away).  None: no such step.
    preempt: Any = None

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        """Describe this feature in an OpenAPI operation."""

    def applies_to(self, route: Route) -> bool:
        """Whether this feature has steps for ``route`` (one for writes only leaves a GET route's chain)."""
        return True


class DocumentContext:
    """What :meth:`Feature.document` may read and add to while the API document is built."""

    def __init__(self, route: Route, method: str, security_schemes: dict[str, Any]) -> None:
        self.route = route
        self.method = method
        #: ``components.securitySchemes`` of the document; auth features add theirs.
        self.security_schemes = security_schemes

    def add_response(self, operation: dict[str, Any], status: int, *, error: bool = True) -> dict[str, Any]:
        """The operation's response for ``status``, added (as an ``Error`` body if ``error``) when missing."""
        from .status import reason_phrase

        entry: dict[str, Any] = {"description": reason_phrase(status)}
        if error:
            entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        result: dict[str, Any] = operation["responses"].setdefault(str(status), entry)
        return result

    @staticmethod
    def add_header(response: dict[str, Any], name: str, description: str,
                   schema: Mapping[str, Any] | None = None) -> None:
        """Document a response header."""
        response.setdefault("headers", {}).setdefault(
            name, {"description": description, "schema": dict(schema or {"type": "string"})}
        )

    @staticmethod
    def add_parameter(operation: dict[str, Any], parameter: dict[str, Any]) -> None:
        """Add a parameter unless one of that name and place is there already."""
        parameters = operation.setdefault("parameters", [])
        key = (parameter["name"].lower(), parameter["in"])
        if all((p["name"].lower(), p["in"]) != key for p in parameters):
            parameters.append(parameter)

    @staticmethod
    def success_responses(operation: dict[str, Any]) -> list[dict[str, Any]]:
        """The operation's 2xx responses."""
        return [entry for status, entry in operation["responses"].items() if status.startswith("2")]


def features_of(app: App, route: Route) -> list[Feature]:
    """Every feature that applies to ``route``: the app's, less those the route replaces, then its own."""
    options = route.options
    app_wide = getattr(app, "_features", ()) if options.get("app_features", True) else ()
    found: list[Feature] = [f for f in app_wide if f.option is None or f.option not in options]
    for name in FEATURE_OPTIONS:
        value = options.get(name)
        if value is None:
            continue
        if name == "conditional" and value is True:
            from .conditional import Conditional

            value = Conditional()
        if not isinstance(value, Feature):
            raise TypeError(f"route option {name}= of {route.path!r} must be a restkit feature, not {value!r}")
        found.append(value)
    return sorted(found, key=lambda feature: feature.stage)


def exempt(route: Route | None) -> bool:
    """Whether ``route`` opted out of the app-wide features (``app_features=False``).

    For the hooks an app-wide feature installs on every response (CORS
    headers, counting what the router answered): they leave such a route alone.
    """
    return route is not None and route.options.get("app_features", True) is False


class Chain:
    """The steps of one route: features' ``before``, the app's before-hooks, the handler, features' ``after``."""

    __slots__ = ("app", "route", "steps", "befores", "preempts", "afters")

    def __init__(self, app: App, route: Route, steps: Iterable[Feature]) -> None:
        self.app = app
        self.route = route
        self.steps = tuple(steps)
        # PERF(chain): only the steps a feature really has are called on each request
        self.befores = tuple(f.before for f in self.steps if type(f).before is not Feature.before and f.has_before)
        self.preempts = tuple(f.preempt for f in reversed(self.steps) if f.preempt is not None)
        self.afters = tuple(f.after for f in reversed(self.steps) if type(f).after is not Feature.after)

    def run(self, request: Request, params: dict[str, Any]) -> Any:
        app = self.app
        try:
            for before in self.befores:
                result = before(request)
                if result is not None:
                    break
            else:
                result = self._call(request, params) if self.app._before else self.route.handler(request, **params)
            for preempt in self.preempts:
                result = preempt(request, result)
            response = result if type(result) is Response else render(result)
        except Exception as exc:
            try:
                response = render(app._handle_error(request, exc))
            except Exception as unhandled:  # no handler takes it: a 500, which the after steps see too
                if not self.afters:
                    raise
                response = app._internal_error(request, unhandled, request.environ)
        for after in self.afters:
            response = after(request, response)
        return response

    def _call(self, request: Request, params: dict[str, Any]) -> Any:
        for hook in self.app._before:
            early = hook(request)
            if early is not None:
                return early
        return self.route.handler(request, **params)


def chain_for(app: App, route: Route) -> Chain | None:
    """The chain of ``route``, or None when no feature applies to it."""
    steps = [feature for feature in features_of(app, route) if feature.per_request and feature.applies_to(route)]
    return Chain(app, route, steps) if steps else None
