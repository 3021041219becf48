"""Times the server writes: the ``Date`` header and access-log timestamps."""

from __future__ import annotations

import time

__all__ = ["DateHeader"]


class DateHeader:
    """The ``Date`` value (RFC 9110 section 5.6.7), formatted once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._text = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second))
            self._second = second
        return self._text
