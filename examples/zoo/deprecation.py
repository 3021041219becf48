"""v1's retirement, announced on every v1 answer: ``Deprecation``, ``Sunset`` and the successor.

When the operator sets a sunset date (``--v1-sunset 2027-06-30``,
``ZOO_V1_SUNSET``, ``make_app(v1_sunset=...)``), every answer under ``/v1``
(errors included) carries

* ``Deprecation: @1767225600`` (RFC 9745: a structured-field date, the Unix
  time v1 was deprecated): ``--v1-deprecated`` when given, else the time the
  app was made (its start), in whole seconds.  Several instances should be
  given one ``--v1-deprecated`` so that they say the same;
* ``Sunset: Wed, 30 Jun 2027 00:00:00 GMT`` (RFC 8594: an HTTP-date), after
  which v1 may stop answering;
* ``Link: </v2/zoos/1>; rel="successor-version"`` (RFC 5829): the v2
  equivalent of the resource asked for, or ``/v2`` where there is none (a
  separate ``Link`` field beside a list's paging ``Link``).

and the API document marks every v1 operation ``deprecated: true`` (the
routes are added with restkit's ``deprecated=True`` route option:
``make_app`` gives it to v1's routers) and documents the headers.  Without
a sunset date nothing changes.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Callable
from typing import Any

from restkit import Request, Response

__all__ = ["Deprecation", "parse_moment"]

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def parse_moment(text: str) -> datetime.datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO-8601 date and time (UTC unless it names an offset).

    Raises:
        ValueError: anything else.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.date.fromisoformat(text)
            return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO-8601 date and time") from None
    return moment.replace(tzinfo=datetime.timezone.utc) if moment.tzinfo is None else moment


class Deprecation:
    """The announcement of the retirement of the API version under ``prefix``.

    Args:
        sunset: when the version may stop answering.
        deprecated: since when it is deprecated (default: now, or the sunset if that is past).
        successor: ``(method, path)`` -> the path of the successor version's equivalent.
        prefix: the version's path prefix.

    Raises:
        ValueError: a sunset before the deprecation.
    """

    def __init__(self, sunset: datetime.datetime, successor: Callable[[str, str], str], *,
                 deprecated: datetime.datetime | None = None, prefix: str = "/v1") -> None:
        if deprecated is None:
            deprecated = min(datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0), sunset)
        if sunset < deprecated:
            raise ValueError(f"the sunset ({sunset.isoformat()}) is before the deprecation ({deprecated.isoformat()})")
        self.prefix = prefix
        self.successor = successor
        self.deprecated = deprecated
        self.sunset = sunset
        # the same on every answer: made once
        self._fixed = [("Deprecation", f"@{int(deprecated.timestamp())}"),
                       ("Sunset", email.utils.format_datetime(sunset.astimezone(datetime.timezone.utc), usegmt=True))]

    def covers(self, path: str) -> bool:
        """Whether ``path`` belongs to the deprecated version."""
        return path == self.prefix or path.startswith(self.prefix + "/")

    def headers(self, method: str, path: str, script_name: str = "") -> list[tuple[str, str]]:
        """``Deprecation``, ``Sunset`` and ``Link`` for an answer to ``method`` ``path``."""
        target = script_name + self.successor(method, path)
        return [*self._fixed, ("Link", f'<{target}>; rel="successor-version"')]

    def announce(self, request: Request | None, response: Response) -> None:
        """The after-request hook: add the headers to every answer of the deprecated version."""
        if request is None or not self.covers(request.path):
            return
        for name, value in self.headers(request.method, request.path, request.script_name):
            response.add_header(name, value)

    def document(self, document: dict[str, Any]) -> None:
        """Document the headers of the version's answers in an OpenAPI ``document``, and say when it sunsets.

        The operations themselves are marked ``deprecated`` by their routes' ``deprecated=True``.
        """
        headers = {
            "Deprecation": {"description": "RFC 9745: since when this version is deprecated (@unix-seconds)",
                            "schema": {"type": "string"}},
            "Sunset": {"description": "RFC 8594: when this version may stop answering (an HTTP-date)",
                       "schema": {"type": "string"}},
        }
        for path, item in document.get("paths", {}).items():
            if not self.covers(path):
                continue
            for method, operation in item.items():
                if method not in _METHODS:
                    continue
                for response in operation.get("responses", {}).values():
                    if "$ref" not in response:
                        response.setdefault("headers", {}).update(headers)
        note = (f" Version 1 is deprecated since {self.deprecated.date().isoformat()} and sunsets on"
                f" {self.sunset.date().isoformat()}: use /v2.")
        document.setdefault("info", {})["description"] = document["info"].get("description", "") + note
