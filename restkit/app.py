"""The WSGI application: match, call, render, and turn errors into JSON.

Theory of operation
-------------------
``App.__call__`` is the whole request cycle.  It runs the before-routing
hooks (which may rewrite the environ: a trusted proxy's headers), decodes the path, checks
the URL length, asks the router for a match, checks ``Accept`` against the
route's ``produces`` and ``Content-Length`` against ``max_body_size``, runs
the before-hooks (for every request routing answered, matched or not),
calls the handler with the request and the path parameters, or answers
itself when no handler matched (404, 405, 308, 204 to ``OPTIONS``).  Any
:class:`HTTPError` on the way becomes its status with ``{"error": ...}``;
error handlers registered for a status or an exception class get the
first say; any other exception is logged, with the method, the path and
the handler, and becomes ``500 {"error": "internal server error"}`` (with
the ``request_id`` of :mod:`restkit.requestid` when it named the request).  The
after-hooks see every response, and so do the response observers
(:meth:`App.observe_responses`, for metrics), which only look: they get the
final status line and WSGI body, not a :class:`Response` built for them.

What a handler returns becomes bytes in one place, :func:`restkit.response.wsgi_result`
(or :func:`~restkit.response.render` when after-hooks need a
:class:`Response`).  The router only routes: the app binds typed
validation to the handlers of routes with ``body=`` or ``query=`` as they
are stored (``Router(prepare=...)``).

Lifecycle: ``@app.on_startup`` hooks run once per process, before it serves:
restkit's ``serve()`` calls :meth:`App.startup` before it binds; under any
other server (gunicorn, waitress...) the first request does, so ``__call__``
pays one attribute check per request for it.  ``@app.on_shutdown`` hooks run
when restkit's server begins a graceful stop.

A route with opt-in features (``auth=``, ``rate_limit=``, ``conditional=``,
or any installed with :meth:`App.use`) runs its chain instead: the features'
steps around the before-hooks and the handler.  The answers the router makes
itself, and the refusals of the checks above, run through the chain of the
app-wide features that see them (the rate limit).  :mod:`restkit.feature`
has the table of every step, in order.
"""

from __future__ import annotations

import threading
from time import perf_counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import HTTPError, MethodNotAllowed, NotAcceptable, NotFound, PayloadTooLarge, URITooLong
from .logtext import escape
from .request import DEFAULT_MAX_BODY_SIZE, Request, decode_path, media_type_accepted
from .response import JSON_TYPE, Response, _Chunks, json_dumps, render, wsgi_result
from .routing import Converter, Handler, Route, Router

if TYPE_CHECKING:
    from typing import Unpack

    from .routing import RouteOptions

__all__ = ["App", "StartupError"]


StartResponse = Callable[..., Any]
BeforeHook = Callable[[Request], Any]
EnvironHook = Callable[[dict[str, Any]], None]
AfterHook = Callable[[Request, Response], "Response | None"]
ErrorHandler = Callable[[Request, BaseException], Any]
# (request, environ, status line, WSGI body, perf_counter() when the call began); the request
# is None only when the app could not start (a startup hook failed)
ResponseObserver = Callable[[Request | None, dict[str, Any], str, Any, float], None]

_QUERY_SAFE = "!$%&'()*+,/:;=?@[]~"  # %: escapes already in the query stay as they are
_INTERNAL = b'{"error":"internal server error"}'


