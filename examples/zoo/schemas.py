"""What a request body may hold: small declarative field specs and one validator.

Each resource is a dict of field name to :class:`Field`.  :func:`validate`
checks a parsed JSON body against one and returns the clean values, or
raises 422 with ``{"error": "validation failed", "details": {field: message}}``
naming every bad field at once.  Whether a referenced id exists
(``animal_type_id``, ``zoo_id``, ``employee_id``) is checked by the store,
inside the transaction that uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from restkit import UnprocessableEntity

__all__ = ["ANIMAL", "EMPLOYEE", "HIRE", "ZOO", "Field", "MAX_ID", "Schema", "validate"]

MAX_ID = 2**63 - 1  # the largest SQLite integer

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Field:
    """One member of a JSON body.

    Args:
        type: ``"text"``, ``"date"`` (``YYYY-MM-DD``) or ``"id"`` (an integer id).
        required: must be present when creating or replacing.
        nullable: may be ``null``.
        max_length: the most characters of a text, after stripping surrounding blanks.
        past: a date that may not lie in the future.
    """

    type: str
    required: bool = True
    nullable: bool = False
    max_length: int = 100
    past: bool = False


Schema = Mapping[str, Field]

ZOO: Schema = {
    "name": Field("text"),
    "city": Field("text"),
    "opened": Field("date", required=False, nullable=True),
}
ANIMAL: Schema = {
    "name": Field("text"),
    "animal_type_id": Field("id"),
    "zoo_id": Field("id"),
    "born": Field("date", required=False, nullable=True, past=True),
}
EMPLOYEE: Schema = {
    "name": Field("text"),
    "title": Field("text", required=False, nullable=True),
}
HIRE: Schema = {"employee_id": Field("id")}

# Fields the server owns: sent back in every detail object, never accepted.
READ_ONLY = {
    "id": "read-only field",
    "created_at": "read-only field",
    "updated_at": "read-only field",
    "links": "read-only field",
}


def validate(schema: Schema, body: Any, *, partial: bool = False, read_only: Mapping[str, str] = READ_ONLY) -> dict[str, Any]:
    """The clean values of ``body``, or 422 naming each bad field.

    Args:
        schema: the fields allowed.
        body: the parsed JSON.
        partial: a PATCH: no field is required.
        read_only: fields the client may see but not send, with the message to give.

    Raises:
        UnprocessableEntity: ``details`` maps each bad field to what is wrong.
    """
    if not isinstance(body, dict):
        raise UnprocessableEntity(
            "validation failed", details={"body": f"must be a JSON object, not {_json_type(body)}"}
        )
    details: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, value in body.items():
        spec = schema.get(name)
        if spec is None:
            details[_field_name(name)] = read_only.get(name, "unknown field")
            continue
        if value is None:
            if spec.nullable:
                clean[name] = None
            else:
                details[name] = "must not be null"
            continue
        problem, value = _check(spec, value)
        if problem:
            details[name] = problem
        else:
            clean[name] = value
    if not partial:
        for name, spec in schema.items():
            if spec.required and name not in body:
                details[name] = "required"
    if details:
        raise UnprocessableEntity("validation failed", details=details)
    return clean


def _check(spec: Field, value: Any) -> tuple[str, Any]:
    """``("", clean value)`` or ``(problem, None)``."""
    if spec.type == "text":
        if not isinstance(value, str):
            return f"must be a string, not {_json_type(value)}", None
        if len(value) > 10 * spec.max_length:  # don't strip megabytes
            return f"must be at most {spec.max_length} characters", None
        value = value.strip()
        if not value:
            return "must not be empty", None
        if len(value) > spec.max_length:
            return f"must be at most {spec.max_length} characters", None
        if _CONTROL.search(value):
            return "must not contain control characters", None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from "\ud800" in the JSON
            return "must be valid Unicode text", None
        return "", value
    if spec.type == "id":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer id, not {_json_type(value)}", None
        if not 0 < value <= MAX_ID:
            return f"must be an integer id from 1 to {MAX_ID}", None
        return "", value
    if spec.type == "date":
        if not isinstance(value, str):
            return f"must be a date string YYYY-MM-DD, not {_json_type(value)}", None
        if not _DATE.match(value):
            return "must be a date YYYY-MM-DD", None
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return "is not a valid date", None
        if spec.past and day > datetime.now(timezone.utc).date():
            return "must not be in the future", None
        return "", value
    raise ValueError(f"unknown field type {spec.type!r}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _field_name(name: str) -> str:
    """A client's field name, cut short and made safe to echo back."""
    name = name[:100]
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "replace").decode("utf-8")
    return name
