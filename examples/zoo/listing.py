"""Collections: the query parameters of a list and the paging headers of its answer.

A list takes ``limit`` & ``offset`` *or* ``page`` & ``per_page``, ``sortby`` &
``order``, and one filter parameter per filterable field, all declared as a
query model in :mod:`examples.zoo.schemas` (restkit answers 400 naming the
parameter when one is unknown or invalid).  :func:`list_query` adds what a
model cannot say: each parameter may appear once, the two paging styles do
not mix, and a page must not lie beyond the largest offset.  The answer's
``X-Total-Count`` is the number of matching items and its ``Link`` header
(RFC 8288) points to the ``first``, ``prev``, ``next`` and ``last`` pages, in
the paging style the client used.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from restkit import BadRequest, MultiDict
from restkit.validation import UNSET

from .schemas import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, Paging

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ListQuery", "link_header", "list_query"]

_PAGING = ("limit", "offset", "page", "per_page")
_SORTING = ("sortby", "order")


@dataclass
class ListQuery:
    """A list request, ready for the store."""

    filters: dict[str, Any] = field(default_factory=dict)
    sortby: str = "id"
    order: str = "asc"
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    by_page: bool = False  # the client pages with page & per_page
    # the filter and sort parameters as the client gave them, for the Link URLs
    kept: list[tuple[str, str]] = field(default_factory=list)


def list_query(params: Paging, query: MultiDict[str], *, text_filters: Mapping[str, str]) -> ListQuery:
    """Turn validated query parameters into a :class:`ListQuery`.

    Args:
        params: the route's query model, validated by restkit.
        query: the raw query, to see what the client named and how often.
        text_filters: the filter fields whose ``null`` is text, not a missing value
            (filterable field -> ``"id"``, ``"text"`` or ``"date"``).

    Raises:
        BadRequest: a repeated parameter, both paging styles, a page too far.
    """
    for name in query:
        if len(query.getall(name)) > 1:
            raise BadRequest(f"query parameter {name[:40]} is given more than once")
    offset_style = {"limit", "offset"} & query.keys()
    page_style = {"page", "per_page"} & query.keys()
    if offset_style and page_style:
        raise BadRequest(
            f"query parameters {'/'.join(sorted(offset_style))} and {'/'.join(sorted(page_style))} do not mix;"
            " page with limit & offset or with page & per_page"
        )
    result = ListQuery(sortby=getattr(params, "sortby", "id"), order=getattr(params, "order", "asc"))
    if page_style:
        result.by_page = True
        if params.page > MAX_ID // params.per_page:  # the offset would overflow the database's integers
            raise BadRequest(f"query parameter page must be at most {MAX_ID // params.per_page} with per_page={params.per_page}")
        result.limit, result.offset = params.per_page, (params.page - 1) * params.per_page
    else:
        result.limit, result.offset = params.limit, params.offset
    for spec in dataclasses.fields(params):
        value = getattr(params, spec.name)
        if spec.name in _PAGING or spec.name in _SORTING or value is UNSET:
            continue
        if value == "null" and text_filters.get(spec.name) != "text":
            value = None  # the resources without one
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        result.filters[spec.name] = value
    result.kept = [(name, query[name]) for name in query if name not in _PAGING]
    return result


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
