"""Collections: the query parameters of a list and the paging headers of its answer.

A list takes ``limit`` & ``offset`` *or* ``page`` & ``per_page``, ``sortby`` &
``order``, and one filter parameter per filterable field.  Each parameter
may appear once; anything else is a 400 that names the parameter.  The
answer's ``X-Total-Count`` is the number of matching items and its ``Link``
header (RFC 8288) points to the ``first``, ``prev``, ``next`` and ``last``
pages, in the paging style the client used.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from restkit import BadRequest, MultiDict

from .schemas import MAX_ID

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ListQuery", "parse_list_query", "link_header"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_OFFSET = 2**63 - 1  # SQLite's largest integer

_PAGING = ("limit", "offset", "page", "per_page")


@dataclass
class ListQuery:
    """A parsed list request."""

    filters: dict[str, Any] = field(default_factory=dict)
    sortby: str = "id"
    order: str = "asc"
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    by_page: bool = False  # the client pages with page & per_page
    # the filter and sort parameters as the client gave them, for the Link URLs
    kept: list[tuple[str, str]] = field(default_factory=list)


def _integer(name: str, text: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not low <= int(text) <= high:
        raise BadRequest(f"query parameter {name} must be an integer from {low} to {high}, not {text[:40]!r}")
    return int(text)


def parse_list_query(
    query: MultiDict[str],
    *,
    sortable: Collection[str],
    filters: Mapping[str, str],
    defaults: Mapping[str, str] | None = None,
) -> ListQuery:
    """Check and convert a list's query parameters.

    Args:
        query: the request's query.
        sortable: the fields ``sortby`` may name.
        filters: filterable field -> ``"id"``, ``"text"`` or ``"date"``;
            ``id`` and ``date`` filters also take ``null``.
        defaults: values used for parameters the client did not give
            (``/animals/recently_added`` sorts by ``created_at`` this way).

    Raises:
        BadRequest: an unknown, repeated or invalid parameter, or both paging styles.
    """
    given: dict[str, str] = dict(defaults or {})
    for name in query:
        values = query.getall(name)
        if name not in _PAGING and name not in ("sortby", "order") and name not in filters:
            known = ", ".join([*_PAGING, "sortby", "order", *filters])
            raise BadRequest(f"unknown query parameter {name[:40]!r}; known: {known}")
        if len(values) > 1:
            raise BadRequest(f"query parameter {name} is given more than once")
        given[name] = values[0]
    offset_style = {"limit", "offset"} & query.keys()
    page_style = {"page", "per_page"} & query.keys()
    if offset_style and page_style:
        raise BadRequest(
            f"query parameters {'/'.join(sorted(offset_style))} and {'/'.join(sorted(page_style))} do not mix;"
            " page with limit & offset or with page & per_page"
        )
    result = ListQuery()
    if page_style:
        result.by_page = True
        per_page = _integer("per_page", given["per_page"], 1, MAX_LIMIT) if "per_page" in given else DEFAULT_LIMIT
        page = _integer("page", given["page"], 1, _MAX_OFFSET // per_page) if "page" in given else 1
        result.limit, result.offset = per_page, (page - 1) * per_page
    else:
        if "limit" in given:
            result.limit = _integer("limit", given["limit"], 1, MAX_LIMIT)
        if "offset" in given:
            result.offset = _integer("offset", given["offset"], 0, _MAX_OFFSET)
    if "sortby" in given:
        if given["sortby"] not in sortable:
            raise BadRequest(
                f"query parameter sortby must be one of {', '.join(sortable)}, not {given['sortby'][:40]!r}"
            )
        result.sortby = given["sortby"]
    if "order" in given:
        if given["order"] not in ("asc", "desc"):
            raise BadRequest(f"query parameter order must be asc or desc, not {given['order'][:40]!r}")
        result.order = given["order"]
    for name, kind in filters.items():
        if name in given:
            result.filters[name] = _filter_value(name, kind, given[name])
    result.kept = [(name, value) for name, value in given.items() if name not in _PAGING]
    return result


def _filter_value(name: str, kind: str, text: str) -> Any:
    if kind == "text":
        if len(text) > 1000:
            raise BadRequest(f"query parameter {name} is too long")
        return text
    if text == "null":
        return None
    if kind == "id":
        return _integer(name, text, 1, MAX_ID)
    try:
        if len(text) != 10:
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be a date YYYY-MM-DD or null, not {text[:40]!r}") from None
    return text


def link_header(url: str, query: ListQuery, total: int) -> str:
    """The RFC 8288 ``Link`` header for one page: ``first`` and ``last`` always,
    ``prev`` and ``next`` when there is such a page.

    Args:
        url: the collection's URL without a query.
        query: the parsed request.
        total: the number of items that match.
    """
    limit, offset = query.limit, query.offset
    last_offset = (total - 1) // limit * limit if total else 0
    pages: list[tuple[str, int]] = [("first", 0)]
    if offset > 0:
        pages.append(("prev", min(max(offset - limit, 0), last_offset)))
    if offset + limit < total:
        pages.append(("next", offset + limit))
    pages.append(("last", last_offset))
    links = []
    for rel, start in pages:
        if query.by_page:
            paging = [("page", str(start // limit + 1)), ("per_page", str(limit))]
        else:
            paging = [("limit", str(limit)), ("offset", str(start))]
        links.append(f'<{url}?{urlencode(query.kept + paging)}>; rel="{rel}"')
    return ", ".join(links)
