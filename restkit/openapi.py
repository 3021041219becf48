"""An OpenAPI 3.1 document built from the route table.

Every route becomes an operation:

* path parameters from the converters (``<int:zoo_id>`` becomes ``{zoo_id}``,
  an integer);
* query parameters from the route's ``query=`` dataclass;
* the request body from ``body=``;
* responses from ``responses={201: Zoo, 200: list[Item], 204: None}`` (a
  plain 200 when none are given);
* summary and description from the handler's docstring;
* the error statuses restkit itself may answer (404 with path parameters,
  400 with a query or body, 413/415/422 with a body, 406 for JSON routes)
  plus the route's ``errors=[401, 409, ...]``, all with the ``Error`` schema;
* tags from ``tags=`` (or ``Router(tags=...)``), else the first path segment
  after a version prefix such as ``/v1``;
* ``deprecated: true`` from ``deprecated=True`` (or ``Router(defaults={"deprecated": True})``
  for a whole version);
* ``security=[{"bearerAuth": []}]`` names the schemes of
  ``App(security_schemes=...)`` an operation needs; ``header_params=["If-Match"]``
  documents request headers.

Schemas are JSON Schema 2020-12, generated from the type hints (see
:func:`json_schema`).  Dataclasses and TypedDicts become named components.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import inspect
import re
import types
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from .routing import Param, Route
from .status import reason_phrase
from .validation import FieldSpec, fields_of, is_typeddict, optional_inner, unwrap

if TYPE_CHECKING:
    from .app import App

__all__ = ["build_openapi", "json_schema"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what went wrong"},
        "details": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "for validation errors: a message per field path",
        },
    },
    "required": ["error"],
}

_SCALAR_SCHEMAS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    type(None): {"type": "null"},
}


class _Components:
    """Named schemas collected while describing types."""

    def __init__(self, reject_unknown: bool = True) -> None:
        # "Error" is taken by the error schema every document carries.
        self.schemas: dict[str, Any] = {"Error": copy.deepcopy(ERROR_SCHEMA)}
        self.names: dict[Any, str] = {}
        self.reject_unknown = reject_unknown
        self.suffix = ""
        self._lenient: _Components | None = None

    def lenient(self) -> _Components:
        """The same document's schemas for bodies that ignore unknown fields
        (``unknown_fields="ignore"``): no ``additionalProperties: false``, and
        names ending in ``Lenient``, apart from the strict forms."""
        if self._lenient is None:
            self._lenient = _Components(reject_unknown=False)
            self._lenient.schemas = self.schemas  # one table: the document has one components section
            self._lenient.suffix = "Lenient"
        return self._lenient

    def ref(self, model: Any) -> dict[str, Any]:
        name = self.names.get(model)
        if name is None:
            # Two models may share a class name (different modules): number the later ones.
            base = re.sub(r"[^A-Za-z0-9._-]", "_", model.__name__) + self.suffix
            name, n = base, 2
            while name in self.schemas:
                name, n = f"{base}{n}", n + 1
            self.names[model] = name
            self.schemas[name] = {}  # placeholder: recursive models terminate
            self.schemas[name] = self._object(model)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, model: Any) -> dict[str, Any]:
        properties = {}
        required = []
        for spec in fields_of(model):
            schema = json_schema(spec.type, self)
            if spec.default is not dataclasses.MISSING and spec.default is not None and _jsonable(spec.default):
                schema = {**schema, "default": _plain(spec.default)}
            properties[spec.name] = schema
            if spec.required:
                required.append(spec.name)
        result: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        if self.reject_unknown:
            result["additionalProperties"] = False
        doc = inspect.getdoc(model)
        if doc and not doc.startswith(model.__name__ + "("):
            result["description"] = doc
        return result


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, enum.Enum))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def json_schema(tp: Any, components: _Components | None = None) -> dict[str, Any]:
    """JSON Schema (2020-12) for a type hint, with ``Field`` constraints applied."""
    components = components or _Components()
    tp, constraints = unwrap(tp)
    inner = optional_inner(tp)
    schema: dict[str, Any]
    if inner is not None:
        schema = {"anyOf": [json_schema(inner, components), {"type": "null"}]}
    else:
        schema = _schema_of(tp, components)
    for c in constraints:
        extra = {
            "minLength" if _is_text(tp) else "minItems": c.min_length,
            "maxLength" if _is_text(tp) else "maxItems": c.max_length,
            "minimum": c.ge,
            "maximum": c.le,
            "exclusiveMinimum": c.gt,
            "exclusiveMaximum": c.lt,
            # restkit matches the whole value (re.fullmatch); JSON Schema searches
            "pattern": None if c.pattern is None else f"^(?:{c.pattern})$",
            "description": c.description,
        }
        target = schema["anyOf"][0] if inner is not None and "$ref" not in schema["anyOf"][0] else schema
        target.update({k: v for k, v in extra.items() if v is not None and k != "description"})
        if c.description:
            schema["description"] = c.description
        if c.example is not None:
            schema["examples"] = [c.example]
    return schema


_NO_NUL = "^[^\\u0000]*$"


def _without_nul(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema that says what restkit.validation enforces: text holds no NUL.

    (A client that sends ``?name=%00`` gets 400; a generated client, or a
    fuzzer, reads that here.  Only where no pattern says more already.)
    """
    if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema and "enum" not in schema:
        return {**schema, "pattern": _NO_NUL}
    if "anyOf" in schema:
        return {**schema, "anyOf": [_without_nul(option) for option in schema["anyOf"]]}
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return {**schema, "items": _without_nul(schema["items"])}
    return schema


