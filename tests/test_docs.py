"""The /docs page in a real browser: headless Chromium against a live server.

The page automates itself from its fragment (``#op=ID&p.NAME=VALUE&send=1``):
it expands the operation, fills the parameters and presses "send".  The
tests read the DOM after that (``--dump-dom``) and a screenshot, where the
green box of a successful answer must be visible.
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from restkit import App, NotFound, Request, Router
from restkit.validation import Field
from tests.browser import needs_chromium, run_chromium



# --- a small zoo API ---------------------------------------------------------------


@dataclasses.dataclass
class ZooIn:
    """A zoo to create."""

    name: Annotated[str, Field(min_length=1, max_length=80, description="the zoo's name")]
    city: Annotated[str, Field(min_length=1, max_length=80)]
    capacity: Annotated[int, Field(ge=0, le=100_000)] = 100


@dataclasses.dataclass
class Zoo:
    """A zoo."""

    id: int
    name: str
    city: str
    capacity: int


@dataclasses.dataclass
class ListZoos:
    city: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    ids: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class AnimalIn:
    name: Annotated[str, Field(min_length=1, max_length=80)]
    species: Literal["lion", "zebra", "penguin", "otter"]
    born: str | None = None


def make_zoo_app() -> App:
    """A zoo-like app with openapi=True: zoos and their animals under /v1."""
    app = App(openapi=True, title="Zoo API", version="1.2.0", description="Zoos and the animals that live in them.")
    zoos: dict[int, Zoo] = {1: Zoo(1, "Berlin Zoo", "Berlin", 1200), 2: Zoo(2, "Tierpark", "Berlin", 900)}
    v1 = Router(tags=["zoos"])
    animals = Router(tags=["animals"])

    @v1.get("/zoos", query=ListZoos, responses={200: list[Zoo]})
    def list_zoos(request: Request, query: ListZoos) -> Any:
        """List the zoos, oldest first; filter by city or ids."""
        candidates = [zoos[i] for i in query.ids if i in zoos] if query.ids else list(zoos.values())
        found = [z for z in candidates if query.city in (None, z.city)]
        return found[: query.limit]

    @v1.post("/zoos", body=ZooIn, responses={201: Zoo})
    def create_zoo(request: Request, body: ZooIn) -> Any:
        """Create a zoo."""
        zoo = Zoo(max(zoos) + 1, body.name, body.city, body.capacity)
        zoos[zoo.id] = zoo
        return zoo, 201

    @v1.get("/zoos/<int:zoo_id>", responses={200: Zoo}, errors=[404])
    def show_zoo(request: Request, zoo_id: int) -> Any:
        """Show one zoo."""
        if zoo_id not in zoos:
            raise NotFound(f"zoo {zoo_id} does not exist")
        return zoos[zoo_id]

    @v1.delete("/zoos/<int:zoo_id>", responses={204: None})
    def delete_zoo(request: Request, zoo_id: int) -> None:
        """Delete a zoo."""
        if zoos.pop(zoo_id, None) is None:
            raise NotFound(f"zoo {zoo_id} does not exist")

    @animals.post("/zoos/<int:zoo_id>/animals", body=AnimalIn, responses={201: AnimalIn})
    def add_animal(request: Request, zoo_id: int, body: AnimalIn) -> Any:
        """Add an animal to a zoo."""
        if zoo_id not in zoos:
            raise NotFound(f"zoo {zoo_id} does not exist")
        return body, 201

    @animals.get("/me", tags=["account"])
    def whoami(request: Request) -> Any:
        """Who the Authorization header says you are."""
        return {"authorization": request.headers.get("Authorization")}

    app.mount("/v1", v1)
    app.mount("/v1", animals)
    return app


# --- driving Chromium -------------------------------------------------------------


def dump_dom(url: str, tmp_path: Path) -> str:
    done = run_chromium("--dump-dom", url, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def operation(dom: str, operation_id: str) -> str:
    """The HTML of one operation's <details> element."""
    found = re.search(rf'<details class="op"[^>]*data-operation="{re.escape(operation_id)}".*?</details>\s*(?=<details class="op"|</section>)', dom, re.S)
    assert found, f"operation {operation_id} not in the page"
    return found[0]


