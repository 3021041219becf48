"""A page on one origin calls the zoo on another, in headless Chromium: CORS, paging headers and a bearer token.

The page is served from one loopback port and the zoo (``cors_origins=[the
page's origin]``) from another, so every request is cross-origin: the list's
``X-Total-Count`` and ``Link`` are readable only because the zoo exposes
them, the POST with ``Authorization`` needs a preflight, and the 401 of a
wrong token is readable because errors carry the CORS headers too.  The
page writes what it saw into the DOM, which the test reads.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from restkit import App, Response
from tests.browser import needs_chromium, run_chromium
from tests.conftest import make_client
from tests.test_examples_zoo import TOKEN, new_app

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>zoo client</title></head>
<body><pre id="out">pending</pre>
<script>
const ZOO = "%(zoo)s";
async function run() {
  const out = {};
  try {
    const list = await fetch(ZOO + "/v1/animals?limit=2&sortby=name");
    out.listStatus = list.status;
    out.total = list.headers.get("X-Total-Count");
    out.link = list.headers.get("Link");
    out.names = (await list.json()).map(animal => animal.name);
    const created = await fetch(ZOO + "/v1/animals", {
      method: "POST",
      headers: {"Authorization": "Bearer %(token)s", "Content-Type": "application/json"},
      body: JSON.stringify({name: "Browser Bear", animal_type_id: 1, zoo_id: 1}),
    });
    out.createStatus = created.status;
    out.location = created.headers.get("Location");
    out.etag = created.headers.get("ETag");
    out.created = await created.json();
    const refused = await fetch(ZOO + "/v1/animals", {
      method: "POST",
      headers: {"Authorization": "Bearer wrong", "Content-Type": "application/json"},
      body: "{}",
    });
    out.refusedStatus = refused.status;
    out.refusedError = (await refused.json()).error;
  } catch (error) {
    out.exception = String(error);
  }
  document.getElementById("out").textContent = JSON.stringify(out);
}
run();
</script></body></html>
"""


@needs_chromium
def test_a_page_on_another_origin_lists_and_creates_animals(tmp_path: Path, live_server: Any) -> None:
    page_app = App()
    page_server = live_server(page_app)
    zoo = new_app(tmp_path, cors_origins=[page_server.url])
    try:
        zoo_server = live_server(zoo)
        assert page_server.port != zoo_server.port  # two origins

        @page_app.get("/", produces="text/html")
        def index(request: Any) -> Response:
            return Response.html(PAGE % {"zoo": zoo_server.url, "token": TOKEN})

        total = make_client(zoo).get("/v1/animals").headers["X-Total-Count"]
        done = run_chromium("--dump-dom", page_server.url + "/", tmp_path=tmp_path, budget_ms=10000)
        assert done.returncode == 0, done.stderr[-2000:]
        found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
        assert found is not None, done.stdout[-2000:]
        out = json.loads(html.unescape(found[1]))
        assert "exception" not in out, out
        assert out["listStatus"] == 200 and out["total"] == total and len(out["names"]) == 2
        assert f'<{zoo_server.url}/v1/animals?sortby=name&limit=2&offset=0>; rel="first"' in out["link"]
        assert out["createStatus"] == 201 and out["created"]["name"] == "Browser Bear"
        assert out["location"] == f"{zoo_server.url}/v1/animals/{out['created']['id']}" and out["etag"]
        assert out["refusedStatus"] == 401 and out["refusedError"] == "invalid token"
        # the animal really is in the zoo
        row = zoo.store.get("animal", out["created"]["id"])
        assert row["name"] == "Browser Bear"
    finally:
        zoo.close()


# --- the same without a browser: the flag, the headers, compression ---------------------------


def test_cors_origin_flag_and_headers(tmp_path: Path) -> None:
    from examples.zoo.__main__ import parse_args

    args = parse_args(["--cors-origin", "http://127.0.0.1:3000", "--cors-origin", "http://localhost:3000"])
    assert args.cors_origin == ["http://127.0.0.1:3000", "http://localhost:3000"]
    assert parse_args([]).cors_origin == []
    zoo = new_app(tmp_path, cors_origins=args.cors_origin)
    try:
        client = make_client(zoo)
        listed = client.get("/v1/zoos", headers={"Origin": "http://localhost:3000"})
        assert listed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert "X-Total-Count" in listed.headers["Access-Control-Expose-Headers"]
        preflight = client.options("/v1/zoos", headers={"Origin": "http://127.0.0.1:3000",
                                                         "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_int == 204 and preflight.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST"
        refused = client.options("/v1/zoos", headers={"Origin": "http://evil.example",
                                                       "Access-Control-Request-Method": "POST"}, status=403)
        assert "http://evil.example" in refused.json["error"]
        missing = client.get("/v1/zoos/999", headers={"Origin": "http://localhost:3000"}, status=404)
        assert missing.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert "Access-Control-Allow-Origin" not in client.get("/v1/zoos", headers={"Origin": "http://evil.example"}).headers
    finally:
        zoo.close()


def test_large_lists_are_compressed(tmp_path: Path) -> None:
    from tests.conftest import wsgi_call

    zoo = new_app(tmp_path)
    try:
        status, headers, body = wsgi_call(zoo, "GET", "/v1/animal_types?limit=100", {"Accept-Encoding": "gzip"})
        assert status == 200 and "Content-Encoding" not in headers  # six short items: not worth it
        for n in range(40):
            client = make_client(zoo)
            client.post_json("/v1/animals", {"name": f"Animal number {n}", "animal_type_id": 1, "zoo_id": 1},
                             headers={"Authorization": f"Bearer {TOKEN}"}, status=201)
        status, headers, body = wsgi_call(zoo, "GET", "/v1/animals?limit=100", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
        import gzip

        assert len(json.loads(gzip.decompress(body))) == int(headers["X-Total-Count"])
    finally:
        zoo.close()