def _is_text(tp: Any) -> bool:
    inner = optional_inner(tp)
    return (inner if inner is not None else tp) is str


def _schema_of(tp: Any, components: _Components) -> dict[str, Any]:
    if tp is Any:
        return {}
    if tp in _SCALAR_SCHEMAS:
        return dict(_SCALAR_SCHEMAS[tp])
    origin = get_origin(tp)
    if origin is Literal:
        choices = [_plain(choice) for choice in get_args(tp)]
        return {"enum": choices}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema(arg, components) for arg in get_args(tp)]}
    if origin is list or tp is list:
        args = get_args(tp)
        return {"type": "array", "items": json_schema(args[0], components) if args else {}}
    if origin is dict or tp is dict:
        args = get_args(tp)
        return {"type": "object", "additionalProperties": json_schema(args[1], components) if args else {}}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if dataclasses.is_dataclass(tp) or is_typeddict(tp):
        return components.ref(tp)
    raise TypeError(f"restkit cannot describe values of type {tp!r}")


# --- operations -------------------------------------------------------------------

_VERSION = re.compile(r"v\d+\Z")


def _openapi_path(route: Route) -> str:
    parts = [f"{{{s.name}}}" if isinstance(s, Param) else s for s in route.segments]
    return "/" + "/".join(parts)


def _tags(route: Route) -> list[str]:
    tags = route.options.get("tags")
    if tags:
        return list(tags)
    for segment in route.segments:
        if isinstance(segment, str) and segment and not _VERSION.match(segment):
            return [segment]
        if isinstance(segment, Param):
            break
    return ["root"]


def _docstring(route: Route) -> tuple[str | None, str | None]:
    doc = inspect.getdoc(route.handler)
    if not doc:
        return None, None
    summary, _, rest = doc.partition("\n")
    return summary.strip() or None, rest.strip() or None


def _operation_id(route: Route, method: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.]", "_", route.name)
    documented = route.methods - {"HEAD", "OPTIONS"}
    return base if len(documented) == 1 else f"{base}_{method.lower()}"


def _error_statuses(route: Route, method: str) -> set[int]:
    statuses = {int(s) for s in route.options.get("errors", ())}
    if route.options.get("security"):  # a requirement the client may fail: 401
        statuses.add(401)
    if any(isinstance(s, Param) for s in route.segments):
        statuses.add(404)
    if route.options.get("query") is not None:
        statuses.add(400)
    if route.options.get("body") is not None:
        statuses.update({400, 413, 415, 422})
    if route.options.get("produces", "application/json"):
        statuses.add(406)
    return statuses


def _response_content(route: Route, schema: dict[str, Any] | None) -> dict[str, Any]:
    produces = route.options.get("produces", "application/json") or "application/octet-stream"
    media = produces.partition(";")[0]
    return {media: {"schema": schema if schema is not None else {}}}


def _operation(route: Route, method: str, components: _Components) -> dict[str, Any]:
    summary, description = _docstring(route)
    op: dict[str, Any] = {"operationId": _operation_id(route, method), "tags": _tags(route)}
    if summary:
        op["summary"] = summary
    if description:
        op["description"] = description
    if route.options.get("deprecated"):
        op["deprecated"] = True
    parameters = _parameters(route, components)
    if parameters:
        op["parameters"] = parameters
    security = route.options.get("security")
    if security is not None:
        op["security"] = [{name: list(scopes) for name, scopes in requirement.items()} for requirement in security]
    body = route.options.get("body")
    if body is not None:
        op["requestBody"] = _request_body(route, body, components)
    op["responses"] = _responses(route, method, components)
    return op


