"""restkit.validation: typed bodies and query strings from standard-library types."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import sys
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, TypedDict
from urllib.parse import parse_qsl

import pytest

from restkit import App, MultiDict, Request, RouteError
from restkit.validation import UNSET, Field, ValidationError, bind, given, validate, validate_query

from .conftest import make_client

# --- models --------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    city: Annotated[str, Field(min_length=1)]
    zip: Annotated[str, Field(pattern=r"[0-9]{5}")] = "00000"


@dataclass
class Pet:
    name: str
    kind: Literal["cat", "dog"]


@dataclass
class Person:
    name: Annotated[str, Field(min_length=1, max_length=10)]
    age: Annotated[int, Field(ge=0, le=150)]
    tags: Annotated[list[str], Field(max_length=3)] = field(default_factory=list)
    address: Address | None = None
    pets: list[Pet] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    born: datetime.date | None = None


@dataclass
class Node:
    """A recursive model: validation and route definition must terminate."""

    name: str
    children: list[Node] = field(default_factory=list)


@dataclass
class Booking:
    """Checks that involve two fields live in __post_init__."""

    start: datetime.date
    end: datetime.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("end must not be before start")


class Point(TypedDict):
    x: int
    y: int


class Options(TypedDict, total=False):
    verbose: bool
    level: int


if sys.version_info >= (3, 11):
    from typing import NotRequired, Required

    class Mixed(TypedDict, total=False):
        id: Required[int]
        note: NotRequired[Annotated[str, Field(max_length=3)]]


@dataclass
class Search:
    q: str = ""
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: int = 0
    ratio: float = 1.0
    exact: bool = False
    tags: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    since: datetime.date | None = None
    sort: Literal["name", "age"] = "name"
    color: Optional[Color] = None  # the Optional spelling works too
    city: str | None = None


def problems(tp: Any, value: Any, **options: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate(tp, value, **options)
    return caught.value.details


# --- every supported type ---------------------------------------------------------

UUID_TEXT = "123e4567-e89b-12d3-a456-426614174000"

ACCEPTED = [
    pytest.param(int, 5, 5, id="int"),
    pytest.param(int, -3, -3, id="int-negative"),
    pytest.param(int, 2**63 - 1, 2**63 - 1, id="int-64-bit-max"),
    # JSON Schema 2020-12: a number with no fraction is an integer, whatever its JSON spelling
    pytest.param(int, 1.0, 1, id="int-takes-float-without-fraction"),
    pytest.param(int, -3.0, -3, id="int-takes-negative-float-without-fraction"),
    pytest.param(int, 1e2, 100, id="int-takes-exponent"),
    pytest.param(float, 2.5, 2.5, id="float"),
    pytest.param(float, 1, 1.0, id="float-takes-int"),
    pytest.param(str, "zoo", "zoo", id="str"),
    pytest.param(str, "", "", id="str-empty"),
    pytest.param(bool, True, True, id="bool-true"),
    pytest.param(bool, False, False, id="bool-false"),
    pytest.param(datetime.date, "2020-02-29", datetime.date(2020, 2, 29), id="date-leap-day"),
    pytest.param(
        datetime.datetime,
        "2020-01-02T03:04:05Z",
        datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        id="datetime-utc",
    ),
    pytest.param(
        datetime.datetime,
        "2020-01-02T03:04:05+02:00",
        datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        id="datetime-offset",
    ),
    pytest.param(
        datetime.datetime,
        "2020-01-02t03:04:05.25z",
        datetime.datetime(2020, 1, 2, 3, 4, 5, 250000, tzinfo=datetime.timezone.utc),
        id="datetime-rfc3339-lower-case",
    ),
    pytest.param(datetime.datetime, "2020-01-02T03:04:05", datetime.datetime(2020, 1, 2, 3, 4, 5), id="datetime-naive"),
    pytest.param(uuid.UUID, UUID_TEXT, uuid.UUID(UUID_TEXT), id="uuid"),
    pytest.param(Literal["a", "b"], "b", "b", id="literal-str"),
    pytest.param(Literal[1, 2], 2, 2, id="literal-int"),
    pytest.param(Literal["a", None], None, None, id="literal-with-none"),
    pytest.param(Optional[int], None, None, id="optional-none"),
    pytest.param(Optional[int], 4, 4, id="optional-value"),
    pytest.param(int | None, None, None, id="pipe-none"),
    pytest.param(int | str, "x", "x", id="union"),
    pytest.param(list[int], [1, 2], [1, 2], id="list"),
    pytest.param(list[int], [], [], id="list-empty"),
    pytest.param(dict[str, int], {"a": 1}, {"a": 1}, id="dict"),
    pytest.param(Color, "green", Color.GREEN, id="enum-str"),
    pytest.param(Level, 2, Level.HIGH, id="enum-int"),
    pytest.param(Any, None, None, id="any-null"),
    pytest.param(Any, {"a": [1]}, {"a": [1]}, id="any-object"),
]


@pytest.mark.parametrize(("tp", "value", "expected"), ACCEPTED)
def test_accepted_values(tp: Any, value: Any, expected: Any) -> None:
    result = validate(tp, value)
    assert result == expected
    assert type(result) is type(expected)


REJECTED = [
    pytest.param(int, True, "must be an integer", id="int-rejects-bool"),
    pytest.param(int, 1.5, "must be an integer", id="int-rejects-fraction"),
    pytest.param(int, float("nan"), "must be an integer", id="int-rejects-nan"),
    pytest.param(int, float("inf"), "must be an integer", id="int-rejects-inf"),
    pytest.param(int, 2.0**63, "is out of range for a 64-bit integer", id="int-float-too-big"),
    pytest.param(int, "1", "must be an integer", id="int-rejects-str"),
    pytest.param(int, None, "must not be null", id="int-rejects-null"),
    pytest.param(int, 2**63, "is out of range for a 64-bit integer", id="int-too-big"),
    pytest.param(float, True, "must be a number", id="float-rejects-bool"),
    pytest.param(float, "1.5", "must be a number", id="float-rejects-str"),
    pytest.param(float, float("nan"), "must be a finite number", id="float-rejects-nan"),
    pytest.param(float, float("inf"), "must be a finite number", id="float-rejects-inf"),
    pytest.param(float, float("-inf"), "must be a finite number", id="float-rejects-minus-inf"),
    pytest.param(float, 10**400, "is out of range for a number", id="float-rejects-huge-int"),
    pytest.param(str, 1, "must be a string", id="str-rejects-int"),
    pytest.param(str, ["a"], "must be a string", id="str-rejects-list"),
    pytest.param(str, "a\x00b", "must not contain NUL characters", id="str-rejects-nul"),
    pytest.param(str, "a\ud800", "must be valid Unicode text (no lone surrogates)", id="str-rejects-lone-surrogate"),
    pytest.param(
        dict[str, int], {"\udc00": 1}, None, id="dict-key-with-lone-surrogate"
    ),
    pytest.param(bool, 1, "must be true or false", id="bool-rejects-int"),
    pytest.param(bool, "true", "must be true or false", id="bool-rejects-str"),
    pytest.param(datetime.date, "2020-02-30", "must be a date as YYYY-MM-DD", id="date-feb-30"),
    pytest.param(datetime.date, "2021-02-29", "must be a date as YYYY-MM-DD", id="date-not-leap"),
    pytest.param(datetime.date, "2020-13-01", "must be a date as YYYY-MM-DD", id="date-month-13"),
    pytest.param(datetime.date, "20200101", "must be a date as YYYY-MM-DD", id="date-basic-form"),
    pytest.param(datetime.date, "2020-1-01", "must be a date as YYYY-MM-DD", id="date-short-month"),
    pytest.param(datetime.date, "２０２０-01-01", "must be a date as YYYY-MM-DD", id="date-non-ascii-digits"),
    pytest.param(datetime.date, 20200101, "must be a date as YYYY-MM-DD", id="date-number"),
    pytest.param(datetime.datetime, "yesterday", "must be a date-time in ISO 8601 form", id="datetime-words"),
    pytest.param(datetime.datetime, "2020-01-02T25:00:00", "must be a date-time in ISO 8601 form", id="datetime-hour-25"),
    pytest.param(datetime.datetime, 1577934245, "must be a date-time in ISO 8601 form", id="datetime-number"),
    pytest.param(uuid.UUID, "not-a-uuid", "must be a UUID", id="uuid-text"),
    pytest.param(uuid.UUID, 123, "must be a UUID", id="uuid-number"),
    pytest.param(Literal["a", "b"], "c", "must be one of 'a', 'b'", id="literal-other"),
    pytest.param(Literal[1, 2], True, "must be one of 1, 2", id="literal-int-rejects-bool"),
    pytest.param(Literal[1, 2], "1", "must be one of 1, 2", id="literal-int-rejects-str"),
    pytest.param(Optional[int], "x", "must be an integer", id="optional-wrong-type"),
    pytest.param(int | str, 1.5, "must be an integer or must be a string", id="union-no-match"),
    pytest.param(list[int], "1,2", "must be an array", id="list-rejects-str"),
    pytest.param(dict[str, int], [1], "must be an object", id="dict-rejects-list"),
    pytest.param(Color, "purple", "must be one of 'red', 'green'", id="enum-other"),
    pytest.param(Level, True, "must be one of 1, 2", id="enum-int-rejects-bool"),
    pytest.param(Level, "1", "must be one of 1, 2", id="enum-int-rejects-str"),
]


@pytest.mark.parametrize(("tp", "value", "message"), REJECTED)
def test_rejected_values(tp: Any, value: Any, message: str | None) -> None:
    if message is None:  # a problem with a key: reported under the key, made printable
        assert problems(tp, value) == {"\ufffd": "key must be valid Unicode text (no lone surrogates)"}
    else:
        assert problems(tp, value) == {"(body)": message}


def test_paths_of_list_items_dict_values_and_nested_models() -> None:
    data = {
        "name": "Ann",
        "age": 30,
        "tags": ["a", 2, "c"],
        "address": {"city": ""},
        "pets": [{"name": "Rex", "kind": "dog"}, {"name": 7, "kind": "fish"}],
        "scores": {"math": 1.5, "art": "high"},
    }
    assert problems(Person, data) == {
        "tags[1]": "must be a string",
        "address.city": "must have at least 1 character(s)",
        "pets[1].name": "must be a string",
        "pets[1].kind": "must be one of 'cat', 'dog'",
        "scores.art": "must be a number",
    }


def test_every_problem_is_reported_at_once() -> None:
    data = {"name": "", "age": -1, "tags": ["a", "b", "c", "d"], "address": {"zip": "1234", "x": 1}, "extra": True}
    assert problems(Person, data) == {
        "name": "must have at least 1 character(s)",
        "age": "must be at least 0",
        "tags": "must have at most 3 item(s)",
        "address.city": "required",
        "address.zip": "must match the pattern [0-9]{5}",
        "address.x": "unknown field",
        "extra": "unknown field",
    }


def test_a_valid_body_becomes_typed_objects() -> None:
    data = {
        "name": "Ann",
        "age": 30,
        "address": {"city": "Oslo", "zip": "01234"},
        "pets": [{"name": "Rex", "kind": "dog"}],
        "scores": {"math": 2},
        "born": "1994-05-06",
    }
    person = validate(Person, data)
    assert person == Person(
        name="Ann",
        age=30,
        tags=[],
        address=Address("Oslo", "01234"),
        pets=[Pet("Rex", "dog")],
        scores={"math": 2.0},
        born=datetime.date(1994, 5, 6),
    )
    assert isinstance(person.address, Address) and isinstance(person.pets[0], Pet)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(None, "must be an object", id="null"),
        pytest.param([], "must be an object", id="array"),
        pytest.param("Ann", "must be an object", id="string"),
    ],
)
def test_a_body_that_is_not_an_object(value: Any, message: str) -> None:
    assert problems(Person, value) == {"(body)": message}


def test_missing_required_fields() -> None:
    assert problems(Person, {}) == {"name": "required", "age": "required"}


def test_recursive_model() -> None:
    tree = validate(Node, {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]})
    assert tree.children[0].children[0] == Node("c")
    assert problems(Node, {"name": "a", "children": [{"name": "b", "children": [{"name": 1}]}]}) == {
        "children[0].children[0].name": "must be a string"
    }


def test_nesting_is_bounded() -> None:
    data: dict[str, Any] = {"name": "leaf"}
    for _ in range(400):  # deeper than Python's recursion limit allows to walk
        data = {"name": "n", "children": [data]}
    details = problems(Node, data)
    assert list(details.values()) == ["is nested too deeply"]
    assert next(iter(details)).startswith("children[0].children[0].")


def test_post_init_errors_are_validation_problems() -> None:
    assert validate(Booking, {"start": "2024-01-01", "end": "2024-01-02"}).end == datetime.date(2024, 1, 2)
    assert problems(Booking, {"start": "2024-01-02", "end": "2024-01-01"}) == {"(body)": "end must not be before start"}
    assert problems(list[Booking], [{"start": "2024-01-02", "end": "2024-01-01"}]) == {
        "[0]": "end must not be before start"
    }


# --- Field constraints ----------------------------------------------------------------

CONSTRAINTS = [
    pytest.param(str, Field(min_length=2), "ab", None, id="min-length-ok"),
    pytest.param(str, Field(min_length=2), "a", "must have at least 2 character(s)", id="min-length-str"),
    pytest.param(str, Field(max_length=3), "abc", None, id="max-length-ok"),
    pytest.param(str, Field(max_length=3), "abcd", "must have at most 3 character(s)", id="max-length-str"),
    pytest.param(list[int], Field(min_length=1), [], "must have at least 1 item(s)", id="min-length-list"),
    pytest.param(list[int], Field(max_length=2), [1, 2, 3], "must have at most 2 item(s)", id="max-length-list"),
    pytest.param(int, Field(ge=0), 0, None, id="ge-boundary"),
    pytest.param(int, Field(ge=0), -1, "must be at least 0", id="ge"),
    pytest.param(int, Field(le=10), 10, None, id="le-boundary"),
    pytest.param(int, Field(le=10), 11, "must be at most 10", id="le"),
    pytest.param(float, Field(gt=0), 0.5, None, id="gt-ok"),
    pytest.param(float, Field(gt=0), 0, "must be greater than 0", id="gt"),
    pytest.param(float, Field(lt=1.5), 1.49, None, id="lt-ok"),
    pytest.param(float, Field(lt=1.5), 1.5, "must be less than 1.5", id="lt"),
    pytest.param(str, Field(pattern="[a-z]+"), "abc", None, id="pattern-ok"),
    pytest.param(str, Field(pattern="[a-z]+"), "abc1", "must match the pattern [a-z]+", id="pattern-whole-value"),
    pytest.param(int | None, Field(ge=5), None, None, id="optional-null-skips-constraints"),
    pytest.param(Annotated[str, Field(max_length=3)] | None, Field(), "abcd", "must have at most 3 character(s)", id="constraint-inside-optional"),
    pytest.param(Annotated[str, Field(max_length=3)] | None, Field(), None, None, id="constraint-inside-optional-null"),
    pytest.param(str, Field(min_length=1, description="documentation only"), "x", None, id="description-only"),
]


@pytest.mark.parametrize(("tp", "constraint", "value", "message"), CONSTRAINTS)
def test_field_constraints(tp: Any, constraint: Field, value: Any, message: str | None) -> None:
    annotated = Annotated[tp, constraint]
    if message is None:
        assert validate(annotated, value) == value
    else:
        assert problems(annotated, value) == {"(body)": message}


# --- unknown fields, partial bodies, TypedDicts ---------------------------------------


def test_unknown_fields_are_rejected_by_default_and_ignored_on_request() -> None:
    data = {"name": "Ann", "age": 3, "nick": "A", "address": {"city": "Oslo", "floor": 2}}
    assert problems(Person, data) == {"nick": "unknown field", "address.floor": "unknown field"}
    person = validate(Person, data, unknown_fields="ignore")
    assert person.name == "Ann" and person.address == Address("Oslo")


def test_unknown_fields_are_named_up_to_a_bound() -> None:
    data = {"name": "Ann", "age": 3, **{f"extra{n:05d}": n for n in range(10_000)}, "x" * 10_000: 1}
    found = problems(Person, data)
    assert len(found) == 21 and found["..."] == "and 9981 more unknown field(s)"
    assert all(len(key) <= 67 for key in found)  # names cut short too
    long = problems(Person, {"name": "Ann", "age": 3, "y" * 10_000: 1})
    assert long == {"y" * 64 + "...": "unknown field"}


def test_partial_bodies_leave_absent_fields_unset() -> None:
    person = validate(Person, {"age": 31}, partial=True)
    assert person.age == 31
    assert person.name is UNSET and person.address is UNSET
    assert given(person) == {"age": 31}
    assert not UNSET and repr(UNSET) == "UNSET"
    assert validate(Person, {}, partial=True) is not None
    assert given(validate(Person, {}, partial=True)) == {}


def test_partial_bodies_still_validate_what_was_sent() -> None:
    assert problems(Person, {"age": -1, "nick": "x"}, partial=True) == {
        "age": "must be at least 0",
        "nick": "unknown field",
    }
    assert given(validate(Person, {"address": None}, partial=True)) == {"address": None}


def test_typeddict_total() -> None:
    assert validate(Point, {"x": 1, "y": 2}) == {"x": 1, "y": 2}
    assert problems(Point, {"x": "1"}) == {"x": "must be an integer", "y": "required"}
    assert problems(Point, {"x": 1, "y": 2, "z": 3}) == {"z": "unknown field"}


def test_typeddict_not_total() -> None:
    assert validate(Options, {}) == {}
    assert validate(Options, {"level": 3}) == {"level": 3}
    assert problems(Options, {"verbose": "yes"}) == {"verbose": "must be true or false"}
    partial = validate(Point, {"y": 5}, partial=True)
    assert given(partial) == {"y": 5}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.NotRequired is new in Python 3.11")
def test_typeddict_required_and_not_required_markers() -> None:
    assert validate(Mixed, {"id": 1}) == {"id": 1}
    assert validate(Mixed, {"id": 1, "note": "abc"}) == {"id": 1, "note": "abc"}
    assert problems(Mixed, {"note": "abcd"}) == {"id": "required", "note": "must have at most 3 character(s)"}
    bind(lambda request, body: body, body=Mixed)  # supported at route definition


# --- query strings ---------------------------------------------------------------------


def query(text: str) -> MultiDict[str]:
    return MultiDict(parse_qsl(text, keep_blank_values=True))


QUERIES = [
    pytest.param("", {}, id="defaults"),
    pytest.param("limit=10&offset=0", {"limit": 10, "offset": 0}, id="ints"),
    pytest.param("offset=-3", {"offset": -3}, id="negative-int"),
    pytest.param("ratio=0.25", {"ratio": 0.25}, id="float"),
    pytest.param("ratio=3", {"ratio": 3.0}, id="float-from-int-text"),
    pytest.param("exact=true", {"exact": True}, id="bool-true"),
    pytest.param("exact=1", {"exact": True}, id="bool-1"),
    pytest.param("exact=yes", {"exact": True}, id="bool-yes"),
    pytest.param("exact=on", {"exact": True}, id="bool-on"),
    pytest.param("exact=False", {"exact": False}, id="bool-false"),
    pytest.param("exact=0", {"exact": False}, id="bool-0"),
    pytest.param("tags=a&tags=b", {"tags": ["a", "b"]}, id="list-from-repeated-keys"),
    pytest.param("ids=3&ids=1", {"ids": [3, 1]}, id="int-list"),
    pytest.param("since=2020-02-29", {"since": datetime.date(2020, 2, 29)}, id="date"),
    pytest.param("since=", {"since": None}, id="optional-empty-is-none"),
    pytest.param("city=", {"city": None}, id="optional-str-empty-is-none"),
    pytest.param("q=", {"q": ""}, id="required-str-empty-stays"),
    pytest.param("sort=age", {"sort": "age"}, id="literal"),
    pytest.param("color=red", {"color": Color.RED}, id="enum"),
    pytest.param("limit=5&limit=7", {"limit": 5}, id="repeated-scalar-takes-first"),
    pytest.param("limit=5.0&offset=-2.00", {"limit": 5, "offset": -2}, id="int-with-zero-fraction"),
]


@pytest.mark.parametrize(("text", "changed"), QUERIES)
def test_query_conversions(text: str, changed: dict[str, Any]) -> None:
    assert validate_query(Search, query(text)) == dataclasses.replace(Search(), **changed)


BAD_QUERIES = [
    pytest.param("limit=abc", {"limit": "must be an integer"}, id="int-text"),
    pytest.param("offset=--5", {"offset": "must be an integer"}, id="int-double-minus"),
    pytest.param("offset=1.5", {"offset": "must be an integer"}, id="int-fraction"),
    pytest.param("offset=1.", {"offset": "must be an integer"}, id="int-dot-alone"),
    pytest.param("offset=1e2", {"offset": "must be an integer"}, id="int-exponent-text"),
    pytest.param("offset=١٢", {"offset": "must be an integer"}, id="int-non-ascii-digits"),
    pytest.param("offset=" + "9" * 30, {"offset": "must be an integer"}, id="int-huge"),
    pytest.param("limit=0", {"limit": "must be at least 1"}, id="constraint"),
    pytest.param("ratio=nan", {"ratio": "must be a number"}, id="float-nan"),
    pytest.param("ratio=1e999", {"ratio": "must be a finite number"}, id="float-overflow"),
    pytest.param("ratio=1_0", {"ratio": "must be a number"}, id="float-underscore"),
    pytest.param("exact=maybe", {"exact": "must be true or false"}, id="bool-text"),
    pytest.param("ids=1&ids=x", {"ids[1]": "must be an integer"}, id="list-item-path"),
    pytest.param("since=2020-02-30", {"since": "must be a date as YYYY-MM-DD"}, id="date-invalid"),
    pytest.param("sort=size", {"sort": "must be one of 'name', 'age'"}, id="literal-other"),
    pytest.param("color=blue", {"color": "must be one of 'red', 'green'"}, id="enum-other"),
    pytest.param("nope=1", {"nope": "unknown field"}, id="unknown-key"),
    pytest.param(
        "limit=x&exact=x&since=x",
        {"limit": "must be an integer", "exact": "must be true or false", "since": "must be a date as YYYY-MM-DD"},
        id="every-problem-at-once",
    ),
]


@pytest.mark.parametrize(("text", "details"), BAD_QUERIES)
def test_bad_query_strings(text: str, details: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_query(Search, query(text))
    assert caught.value.details == details


@dataclass
class ListForms:
    maybe: list[int] | None = None
    few: Annotated[list[str], Field(max_length=2)] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("maybe=1&maybe=2", ListForms(maybe=[1, 2]), id="optional-list"),
        pytest.param("few=a&few=b", ListForms(few=["a", "b"]), id="annotated-list"),
        pytest.param("levels=1&levels=2", ListForms(levels=[Level.LOW, Level.HIGH]), id="enum-list"),
    ],
)
def test_every_spelling_of_a_list_takes_repeated_keys(text: str, expected: ListForms) -> None:
    assert validate_query(ListForms, query(text)) == expected


def test_list_constraints_apply_to_repeated_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_query(ListForms, query("few=a&few=b&few=c"))
    assert caught.value.details == {"few": "must have at most 2 item(s)"}


def test_unknown_query_keys_may_be_ignored() -> None:
    assert validate_query(Search, query("nope=1&limit=3"), unknown_fields="ignore") == Search(limit=3)


# --- route definition ---------------------------------------------------------------


@dataclass
class WithSet:
    ids: set[int]


@dataclass
class WithTuple:
    pair: tuple[int, int]


@dataclass
class WithBytes:
    data: bytes


@dataclass
class WithBadPattern:
    code: Annotated[str, Field(pattern="([a-z]")]


@dataclass
class QueryWithModel:
    address: Address | None = None


@dataclass
class QueryWithDict:
    filters: dict[str, str] = field(default_factory=dict)


class Plain:
    name: str


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"body": WithSet}, TypeError, id="set-field"),
        pytest.param({"body": WithTuple}, TypeError, id="tuple-field"),
        pytest.param({"body": WithBytes}, TypeError, id="bytes-field"),
        pytest.param({"body": WithBadPattern}, TypeError, id="invalid-pattern"),
        pytest.param({"body": Plain}, TypeError, id="plain-class-body"),
        pytest.param({"body": list[set[int]]}, TypeError, id="list-of-set-body"),
        pytest.param({"body": dict[int, str]}, TypeError, id="dict-with-int-keys"),
        pytest.param({"query": QueryWithModel}, TypeError, id="query-nested-model"),
        pytest.param({"query": QueryWithDict}, TypeError, id="query-dict"),
        pytest.param({"query": Point}, TypeError, id="query-typeddict"),
        pytest.param({"body": Person, "unknown_fields": "maybe"}, ValueError, id="unknown-fields-option"),
    ],
)
def test_unsupported_declarations_fail_when_the_route_is_added(options: dict[str, Any], error: type[Exception]) -> None:
    app = App()
    with pytest.raises(error):

        @app.post("/things", **options)
        def create(request: Request, **params: Any) -> Any:
            return {}

    assert app.router.routes == []


def no_body(request: Request) -> Any:
    return {}


def positional_only_body(request: Request, body: Person, /) -> Any:
    return {}


def no_query(request: Request, body: Person) -> Any:
    return {}


@pytest.mark.parametrize(
    ("handler", "options"),
    [
        pytest.param(no_body, {"body": Person}, id="no-body-parameter"),
        pytest.param(positional_only_body, {"body": Person}, id="positional-only-body"),
        pytest.param(no_query, {"body": Person, "query": Search}, id="no-query-parameter"),
    ],
)
def test_handlers_must_take_what_the_route_validates(handler: Any, options: dict[str, Any]) -> None:
    app = App()
    with pytest.raises(RouteError, match=r"does not take (body|query)=, the validated (body|query) the route declares"):
        app.add_route("/things", handler, methods=["POST"], **options)
    assert app.router.routes == []


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"body": Node}, id="recursive-model"),
        pytest.param({"body": list[Pet]}, id="list-of-models"),
        pytest.param({"body": Options}, id="typeddict"),
        pytest.param({"query": Search}, id="query-model"),
        pytest.param({"body": Person, "query": Search, "partial": True}, id="body-and-query"),
    ],
)
def test_supported_declarations(options: dict[str, Any]) -> None:
    app = App()
    app.add_route("/things", lambda request, **params: {}, methods=["POST"], **options)
    assert len(app.router.routes) == 1


# --- through an app ---------------------------------------------------------------------


def make_app() -> App:
    app = App()

    @app.post("/people", body=Person)
    def create_person(request: Request, body: Person) -> Any:
        assert isinstance(body, Person)
        return {
            "type": type(body).__name__,
            "address": type(body.address).__name__,
            "born": type(body.born).__name__,
            "name": body.name,
        }, 201

    @app.patch("/people/<int:person_id>", body=Person, partial=True)
    def update_person(request: Request, person_id: int, body: Person) -> Any:
        return {"id": person_id, "given": given(body)}

    @app.post("/loose", body=Person, unknown_fields="ignore")
    def loose(request: Request, body: Person) -> Any:
        return {"name": body.name}

    @app.post("/pets", body=list[Pet])
    def add_pets(request: Request, body: list[Pet]) -> Any:
        return {"kinds": [pet.kind for pet in body]}

    @app.post("/bookings", body=Booking)
    def book(request: Request, body: Booking) -> Any:
        return {"nights": (body.end - body.start).days}

    @app.post("/trees", body=Node)
    def plant(request: Request, body: Node) -> Any:
        return {"name": body.name}

    @app.get("/search", query=Search)
    def search(request: Request, query: Search) -> Any:
        return {"limit": query.limit, "tags": query.tags, "exact": query.exact, "since": query.since}

    return app


GOOD_PERSON = {"name": "Ann", "age": 30, "address": {"city": "Oslo"}, "born": "1994-05-06"}


def assert_still_serving(client: Any) -> None:
    response = client.post_json("/people", GOOD_PERSON)
    assert response.status_int == 201
    assert response.json == {"type": "Person", "address": "Address", "born": "date", "name": "Ann"}


def test_the_handler_receives_the_typed_object() -> None:
    assert_still_serving(make_client(make_app()))


def test_a_float_without_fraction_is_an_int_in_a_body() -> None:
    """JSON Schema 2020-12 counts 1.0 as an integer; the handler receives an int."""
    client = make_client(make_app())
    response = client.post("/people", b'{"name": "Ann", "age": 30.0}', content_type="application/json", status=201)
    assert response.json["name"] == "Ann"
    assert validate(Person, {"name": "Ann", "age": 30.0}).age == 30
    assert type(validate(Person, {"name": "Ann", "age": 30.0}).age) is int
    response = client.post("/people", b'{"name": "Ann", "age": 30.5}', content_type="application/json", status=422)
    assert response.json == {"error": "validation failed", "details": {"age": "must be an integer"}}


def test_an_invalid_body_is_422_with_every_problem() -> None:
    client = make_client(make_app())
    response = client.post_json("/people", {"name": "", "age": "old", "address": {}, "born": "2020-02-30", "x": 1}, status=422)
    assert response.json == {
        "error": "validation failed",
        "details": {
            "name": "must have at least 1 character(s)",
            "age": "must be an integer",
            "address.city": "required",
            "born": "must be a date as YYYY-MM-DD",
            "x": "unknown field",
        },
    }
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        pytest.param(b'{"name": "Ann",', "application/json", 400, "malformed JSON at line 1 column 16", id="malformed-json"),
        pytest.param(b"", "application/json", 400, "request body is empty; expected JSON", id="empty-body"),
        pytest.param(
            b"name=Ann", "application/x-www-form-urlencoded", 415,
            "expected a body of type application/json, got application/x-www-form-urlencoded", id="form-body",
        ),
        pytest.param(b'{"name": "Ann"}', "text/plain", 415, "expected a body of type application/json, got text/plain", id="text-plain"),
        pytest.param(b"[]", "application/json", 422, "validation failed", id="array-body"),
        pytest.param(b"null", "application/json", 422, "validation failed", id="null-body"),
    ],
)
def test_body_errors_keep_their_status(body: bytes, content_type: str, status: int, error: str) -> None:
    client = make_client(make_app())
    response = client.post("/people", body, headers={"Content-Type": content_type}, status=status)
    assert response.json["error"].startswith(error)
    if status == 422:
        assert response.json["details"] == {"(body)": "must be an object"}
    else:
        assert "details" not in response.json
    assert_still_serving(client)


def test_partial_patch_receives_only_what_was_sent() -> None:
    client = make_client(make_app())
    response = client.patch_json("/people/7", {"age": 31})
    assert response.json == {"id": 7, "given": {"age": 31}}
    response = client.patch_json("/people/7", {"age": -1, "name": ""}, status=422)
    assert response.json["details"] == {"name": "must have at least 1 character(s)", "age": "must be at least 0"}
    assert client.patch_json("/people/7", {}).json == {"id": 7, "given": {}}


def test_unknown_fields_ignored_when_the_route_says_so() -> None:
    client = make_client(make_app())
    assert client.post_json("/loose", {"name": "Ann", "age": 1, "nick": "A"}).json == {"name": "Ann"}
    assert client.post_json("/people", {"name": "Ann", "age": 1, "nick": "A"}, status=422).json["details"] == {
        "nick": "unknown field"
    }


def test_a_list_body() -> None:
    client = make_client(make_app())
    assert client.post_json("/pets", [{"name": "Rex", "kind": "dog"}]).json == {"kinds": ["dog"]}
    response = client.post_json("/pets", [{"name": "Rex", "kind": "dog"}, {"name": "Tom"}], status=422)
    assert response.json == {"error": "validation failed", "details": {"[1].kind": "required"}}


def test_query_model() -> None:
    client = make_client(make_app())
    response = client.get("/search?limit=5&tags=a&tags=b&exact=yes&since=2020-01-31")
    assert response.json == {"limit": 5, "tags": ["a", "b"], "exact": True, "since": "2020-01-31"}
    assert client.get("/search").json == {"limit": 20, "tags": [], "exact": False, "since": None}


def test_an_invalid_query_is_400_with_details() -> None:
    client = make_client(make_app())
    response = client.get("/search?limit=0&exact=maybe&since=2020-02-30&nope=1", status=400)
    assert response.json == {
        "error": "invalid query parameter(s): nope: unknown field; limit: must be at least 1; "
        "exact: must be true or false; since: must be a date as YYYY-MM-DD",
        "details": {
            "limit": "must be at least 1",
            "exact": "must be true or false",
            "since": "must be a date as YYYY-MM-DD",
            "nope": "unknown field",
        },
    }
    assert client.get("/search?limit=2").json["limit"] == 2
    assert_still_serving(client)


def test_post_init_error_is_422() -> None:
    client = make_client(make_app())
    assert client.post_json("/bookings", {"start": "2024-01-01", "end": "2024-01-03"}).json == {"nights": 2}
    response = client.post_json("/bookings", {"start": "2024-01-03", "end": "2024-01-01"}, status=422)
    assert response.json == {"error": "validation failed", "details": {"(body)": "end must not be before start"}}
    assert_still_serving(client)


def test_deep_nesting_is_422_not_500() -> None:
    client = make_client(make_app())
    data: dict[str, Any] = {"name": "leaf"}
    for _ in range(400):
        data = {"name": "n", "children": [data]}
    response = client.post_json("/trees", data, status=422)
    assert list(response.json["details"].values()) == ["is nested too deeply"]
    assert client.post_json("/trees", {"name": "oak", "children": [{"name": "twig"}]}).json == {"name": "oak"}


def test_lone_surrogates_are_422_not_500() -> None:
    client = make_client(make_app())
    headers = {"Content-Type": "application/json"}
    response = client.post("/people", b'{"name": "\\ud800", "age": 1}', headers=headers, status=422)
    assert response.json["details"] == {"name": "must be valid Unicode text (no lone surrogates)"}
    response = client.post("/people", b'{"name": "Ann", "age": 1, "\\udfff": 1}', headers=headers, status=422)
    assert response.json["details"] == {"\ufffd": "unknown field"}
    assert_still_serving(client)


# --- constraints inside Optional, unions in query strings ---------------------------------


@dataclass
class Note:
    title: Optional[Annotated[str, Field(max_length=3)]] = None  # noqa: UP007 - the Optional spelling is supported too


def test_constraints_inside_an_optional_are_checked() -> None:
    assert validate(Note, {"title": "abc"}).title == "abc"
    assert validate(Note, {"title": None}).title is None
    assert problems(Note, {"title": "abcd"}) == {"title": "must have at most 3 character(s)"}


@dataclass
class Filters:
    zoo_id: Annotated[int, Field(ge=1)] | Literal["null"] = UNSET
    born: datetime.date | Literal["null"] = UNSET


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zoo_id=3", {"zoo_id": 3}),
        ("zoo_id=null", {"zoo_id": "null"}),
        ("born=2020-01-02", {"born": datetime.date(2020, 1, 2)}),
        ("born=null", {"born": "null"}),
        ("", {}),
    ],
)
def test_query_fields_may_be_unions_of_text_types(query: str, expected: dict[str, Any]) -> None:
    assert given(validate_query(Filters, MultiDict(parse_qsl(query)))) == expected


def test_a_query_union_names_every_way_it_failed() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_query(Filters, MultiDict([("zoo_id", "0"), ("born", "soon")]))
    assert caught.value.details == {
        "zoo_id": "must be at least 1 or must be one of 'null'",
        "born": "must be a date as YYYY-MM-DD or must be one of 'null'",
    }
