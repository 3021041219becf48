"""Enum members as attributes of a plain class, for the server's hot paths.

``members(ConnectionState).IDLE is ConnectionState.IDLE``: the same
objects, read faster.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar, cast

__all__ = ["members"]

E = TypeVar("E", bound=Enum)


def members(enum_class: type[E]) -> type[E]:
    """A plain class whose attributes are the members of ``enum_class``.

    # PERF: on Python 3.11, ``State.IDLE`` goes through the slot of
    # EnumType.__getattr__, which wraps and calls __getattribute__: about
    # 300 ns a read against 55 ns for a plain class attribute (3.12 dropped
    # the hook).  The server reads members some 40 times a request, which
    # was about a tenth of its own time.
    """
    return cast(type[E], type(f"{enum_class.__name__}Members", (), {"__slots__": (), **enum_class.__members__}))
