"""Opt-in features (auth, rate limits, preconditions, CORS, compression) and the request lifecycle.

Theory of operation
-------------------
Every request goes through the same hooks, in this order (Falcon's
``process_request`` / ``process_resource`` / ``process_response`` is the
model).  A feature is an object with any of the ``Feature`` methods below;
``app.use(feature)`` installs it for every route, and a route option installs
one on one route.  The app's own hooks (``@app.before_routing``,
``@app.before_request``, ``@app.after_request``) take the same places.

====  ================================  ========================================  ============================  =======
step  hook (whose)                      when it runs                              what it may return            router
====  ================================  ========================================  ============================  =======
1     ``before_routing(environ)``       first, on every request, before the path  None: it changes ``environ``  yes
      (Feature, App)                    is decoded or routed                      in place; what it raises is
                                                                                  the answer (skips 2 to 5)
2     ``before(request)`` (Feature)     once routed, by ``stage``: rate limit     None; raise an HTTPError to   [*]
                                        10, auth 20, idempotency 27,              refuse
                                        preconditions 30
3     ``before_request(request)`` (App) after step 2, before the handler          None, or a value to send      yes
                                                                                  instead of the handler's
4     ``preempt(request, result)``      the handler's value before it is          a value (a 304 instead of a   no
      (Feature)                         rendered, by ``stage`` reversed           body to throw away)
5     ``after(request, response)``      by ``stage`` reversed, errors included    the Response to send          [*]
      (Feature)                         (as the error handlers made them)
6     ``after_request(request,          every response, errors and step 1's       a Response, or None to keep   yes
      response)`` (Feature, App)        refusals included, in install order       this one
7     ``observe_responses(...)`` (App)  the final status line and WSGI body       nothing: it only looks        yes
====  ================================  ========================================  ============================  =======

"router": whether the step sees the answers the router makes itself (404,
405, 308, the automatic ``OPTIONS``) and the refusals of a route's checks
(406, 413, 414).  [*]: only app-wide features with ``router_answers = True``
(the rate limit counts them; auth and preconditions have nothing to say
there), and not step 3 for the refusals.  Steps 2 to 5 then run around
restkit's own answer, where the handler would run.  Step 6 comes after
step 5 whatever the order of ``app.use`` calls, so a rate limit's 429 gets
its CORS headers from CORS's step 6 like any other answer, and neither
feature knows the other.  Steps 1 and 6 come before and after routing, so a
feature has them only when installed app-wide (``app.use``); as a route
option it has steps 2 to 5.

Two more methods are not steps of a request: ``install(app)`` runs once, in
``app.use``, for what a feature adds to the app (routes, startup hooks), and
``document(operation, context)`` adds what a feature does to a route's
OpenAPI operation.

A feature applies app-wide (``app.use(feature)``) or per route, as the route
option named by its ``option`` (``auth=``, ``rate_limit=``, ``conditional=``,
``paging=``, ``idempotency=``); a router passes options to all its routes with
``Router(defaults={...})``.  A route option replaces the app-wide feature of
the same name; ``auth=None`` makes one route public.  ``app_features=False``
leaves every app-wide feature out of a route (health probes, see
:mod:`restkit.health`): its chain has only the features it names, and the
step-6 hooks of app-wide features pass it by (see :func:`exempt`).

The route options of features are declared by the feature classes
(``option``, ``option_takes``, :meth:`Feature.accepts_option`) and kept in a
:class:`FeatureOptions` registry that each router owns and reads when a route
is added: the router knows no feature by name.  It starts with the features
restkit ships (:data:`SHIPPED_FEATURES`, imported when a route names one);
``app.use`` adds the class of every feature an app installs, and a route may
name any feature whose ``option`` is that keyword.

The app builds a route's chain on the first request to it (:func:`chain_for`)
and keeps it, so a route without features costs one dict lookup.  An error
on the way goes through the app's error handlers first, so the ``after``
steps see it as the response it becomes (one that no handler takes as the
500: an idempotency key must learn that its request failed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from .response import Response, render

if TYPE_CHECKING:
    from .app import App
    from .request import Request
    from .routing import Route

__all__ = [
    "Chain",
    "DocumentContext",
    "Feature",
    "FeatureOptions",
    "SHIPPED_FEATURES",
    "chain_for",
    "exempt",
    "features_of",
    "router_chain_for",
]

#: The route options of the features restkit ships, and the class that declares each
#: (``.module:Class``, within this package): a module is imported when a route first names its option.
SHIPPED_FEATURES: Mapping[str, str] = MappingProxyType({
    "auth": ".auth:Auth",
    "rate_limit": ".ratelimit:RateLimit",
    "conditional": ".conditional:Conditional",
    "paging": ".paging:Paging",
    "idempotency": ".idempotency:Idempotency",
})


class Feature:
    """The base of restkit's opt-in features; every method is optional (see the table above)."""

    #: The route option that sets (or with None turns off) this feature per route.
    option: ClassVar[str | None] = None
    #: What that option takes, for the message when a route gives something else.
    option_takes: ClassVar[str] = "a restkit feature, or None"
    #: Where its steps run in a chain: lower first (rate limit 10, auth 20, preconditions 30).
    stage: int = 50
    #: Whether it has before/after steps for routed requests.
    per_request: ClassVar[bool] = True
    #: Whether, installed app-wide, its before/after steps also run for the answers the router makes
    #: itself (404, 405, 308, automatic OPTIONS) and for the route checks' 406, 413 and 414.
    router_answers: ClassVar[bool] = False

    @classmethod
    def accepts_option(cls, value: Any) -> bool:
        """Whether ``value`` fits this feature's route option (checked when the route is added)."""
        return value is None or isinstance(value, Feature)

    @classmethod
    def from_option(cls, value: Any) -> Feature:
        """The feature a route option's value stands for (``conditional=True``: a ``Conditional()``)."""
        if not isinstance(value, Feature):
            raise TypeError(f"route option {cls.option}= must be {cls.option_takes}, not {value!r}")
        return value

    def install(self, app: App) -> None:
        """Called once by ``app.use(self)``: add routes, startup hooks."""

    #: Optional: ``before_routing(environ)``, step 1.  None: no such step.
    before_routing: Any = None

    def before(self, request: Request) -> Any:
        """Step 2: refuse (raise) or pass (return None) a request."""
        return None

    def after(self, request: Request, response: Response) -> Response:
        """Step 5: the response to send instead of ``response``."""
        return response

    #: False when this instance's ``before`` has nothing to do (it is then not called).
    has_before: bool = True
    #: Optional: ``preempt(request, result)``, step 4, sees the handler's return value
    #: before it is rendered and may return another (a 304 instead of a body
    #: that would be thrown away).  None: no such step.
    preempt: Any = None
    #: Optional: ``after_request(request, response)``, step 6, on every response.  None: no such step.
    after_request: Any = None

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        """Describe this feature in an OpenAPI operation."""

    def applies_to(self, route: Route) -> bool:
        """Whether this feature has steps for ``route`` (one for writes only leaves a GET route's chain)."""
        return True


