"""restkit.datastructures: MultiDict and Headers."""

from __future__ import annotations

import pytest

from restkit import Headers, MultiDict
from restkit.datastructures import Record


@pytest.fixture
def md() -> MultiDict[str]:
    return MultiDict([("a", "1"), ("b", "2"), ("a", "3")])


def test_multidict_first_value_wins(md: MultiDict[str]) -> None:
    assert md["a"] == "1"
    assert md.get("a") == "1"
    assert md.getall("a") == ["1", "3"]
    assert md.getall("b") == ["2"]


def test_multidict_missing_keys(md: MultiDict[str]) -> None:
    assert md.get("zzz") is None
    assert md.get("zzz", "default") == "default"
    assert md.getall("zzz") == []
    with pytest.raises(KeyError):
        md["zzz"]


def test_multidict_counts_distinct_keys_in_order(md: MultiDict[str]) -> None:
    assert len(md) == 2
    assert list(md) == ["a", "b"]
    assert "a" in md and "zzz" not in md
    assert md.multi_items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert md.to_dict() == {"a": "1", "b": "2"}
    assert dict(md) == {"a": "1", "b": "2"}


def test_multidict_is_immutable_and_copies_input() -> None:
    items = [("a", "1")]
    md = MultiDict(items)
    items.append(("a", "2"))
    assert md.getall("a") == ["1"]
    with pytest.raises(TypeError):
        md["a"] = "x"  # type: ignore[index]
    md.multi_items().append(("b", "x"))
    assert "b" not in md


def test_multidict_equality_and_hash(md: MultiDict[str]) -> None:
    assert md == MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert md != MultiDict([("a", "1"), ("a", "3"), ("b", "2")])  # order of repeats matters
    assert MultiDict([("a", "1")]) == {"a": "1"}
    with pytest.raises(TypeError):
        hash(md)
    assert repr(MultiDict([("a", "1")])) == "MultiDict([('a', '1')])"


def test_empty_multidict() -> None:
    md: MultiDict[str] = MultiDict()
    assert len(md) == 0 and list(md) == [] and md.multi_items() == []
    assert not md.has_repeats()


def test_multidict_says_whether_a_key_repeats(md: MultiDict[str]) -> None:
    assert md.has_repeats()
    assert not MultiDict([("a", "1"), ("b", "1")]).has_repeats()


@pytest.fixture
def headers() -> Headers:
    return Headers([("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-Empty", "")])


@pytest.mark.parametrize("name", ["Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
def test_headers_case_insensitive(headers: Headers, name: str) -> None:
    assert headers[name] == "text/plain"
    assert headers.get(name) == "text/plain"
    assert name in headers
    assert headers.getall(name) == ["text/plain"]


def test_headers_multiple_values(headers: Headers) -> None:
    assert headers["SET-COOKIE"] == "a=1"
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert headers.get("X-Empty") == ""
    assert headers.multi_items() == [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
                                     ("X-Empty", "")]


def test_headers_missing(headers: Headers) -> None:
    assert headers.get("nope") is None
    assert headers.get("nope", "d") == "d"
    assert headers.getall("nope") == []
    assert "nope" not in headers
    assert 42 not in headers
    with pytest.raises(KeyError):
        headers["nope"]


def test_headers_len_iter_repr(headers: Headers) -> None:
    assert len(headers) == 3
    assert sorted(headers) == ["content-type", "set-cookie", "x-empty"]
    assert repr(Headers([("A", "1")])) == "Headers([('A', '1')])"


class Point(Record):
    __slots__ = ("x", "y")
    _repr_fields = ("x",)
    x: int
    y: int

    def __init__(self, x: int, y: int) -> None:
        self._fill(x=x, y=y)


def test_record_is_read_only() -> None:
    point = Point(1, 2)
    assert (point.x, point.y) == (1, 2)
    with pytest.raises(AttributeError):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y
    assert point.x == 1


def test_record_equality_hash_and_repr() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2) != (1, 2)
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2
    assert repr(Point(1, 2)) == "Point(x=1)"
