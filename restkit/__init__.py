"""restkit: a small, fast WSGI micro-framework built on the standard library alone."""

from typing import TYPE_CHECKING, Any

from . import status
from .app import App
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
    from .server import serve


def __getattr__(name: str) -> Any:
    # The server (socket, threads, logging) loads on first use of restkit.serve:
    # an app imported by gunicorn or a test never pays for it.
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(f"module 'restkit' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "App",
    "BadRequest",
    "BuildError",
    "Conflict",
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
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "UploadedFile",
    "URITooLong",
    "json_dumps",
    "multipart_stream",
    "serve",
    "status",
]
