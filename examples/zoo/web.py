"""What every version of the zoo's HTTP layer shares: queries to filters, bodies to values, lists to pages.

``app.py`` (v1) and ``v2.py`` both import from here and neither imports the
other.  A list route is declared once, by its query model
(:func:`list_route`: the model, the paging derived from it, the statuses),
and its paging, sorting and filters are read once per request, by
:func:`read_list`, which asks the store for the page.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal, get_args, get_origin, get_type_hints

from restkit import Request, UnprocessableEntity
from restkit.paging import Page
from restkit.paging import Paging as PagingFeature
from restkit.validation import UNSET, given

from .records import KINDS, Row, Store
from .schemas import MAX_ID, MAX_LIMIT

__all__ = [
    "CHANGE_ERRORS",
    "GONE_ERRORS",
    "READ_ERRORS",
    "WRITE_ERRORS",
    "Collections",
    "collection_links",
    "filters",
    "list_route",
    "paging_for",
    "read_list",
    "values",
]

# Statuses beyond restkit's own (404 for path parameters, 400 for queries and
# bodies, 406, 413/415/422 for bodies) and its features' (429 while the rate limit
# is on, 401/403 for writes, 304/412 for conditional requests): 410 for deleted
# resources; 503 when the database is unreachable or read-only, or another process
# holds its write lock too long (reads meet it on PostgreSQL); 507 when a write
# finds the disk full (see faults.py).
READ_ERRORS = [503]
GONE_ERRORS = [410, *READ_ERRORS]  # reads of what can be deleted
WRITE_ERRORS = [503, 507]
CHANGE_ERRORS = [410, 503, 507]

#: (rel, route name, query, title) of a version's collections, as its root lists them
Collections = list[tuple[str, str, dict[str, Any], str]]

# the fields of a list query that page and sort rather than filter
_PAGING_FIELDS = frozenset({"limit", "offset", "page", "per_page", "sortby", "order"})


def paging_for(model: type[Any]) -> PagingFeature:
    """The paging of a list whose query model is ``model`` (its defaults and sort fields)."""
    defaults: dict[str, Any] = {spec.name: spec.default for spec in dataclasses.fields(model)}
    hint = get_type_hints(model)["sortby"]
    sort = get_args(hint) if get_origin(hint) is Literal else ()
    return PagingFeature(default_limit=defaults["limit"], max_limit=MAX_LIMIT, sort=sort,
                         default_sort=defaults["sortby"], default_order=defaults["order"], max_offset=MAX_ID)


def list_route(model: type[Any], answer: Any, **options: Any) -> dict[str, Any]:
    """The options of a list route whose query model is ``model`` and whose 200 is ``answer``."""
    return {"query": model, "paging": paging_for(model), "responses": {200: answer}, "errors": READ_ERRORS,
            **options}


def filters(query: Any, kind: str) -> dict[str, Any]:
    """The filters a validated list query gives: ``null`` is a missing id or date, dates are text."""
    types = KINDS[kind].filters
    found = {}
    for spec in dataclasses.fields(query):
        value = getattr(query, spec.name)
        if spec.name in _PAGING_FIELDS or value is UNSET:
            continue
        if value == "null" and types.get(spec.name) != "text":
            value = None  # the resources without one
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        found[spec.name] = value
    return found


def read_list(store: Store, request: Request, kind: str, query: Any,
              fixed: dict[str, Any] | None = None) -> tuple[Page, list[Row], int]:
    """The page ``request`` asks for (its route's ``paging=``), its rows and the number of matches.

    Raises:
        BadRequest: repeated parameters or two paging styles naming different pages (restkit.paging).
    """
    route = request.route
    if route is None:  # cannot happen: a routed request
        raise RuntimeError("a list outside its route")
    paging: PagingFeature = route.options["paging"]
    page = paging.read(request)
    rows, total = store.list(kind, filters={**filters(query, kind), **(fixed or {})}, sortby=page.sort or "id",
                             order=page.order, limit=page.limit, offset=page.offset)
    return page, rows, total


def collection_links(request: Request, collections: Collections, prefix: str = "") -> dict[str, dict[str, str]]:
    """HAL links to ``collections``, their rels prefixed by ``prefix`` (``"v1:"``)."""
    return {f"{prefix}{rel}": {"href": request.url_for(name, **query), "title": title, "type": "application/json"}
            for rel, name, query, title in collections}


def values(body: Any) -> dict[str, Any]:
    """The fields of a validated body, ready for the store (a PATCH body: those sent).

    Adds what the model cannot say: text is stripped of surrounding blanks and
    must not be blank then; ``born`` may not lie in the future.  Dates become
    ``YYYY-MM-DD`` text.

    Raises:
        UnprocessableEntity: like restkit's own validation, with ``details``.
    """
    found = given(body)  # all fields, or for PATCH (partial=True) only those sent
    details: dict[str, str] = {}
    for name, value in found.items():
        if isinstance(value, str):
            value = found[name] = value.strip()
            if not value:  # the pattern refuses blank text already; a model without it may not
                details[name] = "must not be blank"
        elif isinstance(value, datetime.date):
            if name == "born" and value > datetime.datetime.now(datetime.timezone.utc).date():
                details[name] = "must not be in the future"
            found[name] = value.isoformat()
    if details:
        raise UnprocessableEntity("validation failed", details=details)
    return found