class FeatureOptions:
    """The route options that hold features, and the class that declares each (one per router).

    It starts with :data:`SHIPPED_FEATURES`; :meth:`add` registers the class
    of a feature an app installs.  A route may also name any feature whose
    ``option`` is that keyword, registered or not.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type[Feature] | str] = dict(SHIPPED_FEATURES)

    def add(self, feature_class: type[Feature]) -> None:
        """Register the option of ``feature_class`` (nothing when it has none, or it is there)."""
        option = feature_class.option
        if option is not None and option not in self._classes:
            self._classes[option] = feature_class

    def names(self) -> tuple[str, ...]:
        """The option names, restkit's own first."""
        return tuple(self._classes)

    def declared_by(self, option: str, value: Any = None) -> type[Feature] | None:
        """The class that declares ``option``: a registered one, else that of ``value`` if it is its feature."""
        found = self._classes.get(option)
        if isinstance(found, str):
            module, _, name = found.partition(":")
            found = self._classes[option] = getattr(importlib.import_module(module, __package__), name)
        if found is None and isinstance(value, Feature) and value.option == option:
            return type(value)
        return found

    def feature(self, option: str, value: Any) -> Feature | None:
        """The feature that the route option ``option=value`` installs, or None (a feature turned off)."""
        if value is None:
            return None
        declared = self.declared_by(option, value)
        if declared is None:
            return value if isinstance(value, Feature) else None
        return declared.from_option(value)


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


def features_of(app: App, route: Route | None) -> list[Feature]:
    """Every feature that applies to ``route``: the app's, less those the route replaces, then its own.

    For ``route=None`` (an answer the router made): the app-wide features.
    """
    options: Mapping[str, Any] = {} if route is None else route.options
    app_wide = app._features if options.get("app_features", True) else ()
    found: list[Feature] = [f for f in app_wide if f.option is None or f.option not in options]
    registry = app.router.feature_options
    for name, value in options.items():
        feature = registry.feature(name, value)
        if feature is not None:
            found.append(feature)
    return sorted(found, key=lambda feature: feature.stage)


def exempt(route: Route | None) -> bool:
    """Whether ``route`` opted out of the app-wide features (``app_features=False``).

    For the step-6 hooks of app-wide features (CORS headers, compression):
    they leave such a route alone.
    """
    return route is not None and route.options.get("app_features", True) is False


class Chain:
    """Steps 2 to 5 of one route: features' ``before``, the app's before-hooks, the handler, ``preempt``, ``after``.

    ``handler`` is the route's handler, called with the path parameters; for
    the answers the router makes it is the app's own answer, called with
    what it needs (:func:`router_chain_for`).
    """

    __slots__ = ("app", "handler", "steps", "befores", "preempts", "afters")

    def __init__(self, app: App, handler: Callable[..., Any], steps: Iterable[Feature]) -> None:
        self.app = app
        self.handler = handler
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
                result = self._call(request, params) if self.app._before else self.handler(request, **params)
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
        early = self.app._run_before_hooks(request)
        return early if early is not None else self.handler(request, **params)


def chain_for(app: App, route: Route) -> Chain | None:
    """The chain of ``route``, or None when no feature applies to it."""
    steps = [feature for feature in features_of(app, route) if feature.per_request and feature.applies_to(route)]
    return Chain(app, route.handler, steps) if steps else None


def router_chain_for(app: App, route: Route | None, answer: Callable[..., Any], *, hooks: bool) -> Chain | None:
    """The chain of the answers the router makes (``route`` None) or a route's checks refuse, or None.

    Only the features with ``router_answers = True`` take part; ``answer``
    makes the answer.  ``hooks``: the app's before-hooks run before it (they
    do for the router's answers, not for a refusal).
    """
    steps = [feature for feature in features_of(app, route) if feature.per_request and feature.router_answers]
    if not steps:
        return None
    chain = Chain(app, answer, steps) if hooks else _WithoutHooks(app, answer, steps)
    chain.preempts = ()  # step 4 sees what a handler returns; here no handler ran
    return chain


class _WithoutHooks(Chain):
    """A chain whose answer runs without the app's before-hooks (a refusal made before them)."""

    __slots__ = ()

    def _call(self, request: Request, params: dict[str, Any]) -> Any:
        return self.handler(request, **params)
