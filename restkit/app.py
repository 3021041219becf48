"""The WSGI application: match, call, render, and turn errors into JSON.

Theory of operation
-------------------
``App.__call__`` is the whole request cycle.  It decodes the path, checks
the URL length, asks the router for a match, checks ``Accept`` against the
route's ``produces`` and ``Content-Length`` against ``max_body_size``, runs
the before-hooks, calls the handler with the request and the path
parameters, and renders what it returned.  Any :class:`HTTPError` on the
way becomes its status with ``{"error": ...}``; any other exception is
logged with its traceback and becomes ``500 {"error": "internal server
error"}``.  Error handlers registered for a status or an exception class
get the first say.

The common cases (a dict, list or str with no after-hooks) skip building a
:class:`Response` object; everything else goes through :func:`render`.

A route with opt-in features (``auth=``, ``rate_limit=``, ``conditional=``,
or any installed with :meth:`App.use`) runs its chain instead: the features'
steps around the before-hooks and the handler (see :mod:`restkit.feature`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import HTTPError, MethodNotAllowed, NotAcceptable, NotFound, PayloadTooLarge, URITooLong
from .request import DEFAULT_MAX_BODY_SIZE, Request, decode_path, media_type_accepted
from .response import JSON_TYPE, TEXT_TYPE, Response, json_dumps, render
from .routing import Converter, Handler, Route, Router
from .status import allows_body, status_line

__all__ = ["App"]


StartResponse = Callable[..., Any]
BeforeHook = Callable[[Request], Any]
AfterHook = Callable[[Request, Response], "Response | None"]
ErrorHandler = Callable[[Request, BaseException], Any]

_OK = "200 OK"  # status_line(200), written out: computing it here would import http with restkit
_JSON_HEADER = ("Content-Type", JSON_TYPE)
_TEXT_HEADER = ("Content-Type", TEXT_TYPE)
_QUERY_SAFE = "!$%&'()*+,/:;=?@[]~"  # %: escapes already in the query stay as they are
_INTERNAL = b'{"error":"internal server error"}'
_FEATURE_OPTIONS = frozenset({"rate_limit", "auth", "conditional", "paging"})  # restkit.feature.FEATURE_OPTIONS


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
        self.router = Router()
        self.max_body_size = max_body_size
        self.max_url_length = max_url_length
        self.debug = debug
        self.redirect_slashes = redirect_slashes
        self._before: list[BeforeHook] = []
        self._after: list[AfterHook] = []
        self._error_handlers: dict[int | type[BaseException], ErrorHandler] = {}
        # Called by a server that stops gracefully (restkit.serve does), so an
        # app can end its endless streams instead of waiting for the cut.
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.title, self.version, self.description = title, version, description
        self.security_schemes = dict(security_schemes or {})
        # Features installed with use(), and each route's chain of them (see restkit.feature).
        self._features: list[Any] = []
        self._chains: dict[int, Any] = {}
        if openapi:
            self._add_doc_routes()

    # -- building the app (delegated to the router) ----------------------------

    def add_route(self, path: str, handler: Handler, **options: Any) -> Route:
        """See :meth:`Router.add_route`.  ``produces=`` (default JSON) is
        the media type checked against ``Accept`` (None: no check)."""
        return self.router.add_route(path, handler, **options)

    def route(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """``@app.route(path, methods=[...], name=None, produces=...)``."""
        return self.router.route(path, **options)

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.router.get(path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.router.post(path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.router.put(path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.router.patch(path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.router.delete(path, **options)

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
        from .openapi import build_openapi  # imported on use: keeps `import restkit` fast

        return build_openapi(
            self,
            title=self.title,
            version=self.version,
            description=self.description,
            security_schemes=self.security_schemes,
        )

    def _add_doc_routes(self) -> None:
        from .docs import docs_page  # imported on use: keeps `import restkit` fast

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

        See :mod:`restkit.feature`; a route option of the same name (``auth=``,
        ``rate_limit=``...) replaces it for that route.
        """
        self._features.append(feature)
        self._chains.clear()
        feature.install(self)
        return feature

    def before_request(self, hook: BeforeHook) -> BeforeHook:
        """Run ``hook(request)`` before each routed handler; a value other than
        None is sent instead of calling the handler."""
        self._before.append(hook)
        return hook

    def after_request(self, hook: AfterHook) -> AfterHook:
        """Run ``hook(request, response)`` on every response, errors included;
        it may change the response or return a new one."""
        self._after.append(hook)
        return hook

    def on_shutdown(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Run ``hook()`` when the server starts a graceful shutdown.

        restkit's server calls every hook in ``app.shutdown_hooks`` once it
        stops accepting, while in-flight requests still run: end long-lived
        streams here so that they finish before the grace period runs out.
        """
        self.shutdown_hooks.append(hook)
        return hook

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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["restkit.app"] = self
        request: Request | None = None
        try:
            try:
                # Built before the path is decoded, so that error handlers and
                # after-hooks get a request even when the path is not UTF-8.
                request = Request(environ, max_body_size=self.max_body_size, path=environ.get("PATH_INFO") or "/")
                request.path = decode_path(request.path)
                result = self._dispatch(request, environ)
            except Exception as exc:
                try:
                    result = self._handle_error(request, exc)
                except Exception as unhandled:
                    if not self._after:
                        raise
                    # after-hooks see the 500 too (CORS headers, request ids...)
                    _, error_headers, error_body = self._internal_error(unhandled)
                    result = Response(error_body[0], 500, error_headers)
            if self._after:
                response = render(result)
                for hook in self._after:
                    response = hook(request, response) or response  # type: ignore[arg-type]
                status, headers, body = response.to_wsgi()
            else:
                # The common returns are sent without building a Response:
                # a dict, list or str, alone or as (value, status) with a
                # status that carries a body.  render() does the rest.
                value, status = result, _OK
                kind = type(value)
                if kind is tuple and len(value) == 2:
                    code = value[1]
                    if type(code) is int and 200 <= code < 600 and allows_body(code):
                        value, status = value[0], status_line(code)
                        kind = type(value)
                if kind is dict or kind is list:
                    data = json_dumps(value)
                    headers, body = [_JSON_HEADER, ("Content-Length", str(len(data)))], [data]
                elif kind is str:
                    data = value.encode("utf-8")
                    headers, body = [_TEXT_HEADER, ("Content-Length", str(len(data)))], [data]
                else:
                    status, headers, body = render(result).to_wsgi()
        except Exception as exc:
            status, headers, body = self._internal_error(exc)
        start_response(status, headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return []
        return body

    def _dispatch(self, request: Request, environ: dict[str, Any]) -> Any:
        if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > self.max_url_length:
            raise URITooLong(f"request URL is longer than {self.max_url_length} characters")
        method = request.method
        path = request.path
        route, params, allowed = self.router.lookup(method, path)
        if route is None:
            if allowed:
                if method == "OPTIONS":
                    return Response(b"", 204, [("Allow", ", ".join(sorted(allowed)))])
                raise MethodNotAllowed(allowed, f"method {method} is not allowed for {path}; allowed: {', '.join(sorted(allowed))}")
            return self._not_found(request)
        request.route = route
        request.params = params
        options = route.options
        produces = options.get("produces", JSON_TYPE)
        accept = environ.get("HTTP_ACCEPT")
        # "*/*" (curl, requests, most API clients) admits everything: skip the parse.
        if produces and accept and accept != "*/*" and not media_type_accepted(accept, produces.partition(";")[0]):
            raise NotAcceptable(f"this resource is only available as {produces.partition(';')[0]}; the Accept header excludes it")
        if environ.get("CONTENT_LENGTH"):
            length = request.content_length
            if length is not None and length > self.max_body_size:
                raise PayloadTooLarge(f"request body is {length} bytes; the limit is {self.max_body_size}")
        chain = self._chains.get(id(route))
        if chain is None:
            chain = ()
            if self._features or not _FEATURE_OPTIONS.isdisjoint(options):
                from .feature import chain_for  # on the first request of each route with features only

                chain = chain_for(self, route) or ()
            self._chains[id(route)] = chain
        if chain:
            return chain.run(request, params)
        if self._before:
            for hook in self._before:
                early = hook(request)
                if early is not None:
                    return early
        return route.handler(request, **params)

    def _not_found(self, request: Request) -> Response:
        path = request.path
        if self.redirect_slashes and path != "/":
            other = path[:-1] if path.endswith("/") else path + "/"
            if self.router.lookup(request.method, other)[0] is not None:
                from urllib.parse import quote, quote_from_bytes  # not at the top: see restkit.forms

                location = quote(request.script_name + other)
                if request.query_string:
                    # as received, but with anything a header cannot carry escaped
                    location += "?" + quote_from_bytes(request.query_string.encode("latin-1", "replace"), _QUERY_SAFE)
                return Response(b"", 308, [("Location", location)])
        raise NotFound(f"no resource at {path}")

    def _handle_error(self, request: Request | None, exc: Exception) -> Any:
        handlers = self._error_handlers
        if handlers and request is not None:
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
            if not exc.headers:  # the same answer, on the fast path of __call__
                return exc.to_dict(), exc.status
            return Response(json_dumps(exc.to_dict()), exc.status, exc.headers, content_type=JSON_TYPE)
        raise exc

    def _internal_error(self, exc: BaseException) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        # logging and traceback are imported on the first 500: together they
        # are half of what `import restkit` would cost otherwise.
        import logging
        import traceback

        logging.getLogger("restkit").error("unhandled exception while serving a request", exc_info=exc)
        body = _INTERNAL
        if self.debug:
            body = json_dumps({"error": "internal server error", "traceback": traceback.format_exception(exc)})
        return status_line(500), [_JSON_HEADER, ("Content-Length", str(len(body)))], [body]

