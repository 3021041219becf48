"""Collections: paging, sorting and filtering parameters, and the headers of a page.

::

    from restkit import App
    from restkit.paging import Paging

    app = App()
    BOOKMARKS = Paging(sort=["id", "title", "created"], filters=["tag"])
    bookmarks = [{"id": 1, "title": "restkit", "created": "2026-12-01", "tag": "python"}]

    @app.get("/bookmarks", paging=BOOKMARKS)
    def list_bookmarks(request):
        page = BOOKMARKS.read(request)                     # 400 naming a bad parameter
        rows, total = page.apply(bookmarks)                # SQL: page.offset, .limit, .sort, .order, .filters
        return page.response(request, rows, total)         # X-Total-Count and Link

A client pages with ``limit`` & ``offset`` *or* ``page`` & ``per_page`` (both
styles in one request must name the same page, else a 400), sorts with ``sortby`` & ``order`` (``asc``
or ``desc``) and filters with one parameter per declared field (equality,
as text).  Each of these parameters may appear once.  The answer carries
``X-Total-Count`` (the number of matching items) and an RFC 8288 ``Link``
header with ``first``, ``prev``, ``next`` and ``last``: absolute URLs that
keep every other parameter, in the paging style the client used.

:meth:`Page.apply` does the sorting, filtering and slicing of an in-memory
list; any other source takes ``offset``, ``limit``, ``sort``, ``order`` and
``filters`` and gives back the items and the total.  ``paging=`` on a route
documents the parameters and headers in the API document (a ``query=`` model
of the same route may declare them too, with its own types; it wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import BadRequest
from .feature import DocumentContext, Feature
from .response import JSON_TYPE, Response, check_header, json_dumps

if TYPE_CHECKING:
    from .request import Request

__all__ = ["Page", "Paging"]

MAX_OFFSET = 2**63 - 1  # the largest SQL integer
_OFFSET_STYLE = ("limit", "offset")
_PAGE_STYLE = ("page", "per_page")
_PAGING = _OFFSET_STYLE + _PAGE_STYLE
_PAGING_NAMES = frozenset(_PAGING)
_STYLES = (
    "Page with limit & offset or with page & per_page; a request that uses both must name the same page with each."
)
_UNSAFE = frozenset(' "#%<>?[\\]^`{|}')  # characters a path must have percent-encoded in a URL


class Page:
    """One request's paging, sorting and filters, ready for a data source."""

    __slots__ = ("offset", "limit", "sort", "order", "filters", "by_page", "kept")

    def __init__(
        self,
        offset: int,
        limit: int,
        sort: str | None,
        order: str,
        filters: dict[str, str],
        by_page: bool,
        kept: list[tuple[str, str]],
    ) -> None:
        self.offset = offset
        self.limit = limit
        self.sort = sort
        self.order = order
        #: filter field -> the text the client sent
        self.filters = filters
        #: the client pages with page & per_page
        self.by_page = by_page
        #: the other query parameters, as sent, for the Link URLs
        self.kept = kept

    @property
    def number(self) -> int:
        """The page number, counting from 1."""
        return self.offset // self.limit + 1

    def __repr__(self) -> str:
        return f"<Page offset={self.offset} limit={self.limit} sort={self.sort!r} order={self.order!r}>"

    def link_header(self, url: str, total: int) -> str:
        """The RFC 8288 ``Link`` value: ``first`` and ``last`` always, ``prev`` and ``next`` when there is such a page.

        Args:
            url: the collection's absolute URL, without a query.
            total: the number of matching items.
        """
        limit, offset = self.limit, self.offset
        last = (total - 1) // limit * limit if total else 0
        starts: list[tuple[str, int]] = [("first", 0)]
        if offset > 0:
            starts.append(("prev", min(max(offset - limit, 0), last)))
        if offset + limit < total:
            starts.append(("next", offset + limit))
        starts.append(("last", last))
        prefix = "<" + url + "?"
        if self.kept:
            from urllib.parse import urlencode  # not at the top: see restkit.forms

            prefix += urlencode(self.kept) + "&"
        # PERF(paging): the text around each number is built once
        if self.by_page:
            head, tail = prefix + "page=", f'&per_page={limit}>; rel="'
            return ", ".join([f'{head}{start // limit + 1}{tail}{rel}"' for rel, start in starts])
        head = f"{prefix}limit={limit}&offset="
        return ", ".join([f'{head}{start}>; rel="{rel}"' for rel, start in starts])

    def headers(self, request: Request, total: int) -> list[tuple[str, str]]:
        """``X-Total-Count`` and ``Link`` for this page of ``request``'s collection."""
        path = request.path
        if not (path.isascii() and path.isprintable()) or not _UNSAFE.isdisjoint(path):
            from urllib.parse import quote  # not at the top: see restkit.forms

            path = quote(path)
        return [("X-Total-Count", str(total)), ("Link", self.link_header(request.base_url + path, total))]

    def response(self, request: Request, items: Any, total: int, *, status: int = 200) -> Response:
        """``items`` as JSON with the paging headers."""
        response = Response(json_dumps(items), status, content_type=JSON_TYPE)
        count, link = self.headers(request, total)
        # PERF(paging): the count is digits; the Link holds the Host header, so it is checked
        response.headers += [count, check_header(*link)]
        return response

    def apply(self, items: Iterable[Any]) -> tuple[list[Any], int]:
        """Filter, sort and slice an in-memory collection of mappings (or objects).

        Filters compare the field's text for equality; sorting puts None first
        in ascending order.  Returns the page's items and the total.
        """

        def field(item: Any, name: str) -> Any:
            return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)

        chosen = [
            item for item in items
            if all(str(field(item, name)) == value for name, value in self.filters.items())
        ]
        if self.sort is not None:
            key = self.sort
            chosen.sort(key=lambda item: (field(item, key) is not None, field(item, key)), reverse=self.order == "desc")
        return chosen[self.offset : self.offset + self.limit], len(chosen)


