"""schemathesis hooks for the zoo's run (``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks``).

A paged list takes ``limit`` & ``offset`` *or* ``page`` & ``per_page``; a
request that sends both styles must name one page with each, else the zoo
answers 400 (``restkit.paging``).  OpenAPI cannot say that: parameters are
described one by one, with no constraint between two of them, so the
document states it in words and in ``x-restkit-paging``.  schemathesis,
reading only the schemas, would send ``limit=5&page=3`` as valid data and
count the 400 as "schema-valid request rejected".  This hook reads
``x-restkit-paging`` and, where a generated request mixes the styles and
they disagree, drops the page style: the request schemathesis meant to send
(each parameter valid) minus the one combination the document rules out in
words.  Every other 400 still counts.

Likewise an ``Idempotency-Key`` names one request (``restkit.idempotency``):
the same key with another body is 422 by design, which no schema can say,
since it depends on what was sent before.  schemathesis draws keys from the
header's schema and repeats them across different requests, so the hook
makes each generated request's key its own (a fresh UUID in the place of
one it drew); a key the schema allows is still sent every time.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


def _number(value: Any, default: int) -> int | None:
    """The whole number a query value names, as the server reads it; None when it names none."""
    if value is None:
        return default
    if isinstance(value, list):  # a repeated parameter: the server refuses it for its own reason
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def pages_disagree(query: dict[str, Any], default_limit: int) -> bool:
    """Whether ``query`` pages with both styles and they name different pages."""
    if not ({"limit", "offset"} & query.keys() and {"page", "per_page"} & query.keys()):
        return False
    numbers = [_number(query.get(name), default) for name, default in
               (("limit", default_limit), ("offset", 0), ("per_page", default_limit), ("page", 1))]
    if None in numbers:
        return False  # not numbers: a 400 for that reason, which the negative checks expect
    limit, offset, per_page, page = (number or 0 for number in numbers)
    return (limit, offset) != (per_page, (page - 1) * per_page)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    paging = case.operation.definition.raw.get("x-restkit-paging")
    if paging is None or not case.query:
        return
    if pages_disagree(case.query, int(paging["default_limit"])):
        case.query = {name: value for name, value in case.query.items() if name not in ("page", "per_page")}
