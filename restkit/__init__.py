"""restkit: a small, fast WSGI micro-framework built on the standard library alone.

PERF(lazy-import): ``import restkit`` loads only what every request needs.
Standard-library modules that only some apps or some requests need
(``http``, ``json``, ``urllib.parse``, ``email``, ``uuid``, ``logging``,
``inspect``, ``dataclasses``) and restkit's own optional parts (the server,
validation, the API document) are imported where they are first used, by
an ``import`` statement inside the function, tagged ``# PERF(lazy-import)``.
Python caches modules in ``sys.modules``, so later calls pay a dictionary
lookup.  Public names from those parts are loaded the same way by the
module ``__getattr__`` below.  ``tests/test_packaging.py`` checks that
``import restkit`` loads none of them.
"""

from typing import TYPE_CHECKING, Any

from . import status
from .app import App, StartupError
from .datastructures import Headers, MultiDict
from .errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    HTTPError,
    InternalServerError,
    LengthRequired,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
    URITooLong,
)
from .forms import UploadedFile
from .request import Request
from .response import Response, json_dumps, multipart_stream
from .routing import BuildError, Converter, Route, RouteError, Router

if TYPE_CHECKING:
    from .conditional import etag_of
    from .server import serve
    from .validation import UNSET, Field, ValidationError, given

__version__ = "0.1.0"

# PERF(lazy-import): the server is not needed by an app that gunicorn
# imports, nor typed validation by an app that declares no model, nor
# conditional requests by an app that has none.
_LAZY = {"serve": "server", "Field": "validation", "UNSET": "validation", "ValidationError": "validation",
         "given": "validation", "etag_of": "conditional"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'restkit' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


__all__ = [
    "App",
    "BadRequest",
    "BuildError",
    "Conflict",
    "Field",
    "Converter",
    "Forbidden",
    "Gone",
    "Headers",
    "HTTPError",
    "InternalServerError",
    "LengthRequired",
    "MethodNotAllowed",
    "MultiDict",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "Request",
    "RequestHeaderFieldsTooLarge",
    "RequestTimeout",
    "Response",
    "Route",
    "RouteError",
    "Router",
    "ServiceUnavailable",
    "StartupError",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "UploadedFile",
    "URITooLong",
    "UNSET",
    "ValidationError",
    "etag_of",
    "given",
    "json_dumps",
    "multipart_stream",
    "serve",
    "status",
]