def result_box(op_html: str) -> tuple[str, str]:
    """(status, response body text) shown in the operation's result box."""
    status = re.search(r'data-status="(\d+)"', op_html)
    body = re.search(r'<pre class="response-body">(.*?)</pre>', op_html, re.S)
    assert status and body, "no response shown"
    return status[1], html.unescape(body[1])


# --- tests ---------------------------------------------------------------------------


@needs_chromium
@pytest.mark.parametrize(
    ("fragment", "operation_id", "status", "expected"),
    [
        pytest.param("op=create_zoo&send=1", "create_zoo", "201", '"name": "string"', id="post-body-example-201"),
        pytest.param("op=show_zoo&p.zoo_id=2&send=1", "show_zoo", "200", '"name": "Tierpark"', id="get-path-param-200"),
        pytest.param("op=list_zoos&p.limit=1&send=1", "list_zoos", "200", '"name": "Berlin Zoo"', id="get-query-200"),
        pytest.param("op=show_zoo&p.zoo_id=99&send=1", "show_zoo", "404", "zoo 99 does not exist", id="missing-404"),
        pytest.param(
            "op=list_zoos&p.limit=500&send=1", "list_zoos", "400", '"limit": "must be at most 100"', id="bad-query-400"
        ),
        pytest.param("op=list_zoos&p.ids=2,%201&send=1", "list_zoos", "200", '[\n  {\n    "id": 2,', id="array-query-repeated-keys"),
        pytest.param("op=show_zoo&p.zoo_id=abc&send=1", "show_zoo", "404", "no resource at /v1/zoos/abc", id="bad-path-404"),
        pytest.param("op=delete_zoo&p.zoo_id=2&send=1", "delete_zoo", "204", "(empty)", id="delete-204"),
        pytest.param("op=whoami&auth=Bearer%20s3cret&send=1", "whoami", "200", '"authorization": "Bearer s3cret"', id="auth"),
    ],
)
def test_try_it_out_sends_the_request_and_shows_the_answer(
    live_server: Any, tmp_path: Path, fragment: str, operation_id: str, status: str, expected: str
) -> None:
    server = live_server(make_zoo_app())
    dom = dump_dom(f"{server.url}/docs#{fragment}", tmp_path)
    op = operation(dom, operation_id)
    assert re.match(r'<details class="op"[^>]* open', op), "the operation is not expanded"
    shown_status, shown_body = result_box(op)
    assert shown_status == status
    assert expected in shown_body
    assert ("result ok" in op) is status.startswith("2")
    assert ("result fail" in op) is not status.startswith("2")


@needs_chromium
def test_the_request_really_reaches_the_server(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_zoo_app())
    dom = dump_dom(f"{server.url}/docs#op=create_zoo&send=1", tmp_path)
    assert result_box(operation(dom, "create_zoo"))[0] == "201"
    with urllib.request.urlopen(f"{server.url}/v1/zoos/3", timeout=10) as response:
        assert json.load(response) == {"id": 3, "name": "string", "city": "string", "capacity": 100}


@needs_chromium
def test_page_lists_operations_grouped_by_tag(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_zoo_app())
    dom = dump_dom(f"{server.url}/docs", tmp_path)
    assert re.findall(r'<section data-tag="([^"]+)"', dom) == ["zoos", "animals", "account"]
    assert re.findall(r'data-operation="([^"]+)"', dom) == [
        "list_zoos", "create_zoo", "show_zoo", "delete_zoo", "add_animal", "whoami",
    ]
    assert '<h1 id="title">Zoo API</h1>' in dom
    assert "version 1.2.0 · OpenAPI 3.1.0" in dom
    assert " open" not in re.search(r'<details class="op"[^>]*>', dom)[0]  # type: ignore[index]


