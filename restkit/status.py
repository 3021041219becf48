"""HTTP status lines and predicates, derived from :class:`http.HTTPStatus`.

The public face of the status rules of :mod:`restkit.httprules` (one table
of status lines, one list of the statuses without a body), with the class
predicates.  Nothing there is a hand-typed table: reason phrases come from the running
Python, so they follow it (422 is "Unprocessable Entity" on 3.11 and
"Unprocessable Content" on 3.13).  Status lines are built once and cached,
ready to hand to WSGI's ``start_response``.

:mod:`http` is imported on the first status line asked for, not with
restkit (PERF(lazy-import)): building the ``HTTPStatus`` enum costs about
a tenth of what ``import restkit`` takes otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .httprules import allows_body, reason_phrase, status_line

if TYPE_CHECKING:
    from http import HTTPStatus

__all__ = [
    "HTTPStatus",
    "allows_body",
    "is_client_error",
    "is_error",
    "is_informational",
    "is_redirect",
    "is_server_error",
    "is_success",
    "reason_phrase",
    "status_line",
]


def __getattr__(name: str) -> Any:
    if name == "HTTPStatus":  # re-exported, loaded on first use
        from http import HTTPStatus

        return HTTPStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_informational(code: int) -> bool:
    """True for 1xx codes."""
    return 100 <= code < 200


def is_success(code: int) -> bool:
    """True for 2xx codes."""
    return 200 <= code < 300


def is_redirect(code: int) -> bool:
    """True for 3xx codes."""
    return 300 <= code < 400


def is_client_error(code: int) -> bool:
    """True for 4xx codes."""
    return 400 <= code < 500


def is_server_error(code: int) -> bool:
    """True for 5xx codes."""
    return 500 <= code < 600


def is_error(code: int) -> bool:
    """True for 4xx and 5xx codes."""
    return 400 <= code < 600
