"""Multi-value mappings for query strings, forms and headers; read-only records.

:class:`MultiDict` keeps every value of a repeated key in order; plain item
access gives the first one, as in Werkzeug.  :class:`Headers` does the same
with case-insensitive names.  :class:`Record` is the base of restkit's small
immutable value classes (a route, a path parameter, an uploaded file).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar, overload

__all__ = ["Headers", "MultiDict", "Record"]

V = TypeVar("V")
D = TypeVar("D")


class MultiDict(Mapping[str, V], Generic[V]):
    """An immutable mapping whose keys may repeat.

    ``md[key]`` and ``md.get(key)`` give the first value, ``md.getall(key)``
    every value in order.  ``len()`` and iteration count distinct keys.
    """

    __slots__ = ("_items", "_first")

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        self._items: list[tuple[str, V]] = list(items)
        first = dict(self._items)
        if len(first) < len(self._items):  # a key repeats: its first value wins, not its last
            first = {}
            for key, value in self._items:
                first.setdefault(key, value)
        self._first = first

    def __getitem__(self, key: str) -> V:
        return self._first[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __contains__(self, key: object) -> bool:
        return key in self._first

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: V | D) -> V | D: ...
    def get(self, key: str, default: object = None) -> object:
        """The first value of ``key``, or ``default``."""
        return self._first.get(key, default)

    def getall(self, key: str) -> list[V]:
        """Every value of ``key`` in order; an empty list when it is absent."""
        return [v for k, v in self._items if k == key]

    def has_repeats(self) -> bool:
        """Whether some key has more than one value."""
        return len(self._first) != len(self._items)

    def multi_items(self) -> list[tuple[str, V]]:
        """Every ``(key, value)`` pair, repeats included, in order."""
        return list(self._items)

    def to_dict(self) -> dict[str, V]:
        """A plain dict of the first value of each key."""
        return dict(self._first)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return self._items == other._items
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class Headers(Mapping[str, str]):
    """HTTP headers: case-insensitive names, several values per name.

    Built from a list of ``(name, value)`` pairs.  ``headers["content-type"]``
    gives the first value, ``headers.getall("set-cookie")`` all of them.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)
        index: dict[str, str] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), value)
        self._index = index

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str | D) -> str | D: ...
    def get(self, name: str, default: object = None) -> object:
        """The first value of ``name`` (any case), or ``default``."""
        return self._index.get(name.lower(), default)

    def getall(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in order."""
        lowered = name.lower()
        return [v for k, v in self._items if k.lower() == lowered]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair as received."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Record:
    """A read-only record: what restkit needs of ``@dataclass(frozen=True)``.

    Fields are the ``__slots__``; a subclass's typed ``__init__`` sets them
    with :meth:`_fill`.  Records compare and hash by their fields, print as
    ``Name(field=value, ...)`` (the fields in ``_repr_fields``) and refuse
    assignment.  PERF(lazy-import): not ``@dataclass``, because
    :mod:`dataclasses` imports :mod:`inspect`, which would double the time
    ``import restkit`` takes.
    """

    __slots__: ClassVar[tuple[str, ...]] = ()
    _repr_fields: ClassVar[tuple[str, ...] | None] = None
    # The fields the hash is made of (default: all).  A record with an
    # unhashable field (a dict) hashes by the others: equal records still
    # have equal hashes, since they agree on every field.
    _hash_fields: ClassVar[tuple[str, ...] | None] = None

    def _fill(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to {name!r}: a {type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete {name!r}: a {type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        values: tuple[Any, ...] = other._values()
        return self._values() == values

    def __hash__(self) -> int:
        if self._hash_fields is None:
            return hash(self._values())
        return hash(tuple(getattr(self, name) for name in self._hash_fields))

    def __repr__(self) -> str:
        shown = self._repr_fields if self._repr_fields is not None else self.__slots__
        return f"{type(self).__name__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"
