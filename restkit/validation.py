"""Typed validation of request bodies and query strings, from standard-library types.

Declare what a route takes with a ``dataclass`` (or a ``TypedDict``) whose
fields are annotated with ``int``, ``float``, ``str``, ``bool``,
``datetime.date``, ``datetime.datetime``, ``uuid.UUID``, ``Literal[...]``,
``X | None``, ``list[X]``, ``dict[str, X]`` and nested dataclasses, and add
constraints with ``Annotated[str, Field(min_length=1, max_length=100)]``::

    import datetime
    from dataclasses import dataclass
    from typing import Annotated

    from restkit import App, Field

    app = App()

    @dataclass
    class ZooIn:
        name: Annotated[str, Field(min_length=1, max_length=100)]
        city: str
        opened: datetime.date | None = None

    @app.post("/zoos", body=ZooIn)
    def create_zoo(request, body: ZooIn):
        return body, 201

The handler receives the validated object as ``body=`` (and ``query=`` for
``query=ListParams``).  Every problem is reported at once:

* a body that fails: ``422 {"error": "validation failed", "details": {"name": "...", "tags[1]": "..."}}``;
* a query string that fails: ``400`` with the same shape (a malformed request,
  as REST conventions have it);
* unknown fields are refused unless the route says ``unknown_fields="ignore"``.

As in JSON Schema 2020-12, a number with no fraction is an integer: ``1.0``
in a body (``1.0`` in a query string) is the ``int`` 1, and ``1.5`` is refused.

``partial=True`` (for PATCH) makes every field optional; absent ones are
:data:`UNSET` in the object, and :func:`given` lists the fields that were sent.
Query strings are text, so their values are converted (``"10"`` to 10,
``"true"`` to True); a ``list[X]`` query field takes every repeated value.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import inspect
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import BadRequest, UnprocessableEntity

__all__ = ["UNSET", "Field", "ValidationError", "bind", "given", "validate", "validate_query"]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: The value of a field that a partial (PATCH) body did not send.
UNSET: Any = _Unset()


@dataclasses.dataclass(frozen=True)
class Field:
    """Constraints and documentation for one field, used inside ``Annotated``."""

    min_length: int | None = None
    max_length: int | None = None
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    pattern: str | None = None
    description: str | None = None
    example: Any = None


class ValidationError(Exception):
    """Every problem found, as ``{field path: message}``."""

    def __init__(self, details: dict[str, str]) -> None:
        super().__init__(f"validation failed: {details}")
        self.details = details


# --- describing a type -----------------------------------------------------------


def _required_markers() -> tuple[Any, ...]:
    # TypedDict's Required[X] / NotRequired[X] (typing on 3.11+, typing_extensions
    # before): get_type_hints(include_extras=True) keeps them, so unwrap strips them.
    markers = [getattr(typing, name, None) for name in ("Required", "NotRequired")]
    extensions = sys.modules.get("typing_extensions")
    if extensions is not None:
        markers += [getattr(extensions, name, None) for name in ("Required", "NotRequired")]
    return tuple(m for m in markers if m is not None)


def unwrap(tp: Any) -> tuple[Any, list[Field]]:
    """Split ``Annotated[X, Field(...)]`` into ``X`` and its constraints."""
    fields: list[Field] = []
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp, *meta = get_args(tp)
            fields.extend(m for m in meta if isinstance(m, Field))
        elif origin is not None and origin in _required_markers():
            (tp,) = get_args(tp)
        else:
            return tp, fields


def optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None`` / ``Optional[X]``; None when ``tp`` is not optional."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            return args[0] if len(args) == 1 else Union[tuple(args)]
    return None


def is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__annotations__") and hasattr(tp, "__total__")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str
    type: Any
    required: bool
    default: Any


@functools.lru_cache(maxsize=None)
def fields_of(model: Any) -> tuple[FieldSpec, ...]:
    """The fields of a dataclass or TypedDict, with resolved type hints."""
    hints = get_type_hints(model, include_extras=True)
    if dataclasses.is_dataclass(model):
        specs = []
        for f in dataclasses.fields(model):
            if not f.init:
                continue
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
            specs.append(FieldSpec(f.name, hints[f.name], not has_default, default))
        return tuple(specs)
    if is_typeddict(model):
        required_keys = getattr(model, "__required_keys__", frozenset(hints))
        specs = []
        for name, tp in hints.items():
            # A Required[...] / NotRequired[...] marker decides; __required_keys__
            # misses markers written as strings (`from __future__ import annotations`).
            origin = get_origin(tp)
            if origin is not None and origin in _required_markers():
                required = getattr(origin, "_name", None) == "Required"
            else:
                required = name in required_keys
            specs.append(FieldSpec(name, tp, required, dataclasses.MISSING))
        return tuple(specs)
    raise TypeError(f"{model!r} is not a dataclass or TypedDict")


# --- validating ---------------------------------------------------------------------

#: How deep values may nest (models in lists in models...) before they are refused.
MAX_DEPTH = 64


MAX_UNKNOWN_REPORTED = 20  # unknown fields named in a 422, per object
MAX_KEY_REPORTED = 64  # characters of an unknown field's name repeated in a 422


class _Checker:
    """Walks a value against a type, collecting every problem under its path."""

    def __init__(self, *, from_text: bool, unknown_fields: str) -> None:
        self.from_text = from_text  # query strings: values are text to convert
        self.unknown_fields = unknown_fields
        self.problems: dict[str, str] = {}
        self.depth = 0

    def fail(self, path: str, message: str) -> Any:
        # A key with a lone surrogate (JSON allows "\ud800") could not be sent back as UTF-8.
        path = _SURROGATE.sub("\ufffd", path)
        self.problems.setdefault(path or "(body)", message)
        return UNSET

    def check(self, tp: Any, value: Any, path: str) -> Any:
        tp, constraints = unwrap(tp)
        inner = optional_inner(tp)
        if inner is not None:
            if value is None or (self.from_text and value == ""):
                return None
            # Optional[Annotated[X, Field(...)]]: the constraints sit inside the Optional
            tp, inner_constraints = unwrap(inner)
            constraints = [*constraints, *inner_constraints]
        elif value is None and tp is not Any and not (get_origin(tp) is Literal and None in get_args(tp)):
            return self.fail(path, "must not be null")
        # A recursive model lets a client nest as deep as the JSON parser allows:
        # stop well before Python's recursion limit turns it into a 500.
        if self.depth >= MAX_DEPTH and isinstance(value, (dict, list)):
            return self.fail(path, "is nested too deeply")
        self.depth += 1
        try:
            result = self._check_type(tp, value, path)
        finally:
            self.depth -= 1
        if result is not UNSET:
            for constraint in constraints:
                self._check_constraint(constraint, result, path)
        return result

    def _check_type(self, tp: Any, value: Any, path: str) -> Any:
        if tp is Any:
            return value
        composite = _COMPOSITES.get(get_origin(tp) or tp)  # list[int] by list, Literal[...] by Literal
        if composite is not None:
            return composite(self, tp, value, path)
        scalar = _SCALARS.get(tp)
        if scalar is not None:
            return scalar(self, value, path)
        if dataclasses.is_dataclass(tp) or is_typeddict(tp):
            return self.check_model(tp, value, path, partial=False)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum(self, tp, value, path)
        raise TypeError(f"restkit cannot validate values of type {tp!r}")

    def check_model(self, model: Any, value: Any, path: str, *, partial: bool) -> Any:
        if not isinstance(value, Mapping):
            return self.fail(path, "must be an object")
        specs = fields_of(model)
        known = {spec.name for spec in specs}
        if self.unknown_fields == "reject":
            unknown = [key for key in value if key not in known]
            # Named up to a bound, each name cut short: a 1 MB body of unknown keys gets a short answer.
            for key in unknown[:MAX_UNKNOWN_REPORTED]:
                name = str(key)
                if len(name) > MAX_KEY_REPORTED:
                    name = name[:MAX_KEY_REPORTED] + "..."
                self.fail(_join(path, name), "unknown field")
            if len(unknown) > MAX_UNKNOWN_REPORTED:
                self.fail(_join(path, "..."), f"and {len(unknown) - MAX_UNKNOWN_REPORTED} more unknown field(s)")
        values: dict[str, Any] = {}
        for spec in specs:
            if spec.name in value:
                values[spec.name] = self.check(spec.type, value[spec.name], _join(path, spec.name))
            elif partial:
                values[spec.name] = UNSET
            elif spec.required:
                self.fail(_join(path, spec.name), "required")
        if self.problems:
            return UNSET
        if is_typeddict(model):
            return values
        try:
            return model(**values)
        except (TypeError, ValueError) as exc:  # raised by the model's __post_init__
            return self.fail(path, str(exc) or "is not valid")

    def _check_constraint(self, c: Field, value: Any, path: str) -> None:
        if c.min_length is not None and hasattr(value, "__len__") and len(value) < c.min_length:
            unit = "character(s)" if isinstance(value, str) else "item(s)"
            self.fail(path, f"must have at least {c.min_length} {unit}")
        if c.max_length is not None and hasattr(value, "__len__") and len(value) > c.max_length:
            unit = "character(s)" if isinstance(value, str) else "item(s)"
            self.fail(path, f"must have at most {c.max_length} {unit}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if c.ge is not None and value < c.ge:
                self.fail(path, f"must be at least {_num(c.ge)}")
            if c.le is not None and value > c.le:
                self.fail(path, f"must be at most {_num(c.le)}")
            if c.gt is not None and value <= c.gt:
                self.fail(path, f"must be greater than {_num(c.gt)}")
            if c.lt is not None and value >= c.lt:
                self.fail(path, f"must be less than {_num(c.lt)}")
        if c.pattern is not None and isinstance(value, str) and not re.fullmatch(c.pattern, value):
            self.fail(path, f"must match the pattern {c.pattern}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_TEXT = re.compile(r"(-?[0-9]{1,19})(?:\.0+)?")  # "1.0" too: a number with no fraction is an integer
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _int(checker: _Checker, value: Any, path: str) -> Any:
    if checker.from_text and isinstance(value, str):
        text = value.strip()
        match = _INT_TEXT.fullmatch(text)
        if match:
            value = int(match[1])
        else:
            return checker.fail(path, "must be an integer")
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema 2020-12: 1.0 is an integer
    if isinstance(value, bool) or not isinstance(value, int):
        return checker.fail(path, "must be an integer")
    if not -(2**63) <= value < 2**63:
        return checker.fail(path, "is out of range for a 64-bit integer")
    return value


def _float(checker: _Checker, value: Any, path: str) -> Any:
    if checker.from_text and isinstance(value, str):
        # float() would also take "nan", "1_000" and non-ASCII digits
        if not (len(value) <= 64 and _FLOAT_TEXT.fullmatch(value.strip())):
            return checker.fail(path, "must be a number")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return checker.fail(path, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        return checker.fail(path, "is out of range for a number")
    if number != number or number in (float("inf"), float("-inf")):
        return checker.fail(path, "must be a finite number")
    return number


def _str(checker: _Checker, value: Any, path: str) -> Any:
    if not isinstance(value, str):
        return checker.fail(path, "must be a string")
    if "\x00" in value:
        return checker.fail(path, "must not contain NUL characters")
    if _SURROGATE.search(value):  # "\ud800" is valid JSON but not text: it cannot be stored or sent as UTF-8
        return checker.fail(path, "must be valid Unicode text (no lone surrogates)")
    return value


def _bool(checker: _Checker, value: Any, path: str) -> Any:
    if checker.from_text and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    if not isinstance(value, bool):
        return checker.fail(path, "must be true or false")
    return value


def _date(checker: _Checker, value: Any, path: str) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    return checker.fail(path, "must be a date as YYYY-MM-DD")


def _datetime(checker: _Checker, value: Any, path: str) -> Any:
    if isinstance(value, str) and len(value) <= 40:
        try:
            # RFC 3339 allows "t" and "z" in lower case; fromisoformat does not
            return datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            pass
    return checker.fail(path, "must be a date-time in ISO 8601 form")


def _uuid(checker: _Checker, value: Any, path: str) -> Any:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    return checker.fail(path, "must be a UUID")


def _literal(checker: _Checker, tp: Any, value: Any, path: str) -> Any:
    choices = get_args(tp)
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
        if (
            checker.from_text and isinstance(value, str) and str(choice).lower() == value.lower()
            and not isinstance(choice, str)
        ):
            return choice
    return checker.fail(path, "must be one of " + ", ".join(repr(c) for c in choices))


def _union(checker: _Checker, tp: Any, value: Any, path: str) -> Any:
    messages: list[str] = []
    for option in get_args(tp):
        sub = _Checker(from_text=checker.from_text, unknown_fields=checker.unknown_fields)
        sub.depth = checker.depth
        result = sub.check(option, value, path)
        if not sub.problems:
            return result
        messages.append(sub.problems.get(path or "(body)", ""))
    # "must be at least 1 or must be one of 'null'" says more than "no match"
    messages = [m for m in dict.fromkeys(messages) if m]
    return checker.fail(path, " or ".join(messages) if messages else "does not match any allowed type")


def _list(checker: _Checker, tp: Any, value: Any, path: str) -> Any:
    (item_type,) = get_args(tp) or (Any,)
    if not isinstance(value, list):
        return checker.fail(path, "must be an array")
    return [checker.check(item_type, item, f"{path}[{i}]") for i, item in enumerate(value)]


def _dict(checker: _Checker, tp: Any, value: Any, path: str) -> Any:
    _key_type, item_type = get_args(tp) or (str, Any)
    if not isinstance(value, dict):
        return checker.fail(path, "must be an object")
    for key in value:
        if _SURROGATE.search(key):
            checker.fail(_join(path, key), "key must be valid Unicode text (no lone surrogates)")
    return {k: checker.check(item_type, v, _join(path, k)) for k, v in value.items()}


def _enum(checker: _Checker, tp: Any, value: Any, path: str) -> Any:
    for member in tp:
        # 1 == True in Python, not in JSON: the kinds must agree too
        if (member.value == value and isinstance(value, bool) is isinstance(member.value, bool)) or (
            checker.from_text and isinstance(value, str) and str(member.value) == value
        ):
            return member
    return checker.fail(path, "must be one of " + ", ".join(repr(m.value) for m in tp))


#: Checks of the types that have parts, by their origin (``list`` for ``list[int]``).
_COMPOSITES: dict[Any, Callable[[_Checker, Any, Any, str], Any]] = {
    Literal: _literal,
    Union: _union,
    types.UnionType: _union,
    list: _list,
    dict: _dict,
}

#: Checks of the scalar types, by type.
_SCALARS: dict[Any, Callable[[_Checker, Any, str], Any]] = {
    int: _int,
    float: _float,
    str: _str,
    bool: _bool,
    datetime.date: _date,
    datetime.datetime: _datetime,
    uuid.UUID: _uuid,
}


def validate(model: Any, data: Any, *, partial: bool = False, unknown_fields: str = "reject") -> Any:
    """Validate parsed JSON against ``model``; return the typed value.

    Raises:
        ValidationError: with every problem found.
    """
    checker = _Checker(from_text=False, unknown_fields=unknown_fields)
    if dataclasses.is_dataclass(model) or is_typeddict(model):
        result = checker.check_model(model, data, "", partial=partial)
    else:
        result = checker.check(model, data, "")
    if checker.problems:
        raise ValidationError(checker.problems)
    return result


def validate_query(model: Any, query: Any, *, unknown_fields: str = "reject") -> Any:
    """Validate a query multi-dict against a dataclass; ``list[X]`` fields take every value.

    Raises:
        ValidationError: with every problem found.
    """
    values: dict[str, Any] = {}
    list_fields = {s.name for s in fields_of(model) if _is_list(s.type)}
    for key in query:
        values[key] = query.getall(key) if key in list_fields else query.get(key)
    checker = _Checker(from_text=True, unknown_fields=unknown_fields)
    result = checker.check_model(model, values, "", partial=False)
    if checker.problems:
        raise ValidationError(checker.problems)
    return result


def _is_list(tp: Any) -> bool:
    tp = unwrap(tp)[0]
    tp = unwrap(optional_inner(tp) or tp)[0]
    return tp is list or get_origin(tp) is list


def given(obj: Any) -> dict[str, Any]:
    """The fields of a validated (partial) object that were sent, as a dict."""
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if v is not UNSET}
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not UNSET}


def bind(
    handler: Callable[..., Any],
    *,
    body: Any = None,
    query: Any = None,
    partial: bool = False,
    unknown_fields: str = "reject",
) -> Callable[..., Any]:
    """Wrap ``handler`` so it receives ``body=`` and ``query=`` validated objects.

    Checks the models once, now, so a type restkit cannot validate fails when
    the route is added.
    """
    if unknown_fields not in ("reject", "ignore"):
        raise ValueError("unknown_fields must be 'reject' or 'ignore'")
    if body is not None:
        _assert_supported(body, set())
        _assert_takes(handler, "body")
    if query is not None:
        _assert_takes(handler, "query")
        if not (isinstance(query, type) and dataclasses.is_dataclass(query)):
            raise TypeError("query= takes a dataclass")
        for spec in fields_of(query):
            _assert_supported(spec.type, set())
            _assert_query_field(query, spec)

    @functools.wraps(handler)
    def validated(request: Any, **params: Any) -> Any:
        problems: dict[str, str] = {}
        if query is not None:
            try:
                params["query"] = validate_query(query, request.query, unknown_fields=unknown_fields)
            except ValidationError as exc:
                named = "; ".join(f"{name}: {problem}" for name, problem in exc.details.items())
                raise BadRequest(f"invalid query parameter(s): {named}", details=exc.details) from None
        if body is not None:
            data = request.json  # 415 / 400 come from here
            try:
                params["body"] = validate(body, data, partial=partial, unknown_fields=unknown_fields)
            except ValidationError as exc:
                problems = exc.details
            if problems:
                raise UnprocessableEntity("validation failed", details=problems)
        return handler(request, **params)

    return validated


def _assert_supported(tp: Any, seen: set[Any]) -> None:
    """Raise TypeError for a type (or a part of it) that restkit cannot validate.

    ``seen`` holds the models already checked, so recursive models terminate.
    """
    tp, constraints = unwrap(tp)
    for constraint in constraints:
        if constraint.pattern is not None:
            try:
                re.compile(constraint.pattern)
            except re.error as exc:
                raise TypeError(
                    f"Field(pattern={constraint.pattern!r}) is not a valid regular expression: {exc}"
                ) from None
    inner = optional_inner(tp)
    if inner is not None:
        return _assert_supported(inner, seen)
    origin = get_origin(tp)
    if tp is Any or origin is Literal or tp in _SCALARS or tp in (list, dict):
        return None
    if origin is dict and get_args(tp) and unwrap(get_args(tp)[0])[0] is not str:
        raise TypeError(f"restkit cannot validate {tp!r}: JSON object keys are strings, use dict[str, X]")
    if origin in (list, dict, Union, types.UnionType):
        for arg in get_args(tp):
            _assert_supported(arg, seen)
        return None
    if dataclasses.is_dataclass(tp) or is_typeddict(tp):
        if tp in seen:
            return None
        seen.add(tp)
        for spec in fields_of(tp):
            _assert_supported(spec.type, seen)
        return None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return None
    raise TypeError(f"restkit cannot validate values of type {tp!r}")




def _assert_query_field(model: Any, spec: FieldSpec) -> None:
    """A query string holds text: scalars, Literal, Enum, unions and optional ones, and lists of them."""
    tp = unwrap(spec.type)[0]
    tp = unwrap(optional_inner(tp) or tp)[0]
    if tp is list or get_origin(tp) is list:
        tp = unwrap((get_args(tp) or (str,))[0])[0]
        tp = unwrap(optional_inner(tp) or tp)[0]
    if _from_text(tp):
        return
    raise TypeError(
        f"query field {model.__name__}.{spec.name}: a query string holds text, not {spec.type!r}"
        " (use int, float, str, bool, dates, UUID, Literal, Enum, X | None or list[X] of those)"
    )


def _from_text(tp: Any) -> bool:
    """Whether a query value (text) can become ``tp``: a scalar, Literal, Enum or a union of them."""
    tp = unwrap(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):  # e.g. int | Literal["null"]
        return all(arg is type(None) or _from_text(arg) for arg in get_args(tp))
    return tp in _SCALARS or get_origin(tp) is Literal or (isinstance(tp, type) and issubclass(tp, enum.Enum))


def _assert_takes(handler: Callable[..., Any], name: str) -> None:
    """The handler must accept ``name=``, or every request would end in a 500."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # some callables have no signature to read
        return
    kinds = {p.kind for p in signature.parameters.values()}
    param = signature.parameters.get(name)
    if inspect.Parameter.VAR_KEYWORD in kinds or (
        param is not None and param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ):
        return
    what = getattr(handler, "__name__", repr(handler))
    raise TypeError(f"handler {what} must take a {name}= parameter: it receives the validated {name}")
