"""HTTP status lines and predicates, derived from :class:`http.HTTPStatus`.

Nothing here is a hand-typed table: reason phrases come from the running
Python, so they follow it (422 is "Unprocessable Entity" on 3.11 and
"Unprocessable Content" on 3.13).  Status lines are built once and cached,
ready to hand to WSGI's ``start_response``.

:mod:`http` is imported on the first status line asked for, not with
restkit (PERF(lazy-import)): building the ``HTTPStatus`` enum costs about
a tenth of what ``import restkit`` takes otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

# Every line by code; empty until the first lookup fills it from HTTPStatus.
_LINES: dict[int, str] = {}


def __getattr__(name: str) -> Any:
    if name == "HTTPStatus":  # re-exported, loaded on first use
        from http import HTTPStatus

        return HTTPStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fill_lines() -> None:
    from http import HTTPStatus

    # Built aside and added in one update, so another thread never sees half a table.
    lines = {int(member): f"{int(member)} {member.phrase}" for member in HTTPStatus}
    _LINES.update(lines)


def reason_phrase(code: int) -> str:
    """Return the reason phrase for ``code`` ("Not Found" for 404).

    Codes that :class:`http.HTTPStatus` does not know get the generic phrase
    of their class ("Client Error" for an unknown 4xx).

    Raises:
        ValueError: ``code`` is not between 100 and 599.
    """
    return status_line(code).partition(" ")[2]


def status_line(code: int) -> str:
    """Return the WSGI status line for ``code``: ``status_line(404) == "404 Not Found"``.

    Raises:
        ValueError: ``code`` is not an integer between 100 and 599.
    """
    if type(code) is not int:  # 404.0 and True hash like ints: refuse them before the lookup
        if isinstance(code, bool) or not isinstance(code, int):
            raise ValueError(f"status code must be an int, not {type(code).__name__}")
        code = int(code)  # an HTTPStatus member or another int subclass
    try:
        return _LINES[code]
    except KeyError:
        pass
    if not _LINES:  # the first lookup: load the table, then look again
        _fill_lines()
        if code in _LINES:
            return _LINES[code]
    if not 100 <= code <= 599:
        raise ValueError(f"status code must be between 100 and 599, not {code}")
    generic = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error"}
    line = f"{code} {generic[code // 100]}"
    _LINES[code] = line
    return line


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


def allows_body(code: int) -> bool:
    """False for the codes that must not carry a body: 1xx, 204, 205 and 304 (RFC 9110)."""
    return not (code < 200 or code == 204 or code == 205 or code == 304)
