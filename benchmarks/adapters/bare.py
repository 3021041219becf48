"""Bare WSGI: one hand-written function, the floor every framework sits on."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from . import HELLO, HERD, HERD_ETAG, HERD_GZIP_ETAG, PET, PET_ETAG, PETS, not_found_message, page_links

_JSON = [("Content-Type", "application/json; charset=utf-8")]


def make_app(route_count: int = 10, compressed: bool = False) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    numbered = {f"r{i}": i for i in range(route_count)}

    def send(start_response: Callable[..., Any], status: str, data: Any) -> list[bytes]:
        body = json.dumps(data, separators=(",", ":")).encode()
        start_response(status, _JSON + [("Content-Length", str(len(body)))])
        return [body]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"]
        parts = path.split("/")
        if path == "/hello" and method == "GET":
            body = HELLO.encode()
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/animals" and method == "GET":
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            return send(start_response, "200 OK", {
                "limit": int(query.get("limit", 20)), "offset": int(query.get("offset", 0)),
                "sortby": query.get("sortby", "id"), "order": query.get("order", "asc"),
            })
        if path == "/zoos" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = json.loads(environ["wsgi.input"].read(length))
            return send(start_response, "201 Created", {"id": 1, **data})
        if len(parts) == 5 and parts[1] == "zoos" and parts[3] == "animals" and method == "GET":
            if parts[2].isdigit() and parts[4].isdigit():
                return send(start_response, "200 OK", {"zoo_id": int(parts[2]), "animal_id": int(parts[4])})
        if len(parts) == 3 and parts[1] == "items" and parts[2].isdigit() and method == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = dict(parse_qsl(environ["wsgi.input"].read(length).decode()))
            return send(start_response, "200 OK", {"id": int(parts[2]), **form})
        if path == "/pets" and method == "GET":
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            limit, offset = int(query.get("limit", 20)), int(query.get("offset", 0))
            body = json.dumps(PETS[offset : offset + limit], separators=(",", ":")).encode()
            url = f"{environ['wsgi.url_scheme']}://{environ['HTTP_HOST']}{path}"
            start_response("200 OK", _JSON + [("Content-Length", str(len(body))), ("X-Total-Count", str(len(PETS))),
                                              ("Link", page_links(url, limit, offset, len(PETS)))])
            return [body]
        if path == "/pets/7" and method == "GET":
            if PET_ETAG in [tag.strip() for tag in environ.get("HTTP_IF_NONE_MATCH", "").split(",")]:
                start_response("304 Not Modified", [("ETag", PET_ETAG)])
                return []
            return send(start_response, "200 OK", PET)
        if path == "/herd" and method == "GET":
            gzipped = compressed and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "").lower()
            tag = HERD_GZIP_ETAG if gzipped else HERD_ETAG
            if tag in [tag.strip() for tag in environ.get("HTTP_IF_NONE_MATCH", "").split(",")]:
                start_response("304 Not Modified", [("ETag", tag), ("Vary", "Accept-Encoding")])
                return []
            body = json.dumps(HERD, separators=(",", ":")).encode()
            headers = _JSON + [("ETag", tag), ("Vary", "Accept-Encoding")]
            if gzipped:
                body = gzip.compress(body, compresslevel=6)
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", headers + [("Content-Length", str(len(body)))])
            return [body]
        if len(parts) == 3 and parts[1] in numbered and parts[2].isdigit() and method == "GET":
            return send(start_response, "200 OK", {"route": numbered[parts[1]], "id": int(parts[2])})
        return send(start_response, "404 Not Found", {"error": not_found_message(path)})

    return app
