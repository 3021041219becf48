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
