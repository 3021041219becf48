"""HTTP status lines and predicates, derived from :class:`http.HTTPStatus`.

Nothing here is a hand-typed table: reason phrases come from the running
Python, so they follow it (422 is "Unprocessable Entity" on 3.11 and
"Unprocessable Content" on 3.13).  Status lines are built once and cached,
ready to hand to WSGI's ``start_response``.
"""

from __future__ import annotations

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

_LINES: dict[int, str] = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}


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