def _integer(name: str, text: str, low: int, high: int) -> int:
    whole, dot, fraction = text.partition(".")
    if dot and fraction and not fraction.strip("0"):  # "20.0" is an integer too (JSON Schema 2020-12)
        text = whole
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise BadRequest(f"query parameter {name} must be a whole number from {low} to {high}",
                         details={name: "must be an integer"})
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name} must be from {low} to {high}, not {value}",
                         details={name: f"must be from {low} to {high}"})
    return value


class Paging(Feature):
    """How a collection pages, sorts and filters (the ``paging=`` route option).

    Args:
        default_limit: items per page when the client does not say.
        max_limit: the largest page a client may ask for.
        sort: the fields a client may sort by (``sortby``); empty: no sorting.
        default_sort: the sort field when the client names none (default: the first of ``sort``).
        default_order: ``"asc"`` or ``"desc"``.
        filters: the fields a client may filter by, one query parameter each.
        max_offset: the largest offset (default: the largest SQL integer); ``page`` goes up to
            ``max_offset // max_limit + 1`` whatever ``per_page`` is, one bound the document can state.
    """

    option = "paging"
    option_takes = "a paging feature (e.g. Paging(...)), or None"
    stage = 40
    per_request = False  # the handler reads its page: after validation, inside its own checks

    def __init__(
        self,
        *,
        default_limit: int = 20,
        max_limit: int = 100,
        sort: Iterable[str] = (),
        default_sort: str | None = None,
        default_order: str = "asc",
        filters: Iterable[str] = (),
        max_offset: int = MAX_OFFSET,
    ) -> None:
        if not 1 <= default_limit <= max_limit:
            raise ValueError("paging needs 1 <= default_limit <= max_limit")
        if default_order not in ("asc", "desc"):
            raise ValueError("default_order must be 'asc' or 'desc'")
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.sort = tuple(sort)
        self.default_sort = default_sort if default_sort is not None else (self.sort[0] if self.sort else None)
        if self.default_sort is not None and self.default_sort not in self.sort:
            raise ValueError(f"default_sort {self.default_sort!r} is not one of sort={list(self.sort)}")
        self.default_order = default_order
        self.filters = tuple(filters)
        clash = set(self.filters) & {*_PAGING, "sortby", "order"}
        if clash:
            raise ValueError(f"filters may not be named {', '.join(sorted(clash))}")
        self.max_offset = max_offset
        #: the largest page number, for the largest page: the same for every per_page
        self.max_page = max_offset // max_limit + 1

    def read(self, request: Request) -> Page:
        """The page ``request`` asks for.

        Raises:
            BadRequest: a parameter that is not valid, given twice, or both paging styles naming different pages.
        """
        query = request.query
        if not query:  # PERF(paging): the first page, all defaults
            return Page(0, self.default_limit, self.default_sort, self.default_order, {}, False, [])
        if query.has_repeats():
            known = {*_PAGING, "sortby", "order", *self.filters}
            for name in query:
                if name in known and len(query.getall(name)) > 1:
                    raise BadRequest(f"query parameter {name} is given more than once",
                                     details={name: "given more than once"})
        # PERF(paging): the first values as a plain dict, read with C calls from here on
        values = query.to_dict()
        get = values.get
        per_page, number = get("per_page"), get("page")
        by_page = per_page is not None or number is not None
        if by_page:
            limit = self.default_limit if per_page is None else _integer("per_page", per_page, 1, self.max_limit)
            # one bound for every page size (the document's maximum): the page starts below max_offset
            page = 1 if number is None else _integer("page", number, 1, self.max_page)
            offset = (page - 1) * limit
        if not by_page or "limit" in values or "offset" in values:
            text = get("limit")
            own_limit = self.default_limit if text is None else _integer("limit", text, 1, self.max_limit)
            text = get("offset")
            own_offset = 0 if text is None else _integer("offset", text, 0, self.max_offset)
            if by_page and (own_limit, own_offset) != (limit, offset):
                # both styles may be sent (clients generated from the document do) if they agree
                offset_style = "&".join(f"{name}={values[name]}" for name in _OFFSET_STYLE if name in values)
                page_style = "&".join(f"{name}={values[name]}" for name in _PAGE_STYLE if name in values)
                raise BadRequest(
                    f"query parameters {offset_style} and {page_style} name different pages;"
                    " page with limit & offset or with page & per_page, or make them agree"
                )
            limit, offset, by_page = own_limit, own_offset, False
        sort = get("sortby")
        if sort is None:
            sort = self.default_sort
        elif sort not in self.sort:
            allowed = ", ".join(self.sort) if self.sort else "nothing: this list has a fixed order"
            raise BadRequest(f"query parameter sortby must be one of {allowed}", details={"sortby": "unknown field"})
        order = get("order", self.default_order)
        if order != "asc" and order != "desc":
            raise BadRequest("query parameter order must be asc or desc", details={"order": "must be asc or desc"})
        filters = {name: values[name] for name in self.filters if name in values} if self.filters else {}
        kept = [] if _PAGING_NAMES.issuperset(values) else [
            item for item in values.items() if item[0] not in _PAGING_NAMES
        ]
        return Page(offset, limit, sort, order, filters, by_page, kept)

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        # No paging parameter has a default in the document: a generated client
        # would send all four, and the server's defaults are stated in words.
        limit = {"type": "integer", "minimum": 1, "maximum": self.max_limit}
        parameters = [
            ("limit", limit, "items per page, with offset"),
            ("offset", {"type": "integer", "minimum": 0, "maximum": self.max_offset}, "items to skip, with limit"),
            ("page", {"type": "integer", "minimum": 1, "maximum": self.max_page}, "page number, with per_page"),
            ("per_page", limit, "items per page, with page"),
        ]
        if self.sort:
            parameters.append(
                ("sortby", {"enum": list(self.sort), "default": self.default_sort}, "the field to sort by")
            )
            parameters.append(("order", {"enum": ["asc", "desc"], "default": self.default_order}, "the sort order"))
        for name in self.filters:
            parameters.append((name, {"type": "string"}, f"only items whose {name} equals this"))
        for name, schema, description in parameters:
            context.add_parameter(
                operation, {"name": name, "in": "query", "required": False, "description": description,
                            "schema": dict(schema)}
            )
        # a query= model's parameters won (their types), but the styles, defaults and bounds are the paging's:
        # a value the model allows and the paging refuses would be a valid request answered 400
        defaults = {"limit": self.default_limit, "offset": 0, "page": 1, "per_page": self.default_limit}
        bounds = {"limit": (1, self.max_limit), "offset": (0, self.max_offset), "page": (1, self.max_page),
                  "per_page": (1, self.max_limit)}
        for parameter in operation["parameters"]:
            name = parameter["name"]
            if parameter["in"] == "query" and name in defaults:
                own: dict[str, Any] = {k: v for k, v in parameter.get("schema", {}).items() if k != "default"}
                low, high = bounds[name]
                own["minimum"] = max(own.get("minimum", low), low)
                own["maximum"] = min(own.get("maximum", high), high)
                parameter["schema"] = own
                said = parameter.get("description") or own.get("description") or name
                parameter["description"] = f"{said} (default {defaults[name]}). {_STYLES}"
        styles = [list(_OFFSET_STYLE), list(_PAGE_STYLE)]
        operation["x-restkit-paging"] = {"styles": styles, "default_limit": self.default_limit}
        context.add_response(operation, 400)
        for response in context.success_responses(operation):
            context.add_header(response, "X-Total-Count", "the number of matching items", {"type": "integer"})
            context.add_header(response, "Link", "RFC 8288 links to the first, prev, next and last pages")