class App:
    """A WSGI application.

    Args:
        max_body_size: request bodies over this many bytes get 413 (default 1 MiB).
        max_url_length: paths plus query strings over this many characters get 414 (default 8 KiB).
        debug: send tracebacks in 500 bodies (never in production).
        redirect_slashes: answer ``/zoos/`` with 308 to ``/zoos`` (and the
            reverse) when only the other form is routed; otherwise 404.
        openapi: serve the API document at ``/openapi.json`` and the docs page
            at ``/docs`` (see :meth:`openapi`).
        title, version, description: the document's ``info``.
        security_schemes: the document's ``components.securitySchemes`` (e.g.
            ``{"bearerAuth": {"type": "http", "scheme": "bearer"}}``); routes
            name the ones they need with ``security=[{"bearerAuth": []}]``.
    """

    def __init__(
        self,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_url_length: int = 8192,
        debug: bool = False,
        redirect_slashes: bool = True,
        openapi: bool = False,
        title: str = "API",
        version: str = "1.0.0",
        description: str | None = None,
        security_schemes: Mapping[str, Any] | None = None,
    ) -> None:
        self.router = Router(prepare=self._bind)
        self.max_body_size = max_body_size
        self.max_url_length = max_url_length
        self.debug = debug
        self.redirect_slashes = redirect_slashes
        self._before_routing: list[EnvironHook] = []
        self._before: list[BeforeHook] = []
        self._after: list[AfterHook] = []
        self._error_handlers: dict[int | type[BaseException], ErrorHandler] = {}
        self._observers: list[ResponseObserver] = []
        # Called by a server that stops gracefully (restkit.serve does), so an
        # app can end its endless streams instead of waiting for the cut.
        self.shutdown_hooks: list[Callable[[], None]] = []
        # Run by startup(), once per process; a server that knows restkit calls it
        # before serving, otherwise __call__ does on the first request.
        self.startup_hooks: list[Callable[[], None]] = []
        self._started = False
        self._startup_done = 0  # how many hooks have returned: a retry goes on from the one that failed
        self._startup_lock = threading.Lock()
        self.title, self.version, self.description = title, version, description
        self.security_schemes = dict(security_schemes or {})
        # Features installed with use(), and each route's chain of them (see restkit.feature).
        self._features: list[Any] = []
        # by id(route); 0: the router's own answers; ("refused", id): a route check's refusal
        self._chains: dict[Any, Any] = {}
        if openapi:
            self._add_doc_routes()

    # -- building the app (delegated to the router) ----------------------------

    def add_route(
        self,
        path: str,
        handler: Handler,
        *,
        methods: Iterable[str] = ("GET",),
        name: str | None = None,
        **options: Unpack[RouteOptions],
    ) -> Route:
        """See :meth:`Router.add_route`.  ``produces=`` (default JSON) is
        the media type checked against ``Accept`` (None: no check)."""
        return self.router.add_route(path, handler, methods=methods, name=name, **options)

    def route(
        self, path: str, *, methods: Iterable[str] = ("GET",), name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        """``@app.route(path, methods=[...], name=None, produces=...)``."""
        return self.router.route(path, methods=methods, name=name, **options)

    def get(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        return self.router.get(path, name=name, **options)

    def post(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        return self.router.post(path, name=name, **options)

    def put(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        return self.router.put(path, name=name, **options)

    def patch(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        return self.router.patch(path, name=name, **options)

    def delete(
        self, path: str, *, name: str | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[Handler], Handler]:
        return self.router.delete(path, name=name, **options)

    def _bind(self, route: Route) -> Route:
        """Give a route with ``body=`` or ``query=`` a handler that validates them.

        Called by the router for every route stored in this app, mounted
        ones included: the router routes, the app validates.
        """
        options = route.options
        if options.get("body") is None and options.get("query") is None:
            return route
        from .validation import bind  # PERF(lazy-import): only for apps that declare typed models

        handler = bind(
            route.handler,
            body=options.get("body"),
            query=options.get("query"),
            partial=bool(options.get("partial", False)),
            unknown_fields=str(options.get("unknown_fields", "reject")),
        )
        return Route(route.path, handler, route.methods, route.name, route.segments, options)

    def mount(self, prefix: str, router: Router, *, namespace: str | None = None) -> None:
        """Serve ``router``'s routes under ``prefix``; see :meth:`Router.mount`."""
        self.router.mount(prefix, router, namespace=namespace)

    def add_converter(self, name: str, converter: type[Converter]) -> None:
        """Register a path converter for routes added from now on."""
        self.router.add_converter(name, converter)

    def url_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name``; see :meth:`Router.url_for`."""
        return self.router.url_for(name, **params)

    # -- the API document -----------------------------------------------------

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of this app's routes (see :mod:`restkit.openapi`)."""
        from .openapi import build_openapi  # PERF(lazy-import)

        return build_openapi(
            self,
            title=self.title,
            version=self.version,
            description=self.description,
            security_schemes=self.security_schemes,
        )

    def _add_doc_routes(self) -> None:
        from .docs import docs_page  # PERF(lazy-import)

        def openapi_json(request: Request) -> dict[str, Any]:
            """The OpenAPI 3.1 document of this API."""
            return self.openapi()

        def docs(request: Request) -> Response:
            """Interactive documentation of this API."""
            spec_url = request.url_for("restkit.openapi")
            return Response.html(docs_page(self.title, spec_url, request.script_name))

        # Named in restkit's own namespace, so users keep every plain name.
        self.router.add_route("/openapi.json", openapi_json, name="restkit.openapi", include_in_schema=False)
        self.router.add_route("/docs", docs, name="restkit.docs", produces="text/html", include_in_schema=False)

    # -- hooks and error handlers -----------------------------------------------

    def use(self, feature: Any) -> Any:
        """Install a feature for every route: ``app.use(CORS(...))``, ``app.use(RateLimit(600))``.

        See :mod:`restkit.feature` for the order its steps run in; a route
        option of the same name (``auth=``, ``rate_limit=``...) replaces it for
        that route.  Its ``before_routing`` and ``after_request`` steps join
        the app's hooks of those names, in the order installed.
        """
        self._features.append(feature)
        self._chains.clear()
        self.router.feature_options.add(type(feature))
        if getattr(feature, "before_routing", None) is not None:
            self.before_routing(feature.before_routing)
        if getattr(feature, "after_request", None) is not None:
            self.after_request(feature.after_request)
        feature.install(self)
        return feature

    def before_routing(self, hook: EnvironHook) -> EnvironHook:
        """Run ``hook(environ)`` first on every request, before it is routed or any check is made.

        For what changes the request itself, in place: :class:`restkit.proxy.ProxyHeaders`
        puts the client's address, scheme and host there, so that 404s, rate
        limits and links see them.  An :class:`HTTPError` it raises is the answer.
        """
        self._before_routing.append(hook)
        return hook

    def before_request(self, hook: BeforeHook) -> BeforeHook:
        """Run ``hook(request)`` before each handler (after the features' ``before`` steps); a value
        other than None is sent instead of calling the handler.  It runs for the router's own answers
        (404, 405, automatic OPTIONS) too, with ``request.route`` None."""
        self._before.append(hook)
        return hook

    def after_request(self, hook: AfterHook) -> AfterHook:
        """Run ``hook(request, response)`` on every response, errors included;
        it may change the response or return a new one.

        ``request`` is always a :class:`Request`: for an answer made before
        routing (a before-routing hook raised) it is built from the environ
        as that hook left it, with ``request.route`` None.
        """
        self._after.append(hook)
        return hook

    def observe_responses(self, hook: ResponseObserver) -> ResponseObserver:
        """Call ``hook(request, environ, status, body, started)`` once every response is decided, before it is sent.

        For metrics (:mod:`restkit.metrics`): it sees the final status line
        and WSGI body (a list of bytes, or an iterable of unknown length)
        of every response, errors included, and ``started``, the
        ``time.perf_counter()`` of the call's start; it cannot change the
        response, and what it raises is logged, never sent.  Unlike an
        after-hook it does not make the app build a :class:`Response` for
        every answer.  ``request`` is None only when a startup hook failed.
        """
        self._observers.append(hook)
        return hook

    def on_shutdown(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Run ``hook()`` when the server starts a graceful shutdown.

        restkit's server calls every hook in ``app.shutdown_hooks`` once it
        stops accepting, while in-flight requests still run: end long-lived
        streams here so that they finish before the grace period runs out.
        """
        self.shutdown_hooks.append(hook)
        return hook

    def on_startup(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Run ``hook()`` once per process before it serves: open pools, warm caches, check the database.

        Hooks run in the order registered, from :meth:`startup`.  Registering
        one after the app has started is a mistake (it would never run), and
        raises :class:`RuntimeError`.
        """
        if self._started:
            raise RuntimeError(f"startup hook {describe_handler(hook)} added after the app started: it would never run")
        self.startup_hooks.append(hook)
        return hook

    def startup(self) -> None:
        """Run the startup hooks, once: later calls, from any thread, return at once.

        restkit's ``serve()`` calls it before it binds.  Under another server
        the first request calls it (requests that arrive meanwhile wait), so
        calling it yourself where your server loads the app (gunicorn's
        ``post_worker_init``) fails the worker before it takes requests.

        Raises:
            StartupError: a hook raised; the message names the hook and the
                error.  The hooks that had returned are not run again by the
                next call, which retries the failed one and goes on.
        """
        if self._started:
            return
        with self._startup_lock:
            hooks = self.startup_hooks
            while self._startup_done < len(hooks):
                hook = hooks[self._startup_done]
                try:
                    hook()
                except Exception as exc:
                    problem = " ".join(str(exc).split()) or "(no message)"
                    raise StartupError(
                        f"startup hook {describe_handler(hook)} raised {type(exc).__name__}: {problem}"
                    ) from exc
                self._startup_done += 1
            self._started = True

    def add_error_handler(self, key: int | type[BaseException], handler: ErrorHandler) -> None:
        """Handle errors of a status code or exception class with ``handler(request, exc)``.

        The handler returns anything a route handler may return.  Exception
        classes are looked up along the exception's MRO, then the status of
        an :class:`HTTPError`.
        """
        if not (isinstance(key, int) or (isinstance(key, type) and issubclass(key, BaseException))):
            raise TypeError("error handlers are registered for a status code or an exception class")
        self._error_handlers[key] = handler

    def errorhandler(self, key: int | type[BaseException]) -> Callable[[ErrorHandler], ErrorHandler]:
        """Decorator form of :meth:`add_error_handler`."""

        def register(handler: ErrorHandler) -> ErrorHandler:
            self.add_error_handler(key, handler)
            return handler

        return register

    # -- the request cycle --------------------------------------------------------

    # PERF: one function though over C901's bound: it runs on every request, and in CPython 3.11 each
    # helper call costs about 35 ns, 0.7% of a 5 us in-process GET (timeit, Dec 2026); split into
    # answer / observe / start it would cost two or three such calls per request.
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:  # noqa: C901
        environ["restkit.app"] = self
        request: Request | None = None
        started = perf_counter() if self._observers else 0.0
        try:
            if not self._started:  # PERF: the only cost of startup hooks once started
                self.startup()
            try:
                for rewrite in self._before_routing:
                    rewrite(environ)
                # Built before the path is decoded, so that error handlers and
                # after-hooks get a request even when the path is not UTF-8.
                request = Request(environ, max_body_size=self.max_body_size, path=environ.get("PATH_INFO") or "/")
                if not request.path.isascii():
                    request.path = decode_path(request.path)
                result = self._dispatch(request, environ)
            except Exception as exc:
                if request is None:  # a before-routing hook refused: the request as it left the environ
                    request = Request(environ, max_body_size=self.max_body_size, path=environ.get("PATH_INFO") or "/")
                try:
                    result = self._handle_error(request, exc)
                except Exception as unhandled:
                    if not self._after:
                        raise
                    result = self._internal_error(request, unhandled, environ)  # after-hooks see the 500 too
            if self._after:
                response = render(result)
                for hook in self._after:
                    response = hook(request, response) or response
                status, headers, body = response.to_wsgi()
            elif type(result) is Response:  # a feature's answer (a 304) or the handler's own
                status, headers, body = result.to_wsgi()
            else:
                status, headers, body = wsgi_result(result)
            if type(body) is _Chunks and request.route is not None:
                body.origin = f"handler {describe_handler(request.route.handler)}"
        except Exception as exc:
            status, headers, body = self._internal_error(request, exc, environ).to_wsgi()
        if self._observers:
            for observe in self._observers:
                try:
                    observe(request, environ, status, body, started)
                except Exception:
                    _observer_failed(observe)
        start_response(status, headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return []
        return body

    def _dispatch(self, request: Request, environ: dict[str, Any]) -> Any:
        # A check's refusal (414, 406, 413) is answered by _refuse(), through the features that count
        # every request.  PERF(404): no try here, which a 404's exception would pay to pass through.
        if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > self.max_url_length:
            return self._refuse(request, URITooLong(f"request URL is longer than {self.max_url_length} characters"))
        route, params, allowed = self.router._lookup(request.method, request.path)  # match(), as a plain tuple
        if route is None:
            if self._features or self._before:
                return self._answer_unrouted(request, allowed)
            return self._unrouted(request, allowed)  # PERF(404): no frame between the NotFound and the app
        request.route = route
        request.params = params
        produces = route.options.get("produces", JSON_TYPE)
        accept = environ.get("HTTP_ACCEPT")
        # "*/*" (curl, requests, most API clients) admits everything: skip the parse.
        if produces and accept and accept != "*/*":
            media_type = produces.partition(";")[0]
            if not media_type_accepted(accept, media_type):
                return self._refuse(request, NotAcceptable(
                    f"this resource is only available as {media_type}; the Accept header excludes it"))
        if environ.get("CONTENT_LENGTH"):
            length = request.content_length
            if length is not None and length > self.max_body_size:
                return self._refuse(request, PayloadTooLarge(
                    f"request body is {length} bytes; the limit is {self.max_body_size}"))
        chain = self._chains.get(id(route))
        if chain is None:
            from .feature import chain_for  # PERF(lazy-import): on the first request of each route only

            chain = self._chains[id(route)] = chain_for(self, route) or ()
        if chain:
            return chain.run(request, params)  # the before-hooks and the handler run inside
        if self._before:
            early = self._run_before_hooks(request)
            if early is not None:
                return early
        result = route.handler(request, **params)
        if self.debug and "responses" in route.options:
            _check_declared(route, result)
        return result

    def _run_before_hooks(self, request: Request) -> Any:
        """The first value other than None a before-hook returns (it is sent instead of the handler's), or None."""
        for hook in self._before:
            early = hook(request)
            if early is not None:
                return early
        return None

    def _answer_unrouted(self, request: Request, allowed: frozenset[str]) -> Any:
        """Steps 2 to 5 of the router's own answers (404, 405, 308, OPTIONS): see :mod:`restkit.feature`.

        Before-hooks run for them too (``request.route`` is None), as after-hooks see every response.
        """
        if self._features:
            chain = self._router_chain(0, None, hooks=True)
            if chain:
                return chain.run(request, {"allowed": allowed})
        if self._before:
            early = self._run_before_hooks(request)
            if early is not None:
                return early
        return self._unrouted(request, allowed)

    def _refuse(self, request: Request, refused: HTTPError) -> Any:
        """A route check's refusal (414, 406, 413), through the features that see every answer, if any."""
        chain = self._router_chain(("refused", id(request.route)), request.route, hooks=False)
        if not chain:
            raise refused
        return chain.run(request, {"refused": refused})

    def _router_chain(self, key: Any, route: Route | None, *, hooks: bool) -> Any:
        """The chain of the router's own answers (``route`` None) or of a route check's refusal, or ()."""
        if not self._features:
            return ()
        chain = self._chains.get(key)
        if chain is None:
            from .feature import router_chain_for  # PERF(lazy-import)

            answer = self._unrouted if hooks else _raise_refusal
            chain = self._chains[key] = router_chain_for(self, route, answer, hooks=hooks) or ()
        return chain

    def _unrouted(self, request: Request, allowed: frozenset[str]) -> Any:
        """The answer for a path without a route for this method: 204 to OPTIONS, 405, 308 or 404."""
        method, path = request.method, request.path
        if allowed:
            if method == "OPTIONS":
                return Response(b"", 204, [("Allow", ", ".join(sorted(allowed)))])
            raise MethodNotAllowed(allowed,
                                   f"method {method} is not allowed for {path}; allowed: {', '.join(sorted(allowed))}")
        if self.redirect_slashes and path != "/":
            other = path[:-1] if path.endswith("/") else path + "/"
            if self.router._lookup(method, other)[0] is not None:
                from urllib.parse import quote, quote_from_bytes  # PERF(lazy-import)

                location = quote(request.script_name + other)
                if request.query_string:
                    # as received, but with anything a header cannot carry escaped
                    location += "?" + quote_from_bytes(request.query_string.encode("latin-1", "replace"), _QUERY_SAFE)
                return Response(b"", 308, [("Location", location)])
        raise NotFound(f"no resource at {path}")

    def _handle_error(self, request: Request, exc: Exception) -> Any:
        handlers = self._error_handlers
        if handlers:
            handler = None
            for cls in type(exc).__mro__:
                handler = handlers.get(cls)
                if handler is not None:
                    break
            if handler is None and isinstance(exc, HTTPError):
                handler = handlers.get(exc.status)
            if handler is not None:
                return handler(request, exc)
        if isinstance(exc, HTTPError):
            if not exc.headers:  # the same answer, on the fast path of wsgi_result()
                return exc.to_dict(), exc.status
            return Response(json_dumps(exc.to_dict()), exc.status, exc.headers, content_type=JSON_TYPE)
        raise exc

    def _internal_error(self, request: Request | None, exc: BaseException,
                        environ: Mapping[str, Any] | None = None) -> Response:
        """Log ``exc`` with what was being served, and answer 500.

        The answer names the request's ``restkit.request_id``, if any.
        """
        import logging  # PERF(lazy-import): by the first 500 only
        import traceback

        if request is None:
            where = "a request"
        else:
            handler = "no handler" if request.route is None else f"handler {describe_handler(request.route.handler)}"
            where = f"{request.method} {escape(request.path)} ({handler})"
        # escape(): the path and the error's text may hold what a client sent (a %0a makes a line).
        logging.getLogger("restkit").error("500 on %s: %s: %s", where, type(exc).__name__, escape(str(exc)),
                                           exc_info=exc)
        request_id = (environ or {}).get("restkit.request_id")  # see restkit.requestid
        if not self.debug and request_id is None:
            return Response(_INTERNAL, 500, content_type=JSON_TYPE)
        detail: dict[str, Any] = {"error": "internal server error"}
        if request_id is not None:
            detail["request_id"] = request_id
        if self.debug:
            detail["detail"], detail["traceback"] = f"{type(exc).__name__}: {exc}", traceback.format_exception(exc)
        return Response(json_dumps(detail), 500, content_type=JSON_TYPE)


def describe_handler(handler: Handler) -> str:
    """``module.function`` of the user's function behind ``handler``."""
    function = getattr(handler, "__wrapped__", handler)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    module = getattr(function, "__module__", None)
    return f"{module}.{name}" if module and module != "__main__" else name


def _raise_refusal(request: Request, refused: HTTPError) -> Any:
    """The answer of a refusal's chain (see :meth:`App._refuse`): the refusal itself."""
    raise refused


def _observer_failed(observe: ResponseObserver) -> None:
    import logging  # PERF(lazy-import): by the first failure only

    logging.getLogger("restkit").exception("response observer %s failed", describe_handler(observe))


def _check_declared(route: Route, result: Any) -> None:
    """With ``debug=True``: refuse a return value that ``responses=`` does not describe.

    Raises:
        ResponseMismatch: the status is not declared, or the body does not fit its model.
    """
    declared = route.options["responses"]
    if isinstance(result, Response):
        value, status, has_value = None, result.status, False
    elif type(result) is tuple and len(result) in (2, 3):
        value, status, has_value = result[0], int(result[1]), True
    else:
        value, status, has_value = result, 200 if result is not None else 204, True
    if isinstance(value, Response):
        has_value = False
    where = f"handler {describe_handler(route.handler)} for {route.path!r}"
    if status not in declared:
        statuses = ", ".join(str(code) for code in declared)
        raise ResponseMismatch(f"{where} answered {status}, but its responses= declares only {statuses}")
    model = declared[status]
    if not has_value or value is None or model is None:
        if model is None and has_value and value not in (None, b"", ""):
            raise ResponseMismatch(f"{where} answered {status} with a body, but responses= declares none for {status}")
        return
    if not isinstance(value, (dict, list)) and not hasattr(type(value), "__dataclass_fields__"):
        raise ResponseMismatch(
            f"{where} answered {status} with {type(value).__name__}, but responses= declares {_name(model)}"
        )
    import json

    from .validation import ValidationError, validate

    try:
        validate(model, json.loads(json_dumps(value)))
    except ValidationError as exc:
        problems = "; ".join(f"{path}: {problem}" for path, problem in exc.details.items())
        raise ResponseMismatch(
            f"{where} answered {status} with a body that is not a {_name(model)}: {problems}"
        ) from None


def _name(model: Any) -> str:
    return getattr(model, "__name__", None) or repr(model)


class StartupError(Exception):
    """A startup hook failed: the app must not serve.  The message is one line naming the hook and its error."""


class ResponseMismatch(Exception):
    """A handler's answer does not fit its declared ``responses=`` (checked with ``debug=True``)."""
