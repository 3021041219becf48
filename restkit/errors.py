"""The :class:`HTTPError` hierarchy: errors as data.

Raise one from a handler (or a hook, or a converter) and the app answers
with its status and the JSON body ``{"error": "<message>"}``.  Each
subclass only names its status; the message defaults to the reason phrase.
Extra keyword arguments become extra fields of the body, for example
``UnprocessableEntity("validation failed", details={"name": "required"})``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .httprules import check_header
from .status import reason_phrase

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "HTTPError",
    "InternalServerError",
    "LengthRequired",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "RequestHeaderFieldsTooLarge",
    "RequestTimeout",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "URITooLong",
]


class HTTPError(Exception):
    """An error answer: a status, a message and optional headers and fields.

    Args:
        message: what went wrong, for the client; defaults to the reason phrase.
        status: the status code, when raising ``HTTPError`` itself rather
            than a subclass.
        headers: extra response headers.
        **fields: extra members of the JSON body (``details=...``).
    """

    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        **fields: Any,
    ) -> None:
        if status is not None:
            self.status = int(status)  # type: ignore[misc]
        self.message = message if message is not None else reason_phrase(self.status)
        # Checked here, where they are set, not when the error is rendered (ValueError: see check_header).
        self.headers: list[tuple[str, str]] = [
            check_header(name, value)
            for name, value in (headers.items() if isinstance(headers, Mapping) else headers or ())
        ]
        self.fields = fields
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: ``{"error": message, **fields}``."""
        return {"error": self.message, **self.fields}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class _RetryAfter(HTTPError):
    """An error that may tell the client when to try again (``Retry-After``)."""

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if retry_after is not None:
            self.headers.append(("Retry-After", str(max(0, int(retry_after)))))


class BadRequest(HTTPError):
    status = 400


class Unauthorized(HTTPError):
    """401; sends ``WWW-Authenticate`` (default ``Bearer``)."""

    status = 401

    def __init__(self, message: str | None = None, *, www_authenticate: str = "Bearer", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.append(check_header("WWW-Authenticate", www_authenticate))


class Forbidden(HTTPError):
    status = 403


class NotFound(HTTPError):
    status = 404


class MethodNotAllowed(HTTPError):
    """405; ``allowed`` becomes the ``Allow`` header."""

    status = 405

    def __init__(self, allowed: Iterable[str], message: str | None = None, **kwargs: Any) -> None:
        self.allowed = sorted(set(allowed))
        super().__init__(message, **kwargs)
        self.headers.append(("Allow", ", ".join(self.allowed)))


class NotAcceptable(HTTPError):
    status = 406


class RequestTimeout(HTTPError):
    status = 408


class Conflict(HTTPError):
    status = 409


class Gone(HTTPError):
    status = 410


class LengthRequired(HTTPError):
    status = 411


class PreconditionFailed(HTTPError):
    status = 412


class PayloadTooLarge(_RetryAfter):
    status = 413


class URITooLong(HTTPError):
    status = 414


class UnsupportedMediaType(HTTPError):
    status = 415


class UnprocessableEntity(HTTPError):
    status = 422


class PreconditionRequired(HTTPError):
    status = 428


class TooManyRequests(_RetryAfter):
    status = 429


class RequestHeaderFieldsTooLarge(HTTPError):
    status = 431


class InternalServerError(HTTPError):
    status = 500


class ServiceUnavailable(_RetryAfter):
    status = 503