@needs_chromium
def test_screenshot_shows_the_response(live_server: Any, tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    server = live_server(make_zoo_app())
    png = tmp_path / "docs.png"
    done = run_chromium(f"--screenshot={png}", f"{server.url}/docs#op=show_zoo&p.zoo_id=1&send=1", tmp_path=tmp_path)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    image = Image.open(io.BytesIO(png.read_bytes())).convert("RGB")
    assert image.size == (1100, 900)
    counts = {colour: count for count, colour in image.getcolors(maxcolors=1 << 20)}
    background, border = (0xE3, 0xF6, 0xEA), (0x1E, 0x9E, 0x5A)
    assert counts.get(background, 0) > 20_000, "the green result box is not on screen"
    assert counts.get(border, 0) > 1_000, "the result box's border is not on screen"
    # the page is painted from the top: the dark header band is there (no blank band above it)
    assert image.getpixel((5, 5)) == (0x1D, 0x23, 0x30)


def write_readme_screenshot(path: Path) -> None:
    """Take the README's screenshot of /docs: ``python -m tests.test_docs docs/docs-screenshot.png``."""
    from tests.conftest import LiveServer

    server = LiveServer(make_zoo_app())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            done = run_chromium(
                f"--screenshot={path.resolve()}",
                "--window-size=1100,800",
                f"{server.url}/docs#op=list_zoos&p.city=Berlin&p.limit=1&send=1",
                tmp_path=Path(tmp),
            )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
    finally:
        server.close()


if __name__ == "__main__":
    import sys

    write_readme_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/docs-screenshot.png"))


# --- inline code, patterns, and samples that satisfy them ----------------------------------


@dataclasses.dataclass
class TagIn:
    code: Annotated[str, Field(pattern=r"[A-Z]{3}-\d{2}", description="like `ABC-12`")]
    slug: Annotated[str, Field(pattern=r"[a-z]+(-[a-z]+)*", min_length=3)]
    kind: Annotated[str, Field(pattern=r"(?:cat|dog)s?")] = "cat"


def make_tag_app() -> App:
    app = App(openapi=True, title="Tags", description="Tags for `zoos`.")

    @app.post("/tags", body=TagIn, responses={201: TagIn})
    def create_tag(request: Request, body: TagIn) -> Any:
        """Create a tag.

        Send ``code`` and `slug`; the answer echoes them.
        """
        return body, 201

    return app


@needs_chromium
def test_docs_render_inline_code_patterns_and_samples_that_fit(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_tag_app())
    dom = dump_dom(f"{server.url}/docs#op=create_tag&send=1", tmp_path)
    assert '<p id="description">Tags for <code>zoos</code>.</p>' in dom
    op = operation(dom, "create_tag")
    assert "<p>Send <code>code</code> and <code>slug</code>; the answer echoes them.</p>" in op
    assert 'matches <code class="pattern">[A-Z]{3}-\\d{2}</code>, like <code>ABC-12</code>' in op
    assert 'min length 3, matches <code class="pattern">[a-z]+(-[a-z]+)*</code>' in op
    status, body = result_box(op)  # the sample body was accepted: it satisfies the patterns
    assert status == "201", body
    assert json.loads(body) == {"code": "AAA-00", "slug": "a-a", "kind": "cat"}


@needs_chromium
def test_operations_that_need_auth_show_a_padlock_and_their_schemes(live_server: Any, tmp_path: Path) -> None:
    """The mark is text and a drawn padlock: an emoji showed as a box where no emoji font is installed."""
    from restkit.auth import Bearer

    app = App(openapi=True)
    bearer = Bearer({"s3cret": ["write"]})

    @app.get("/items")
    def list_items(request: Request) -> list[Any]:
        """Anyone may read."""
        return []

    @app.post("/items", auth=bearer)
    def create_item(request: Request) -> tuple[dict[str, Any], int]:
        """Token holders only."""
        return {}, 201

    @app.delete("/items/<int:id>", auth=bearer.require("write"))
    def delete_item(request: Request, id: int) -> None:
        """Writers only."""

    server = live_server(app)
    dom = dump_dom(f"{server.url}/docs", tmp_path)
    assert '<span class="lock" title="needs bearerAuth">bearerAuth</span>' in operation(dom, "create_item")
    assert '<span class="lock" title="needs bearerAuth (write)">bearerAuth (write)</span>' in operation(dom, "delete_item")
    assert 'class="lock"' not in operation(dom, "list_items")
    assert "\U0001f512" not in dom and dom.count('class="lock"') == 2