def _parameters(route: Route, components: _Components) -> list[dict[str, Any]]:
    """The route's path parameters, then its ``query=`` fields, then its ``header_params``."""
    parameters: list[dict[str, Any]] = []
    for segment in route.segments:
        if isinstance(segment, Param):
            schema = dict(segment.converter.schema)
            parameters.append({"name": segment.name, "in": "path", "required": True, "schema": schema})
    query = route.options.get("query")
    if query is not None:
        parameters.extend(_query_parameter(spec, components) for spec in fields_of(query))
    for header in route.options.get("header_params", ()):
        parameters.append({"name": header, "in": "header", "required": False, "schema": {"type": "string"}})
    return parameters


def _query_parameter(spec: FieldSpec, components: _Components) -> dict[str, Any]:
    """One field of a ``query=`` model as a query parameter (a list repeats the parameter)."""
    schema = json_schema(spec.type, components)
    if spec.default is not dataclasses.MISSING and spec.default is not None and _jsonable(spec.default):
        schema = {**schema, "default": _plain(spec.default)}
    param: dict[str, Any] = {"name": spec.name, "in": "query", "required": spec.required,
                             "schema": _without_nul(schema)}
    if get_origin(unwrap(spec.type)[0]) is list:
        param["explode"] = True
    return param


def _request_body(route: Route, body: Any, components: _Components) -> dict[str, Any]:
    """The JSON body of ``body=``: lenient with ``unknown_fields="ignore"``, nothing required with ``partial=``."""
    body_components = components.lenient() if route.options.get("unknown_fields") == "ignore" else components
    schema = json_schema(body, body_components)
    if route.options.get("partial") and (dataclasses.is_dataclass(body) or is_typeddict(body)):
        schema = _partial_schema(body, body_components)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(route: Route, method: str, components: _Components) -> dict[str, Any]:
    """The statuses of ``responses=`` (or 200), then the errors the route's features may answer."""
    responses: dict[str, Any] = {}
    declared = route.options.get("responses") or {200: None}
    for status, model in declared.items():
        status = int(status)
        entry: dict[str, Any] = {"description": reason_phrase(status)}
        if status not in (204, 304) and not 300 <= status < 400:
            entry["content"] = _response_content(route, None if model is None else json_schema(model, components))
        if status == 201:  # Created: the Location header names the new resource
            entry["headers"] = {
                "Location": {"description": "the URL of the new resource", "schema": {"type": "string"}},
            }
        responses[str(status)] = entry
    for status in sorted(_error_statuses(route, method)):
        responses.setdefault(
            str(status),
            {
                "description": reason_phrase(status),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    return responses


def _partial_schema(model: Any, components: _Components) -> dict[str, Any]:
    """The model's object schema with nothing required (for PATCH)."""
    ref = components.ref(model)
    full = components.schemas[ref["$ref"].rsplit("/", 1)[1]]
    return {key: value for key, value in full.items() if key != "required"}


def build_openapi(
    app: App,
    *,
    title: str = "API",
    version: str = "1.0.0",
    description: str | None = None,
    servers: Iterable[str] | None = None,
    security_schemes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app`` (except those with ``include_in_schema=False``)."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    feature_schemes: dict[str, Any] = {}  # security schemes of auth features (restkit.auth)
    for route in app.router.routes:
        if not route.options.get("include_in_schema", True):
            continue
        item = paths.setdefault(_openapi_path(route), {})
        for method in sorted(route.methods):
            if method in ("HEAD", "OPTIONS"):
                continue
            op = _operation(route, method, components)
            _document_features(app, route, method, op, feature_schemes)
            # One handler may serve several paths (or one router be mounted
            # twice); operationIds must still be unique.
            base, n = op["operationId"], 2
            while op["operationId"] in operation_ids:
                op["operationId"], n = f"{base}_{n}", n + 1
            operation_ids.add(op["operationId"])
            item[method.lower()] = op
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": info,
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": dict(sorted(components.schemas.items()))},
    }
    security_schemes = {**feature_schemes, **(security_schemes or {})}  # the app's own descriptions win
    if security_schemes:
        document["components"]["securitySchemes"] = copy.deepcopy(dict(security_schemes))
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    tags = sorted({tag for item in paths.values() for op in item.values() for tag in op["tags"]})
    document["tags"] = [{"name": tag} for tag in tags]
    return document


def _document_features(app: App, route: Route, method: str, op: dict[str, Any], schemes: dict[str, Any]) -> None:
    """Let the route's features (auth, paging, rate limits...) describe themselves; see restkit.feature."""
    from .feature import DocumentContext, features_of

    context = DocumentContext(route, method, schemes)
    for feature in features_of(app, route):
        feature.document(op, context)
