"""restkit.routing: converters, matching, 405/HEAD/OPTIONS, mounting, url_for, route errors.

Everything here runs on Router alone, without WSGI.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from restkit import App, BuildError, Converter, RouteError, Router

from tests.conftest import make_client


def handler(request: Any, **params: Any) -> Any:
    return params


def make(name: str) -> Any:
    """A distinct handler function called ``name``."""

    def fn(request: Any, **params: Any) -> Any:
        return params

    fn.__name__ = name
    return fn


# -- converters -------------------------------------------------------------------------

U = "12345678-1234-5678-1234-567812345678"

CONVERTER_CASES = [
    # (pattern, path, expected params or None for "no match")
    ("/n/<int:v>", "/n/0", {"v": 0}),
    ("/n/<int:v>", "/n/42", {"v": 42}),
    ("/n/<int:v>", "/n/007", {"v": 7}),
    ("/n/<int:v>", f"/n/{2**63 - 1}", {"v": 2**63 - 1}),
    ("/n/<int:v>", f"/n/{2**63}", None),
    ("/n/<int:v>", "/n/" + "9" * 40, None),
    ("/n/<int:v>", "/n/-1", None),
    ("/n/<int:v>", "/n/+1", None),
    ("/n/<int:v>", "/n/1.5", None),
    ("/n/<int:v>", "/n/", None),
    ("/n/<int:v>", "/n/abc", None),
    ("/n/<int:v>", "/n/\u0661\u0662", None),  # Arabic-Indic digits
    ("/n/<int:v>", "/n/\uff11", None),  # fullwidth 1
    ("/n/<int:v>", "/n/1_000", None),
    # either side of the 18-digit fast path (no range check below 10**18)
    ("/n/<int:v>", f"/n/{10**18 - 1}", {"v": 10**18 - 1}),
    ("/n/<int:v>", f"/n/{10**18}", {"v": 10**18}),
    ("/n/<int:v>", "/n/" + "0" * 18 + "7", {"v": 7}),
    ("/n/<int:v>", "/n/" + "0" * 19 + "7", None),
    ("/n/<int:v>", "/n/1\u0662", None),  # an ASCII digit and a non-ASCII one
    ("/n/<int:v>", "/n/ 1", None),
    ("/f/<float:v>", "/f/2.5", {"v": 2.5}),
    ("/f/<float:v>", "/f/3", {"v": 3.0}),
    ("/f/<float:v>", "/f/nan", None),
    ("/f/<float:v>", "/f/inf", None),
    ("/f/<float:v>", "/f/-2.5", None),
    ("/f/<float:v>", "/f/1e5", None),
    ("/f/<float:v>", "/f/.5", None),
    ("/f/<float:v>", "/f/", None),
    ("/f/<float:v>", "/f/\u0661.5", None),
    ("/s/<v>", "/s/hello", {"v": "hello"}),
    ("/s/<str:v>", "/s/h%C3%A9", {"v": "h%C3%A9"}),  # the router gets decoded paths; no second decoding
    ("/s/<str:v>", "/s/héllo wörld", {"v": "héllo wörld"}),
    ("/s/<string:v>", "/s/x", {"v": "x"}),
    ("/s/<str:v>", "/s/", None),
    ("/s/<str:v>", "/s/a/b", None),
    ("/p/<path:v>", "/p/a/b/c.txt", {"v": "a/b/c.txt"}),
    ("/p/<path:v>", "/p/a", {"v": "a"}),
    ("/p/<path:v>", "/p/a/", {"v": "a/"}),
    ("/p/<path:v>", "/p/", None),
    ("/u/<uuid:v>", f"/u/{U}", {"v": uuid.UUID(U)}),
    ("/u/<uuid:v>", f"/u/{U.upper()}", {"v": uuid.UUID(U)}),
    ("/u/<uuid:v>", f"/u/{U.replace('-', '')}", None),
    ("/u/<uuid:v>", f"/u/{U[:-1]}g", None),
    ("/u/<uuid:v>", f"/u/{{{U}}}", None),
    ("/u/<uuid:v>", "/u/", None),
]


def converter_case_id(pattern: str, path: str, expected: Any) -> str:
    inner = pattern[pattern.index("<") + 1:-1]
    converter = inner.partition(":")[0] if ":" in inner else "default"
    segment = path.split("/", 2)[2]
    return f"{converter}-{segment.encode('unicode_escape').decode() or 'empty'}-{'ok' if expected else 'rejected'}"


@pytest.mark.parametrize(
    "pattern, path, expected", CONVERTER_CASES, ids=[converter_case_id(*case) for case in CONVERTER_CASES]
)
def test_converters(pattern: str, path: str, expected: dict[str, Any] | None) -> None:
    router = Router()
    router.add_route(pattern, handler)
    match = router.match("GET", path)
    if expected is None:
        assert match.route is None
        assert match.allowed == frozenset()
    else:
        assert match.route is not None and match.route.path == pattern
        assert match.params == expected
        assert [type(v) for v in match.params.values()] == [type(v) for v in expected.values()]


def test_unconvertible_value_is_404_through_app_not_500() -> None:
    app = App()
    app.add_route("/animals/<int:animal_id>", handler)
    app.add_route("/ok", lambda request: {"ok": True})
    client = make_client(app)
    for path in ("/animals/abc", "/animals/-1", "/animals/1.5", f"/animals/{2**64}"):
        resp = client.get(path, status=404)
        assert resp.json["error"].startswith("no resource at")
    assert client.get("/animals/5").json == {"animal_id": 5}
    assert client.get("/ok").json == {"ok": True}


class EvenConverter(Converter):
    priority = 5
    schema = {"type": "integer"}

    def to_python(self, value: str) -> int:
        if not value.isdigit() or int(value) % 2:
            raise ValueError("not even")
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


class HexConverter(Converter):
    def to_python(self, value: str) -> int:
        if not value or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("not hex")
        return int(value, 16)

    def to_url(self, value: Any) -> str:
        return format(value, "x")


def test_custom_converter_via_add_converter() -> None:
    router = Router()
    router.add_converter("hex", HexConverter)
    router.add_route("/colour/<hex:rgb>", handler, name="colour")
    assert router.match("GET", "/colour/ff00ff").params == {"rgb": 0xFF00FF}
    assert router.match("GET", "/colour/xyz").route is None
    assert router.url_for("colour", rgb=255) == "/colour/ff"


def test_custom_converter_via_constructor_and_priority() -> None:
    router = Router(converters={"even": EvenConverter})
    router.add_route("/n/<even:n>", make("even"))
    router.add_route("/n/<int:n>", make("any_int"))
    assert router.match("GET", "/n/4").route.name == "even"  # type: ignore[union-attr]
    assert router.match("GET", "/n/3").route.name == "any_int"  # type: ignore[union-attr]


def test_custom_converter_on_app() -> None:
    app = App()
    app.add_converter("hex", HexConverter)
    app.add_route("/c/<hex:v>", handler)
    client = make_client(app)
    assert client.get("/c/1f").json == {"v": 31}
    assert client.get("/c/zz", status=404).json == {"error": "no resource at /c/zz"}


def test_add_converter_rejects_non_converter() -> None:
    with pytest.raises(RouteError):
        Router().add_converter("bad", int)  # type: ignore[arg-type]


# -- priority ---------------------------------------------------------------------------


def test_static_beats_param_in_any_order() -> None:
    for order in (0, 1):
        router = Router()
        routes = [("/animals/recently_added", make("recent")), ("/animals/<int:animal>", make("one")),
                  ("/animals/<name>", make("by_name"))]
        for path, fn in routes if order == 0 else reversed(routes):
            router.add_route(path, fn)
        assert router.match("GET", "/animals/recently_added").route.name == "recent"  # type: ignore[union-attr]
        assert router.match("GET", "/animals/12").route.name == "one"  # type: ignore[union-attr]
        assert router.match("GET", "/animals/12").params == {"animal": 12}
        assert router.match("GET", "/animals/rex").route.name == "by_name"  # type: ignore[union-attr]


def test_int_beats_str_and_float() -> None:
    router = Router()
    router.add_route("/x/<s>", make("as_str"))
    router.add_route("/x/<float:f>", make("as_float"))
    router.add_route("/x/<int:i>", make("as_int"))
    assert router.match("GET", "/x/7").route.name == "as_int"  # type: ignore[union-attr]
    assert router.match("GET", "/x/7.5").route.name == "as_float"  # type: ignore[union-attr]
    assert router.match("GET", "/x/seven").route.name == "as_str"  # type: ignore[union-attr]


def test_backtracking_to_a_later_candidate() -> None:
    router = Router()
    router.add_route("/a/<int:n>/x", make("int_x"))
    router.add_route("/a/<s>/y", make("str_y"))
    # "5" converts as int, but /a/<int>/y does not exist: the str branch must still be found
    match = router.match("GET", "/a/5/y")
    assert match.route.name == "str_y" and match.params == {"s": "5"}  # type: ignore[union-attr]
    assert router.match("GET", "/a/5/x").params == {"n": 5}


def test_path_converter_after_static_and_params() -> None:
    router = Router()
    router.add_route("/files/<path:rest>", make("files"))
    router.add_route("/files/readme", make("readme"))
    assert router.match("GET", "/files/readme").route.name == "readme"  # type: ignore[union-attr]
    assert router.match("GET", "/files/docs/readme").params == {"rest": "docs/readme"}


def test_trailing_slash_is_significant() -> None:
    router = Router()
    router.add_route("/zoos", handler)
    assert router.match("GET", "/zoos").route is not None
    assert router.match("GET", "/zoos/").route is None


# -- methods ----------------------------------------------------------------------------


def test_method_dispatch() -> None:
    router = Router()
    router.add_route("/zoos", make("list_zoos"))
    router.add_route("/zoos", make("create_zoo"), methods=["POST"])
    assert router.match("GET", "/zoos").route.name == "list_zoos"  # type: ignore[union-attr]
    assert router.match("POST", "/zoos").route.name == "create_zoo"  # type: ignore[union-attr]


def test_405_allow_is_union_of_static_and_param_routes() -> None:
    router = Router()
    router.add_route("/zoos/special", make("special"), methods=["GET"])
    router.add_route("/zoos/<name>", make("delete_zoo"), methods=["DELETE"])
    match = router.match("PUT", "/zoos/special")
    assert match.route is None
    assert match.allowed == {"GET", "HEAD", "DELETE", "OPTIONS"}
    assert router.allowed_methods("/zoos/special") == {"GET", "HEAD", "DELETE", "OPTIONS"}
    # the DELETE reaches the parameter route even though a static route has that path
    match = router.match("DELETE", "/zoos/special")
    assert match.route.name == "delete_zoo" and match.params == {"name": "special"}  # type: ignore[union-attr]
    assert router.match("PUT", "/zoos/other").allowed == {"DELETE", "OPTIONS"}


def test_405_allow_through_app() -> None:
    app = App()
    app.add_route("/zoos/special", make("special"), methods=["GET"])
    app.add_route("/zoos/<name>", make("delete_zoo"), methods=["DELETE"])
    client = make_client(app)
    resp = client.put("/zoos/special", status=405)
    assert resp.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert "PUT" in resp.json["error"]


def test_unknown_path_has_no_allowed_methods() -> None:
    router = Router()
    router.add_route("/zoos", handler)
    match = router.match("GET", "/nothing")
    assert match == (None, {}, frozenset())
    assert router.allowed_methods("/nothing") == frozenset()


def test_head_falls_back_to_get() -> None:
    router = Router()
    router.add_route("/static", make("static_get"))
    router.add_route("/items/<int:n>", make("item_get"))
    assert router.match("HEAD", "/static").route.name == "static_get"  # type: ignore[union-attr]
    match = router.match("HEAD", "/items/3")
    assert match.route.name == "item_get" and match.params == {"n": 3}  # type: ignore[union-attr]


def test_explicit_head_route_wins_over_get() -> None:
    router = Router()
    router.add_route("/r", make("get_r"))
    router.add_route("/r", make("head_r"), methods=["HEAD"])
    assert router.match("HEAD", "/r").route.name == "head_r"  # type: ignore[union-attr]


def test_head_not_allowed_without_get() -> None:
    router = Router()
    router.add_route("/only-post", handler, methods=["POST"])
    match = router.match("HEAD", "/only-post")
    assert match.route is None
    assert match.allowed == {"POST", "OPTIONS"}


def test_options_is_a_partial_match_with_allow() -> None:
    router = Router()
    router.add_route("/zoos", handler, methods=["GET", "POST"])
    match = router.match("OPTIONS", "/zoos")
    assert match.route is None
    assert match.allowed == {"GET", "HEAD", "POST", "OPTIONS"}


def test_methods_are_case_insensitive_and_str_accepted() -> None:
    router = Router()
    route = router.add_route("/a", handler, methods="post")
    assert route.methods == {"POST"}
    route = router.add_route("/b", handler, methods=["get", "Put"])
    assert route.methods == {"GET", "PUT"}


# -- mounting ---------------------------------------------------------------------------


def test_mount_with_prefix_and_root() -> None:
    app = Router()
    v1 = Router()
    v1.add_route("/", make("index"))
    v1.add_route("/zoos/<int:zoo_id>", make("show_zoo"))
    app.mount("/v1", v1)
    assert app.match("GET", "/v1").route.name == "index"  # type: ignore[union-attr]
    assert app.match("GET", "/v1/").route is None
    match = app.match("GET", "/v1/zoos/3")
    assert match.route.path == "/v1/zoos/<int:zoo_id>" and match.params == {"zoo_id": 3}  # type: ignore[union-attr]
    assert app.match("GET", "/zoos/3").route is None
    assert app.url_for("show_zoo", zoo_id=3) == "/v1/zoos/3"
    assert app.url_for("index") == "/v1"
    # the mounted router still works on its own, without the prefix
    assert v1.match("GET", "/zoos/3").params == {"zoo_id": 3}
    assert v1.url_for("show_zoo", zoo_id=3) == "/zoos/3"


def test_routes_added_after_mount_propagate() -> None:
    app = Router()
    v1 = Router()
    app.mount("/v1", v1)
    v1.add_route("/late", make("late"))
    assert app.match("GET", "/v1/late").route.name == "late"  # type: ignore[union-attr]
    assert app.url_for("late") == "/v1/late"
    assert "/v1/late" in [r.path for r in app.routes]


def test_nested_mounts_propagate() -> None:
    root, api, v1 = Router(), Router(), Router()
    root.mount("/api", api)
    api.mount("/v1", v1)
    v1.add_route("/zoos", make("zoos"))
    assert root.match("GET", "/api/v1/zoos").route is not None
    assert root.url_for("zoos") == "/api/v1/zoos"


def test_mount_twice_with_namespaces() -> None:
    app = Router()
    shared = Router()
    shared.add_route("/zoos/<int:zoo_id>", make("show_zoo"))
    app.mount("/v1", shared, namespace="v1")
    app.mount("/v2", shared, namespace="v2")
    assert app.url_for("v1.show_zoo", zoo_id=1) == "/v1/zoos/1"
    assert app.url_for("v2.show_zoo", zoo_id=1) == "/v2/zoos/1"
    with pytest.raises(BuildError):
        app.url_for("show_zoo", zoo_id=1)
    shared.add_route("/later", make("later"))
    assert app.url_for("v2.later") == "/v2/later"


def test_mount_twice_without_namespace_keeps_the_first_name() -> None:
    app = Router()
    shared = Router()
    shared.add_route("/zoos", make("zoos"))
    app.mount("/v1", shared)
    app.mount("/v2", shared)  # the same handler under a second path, as in Flask
    assert app.match("GET", "/v2/zoos").route is not None
    assert app.url_for("zoos") == "/v1/zoos"


def test_mount_clash_is_a_route_error() -> None:
    app = Router()
    app.add_route("/v1/zoos", make("mine"))
    other = Router()
    other.add_route("/zoos", make("theirs"))
    with pytest.raises(RouteError):
        app.mount("/v1", other)


@pytest.mark.parametrize("prefix", ["v1", "/v1/", "/<int:v>"], ids=["no-leading-slash", "trailing-slash", "param"])
def test_bad_mount_prefix(prefix: str) -> None:
    with pytest.raises(RouteError):
        Router().mount(prefix, Router())


def test_mount_into_itself() -> None:
    router = Router()
    with pytest.raises(RouteError):
        router.mount("/x", router)


def test_mount_through_app() -> None:
    app = App()
    v1 = Router()
    app.mount("/v1", v1)

    @v1.get("/zoos/<int:zoo_id>")
    def show_zoo(request: Any, zoo_id: int) -> dict[str, int]:
        return {"id": zoo_id}

    client = make_client(app)
    assert client.get("/v1/zoos/3").json == {"id": 3}
    assert client.get("/zoos/3", status=404).json == {"error": "no resource at /zoos/3"}
    assert app.url_for("show_zoo", zoo_id=3) == "/v1/zoos/3"


# -- url_for ----------------------------------------------------------------------------


@pytest.fixture
def named() -> Router:
    router = Router()
    router.add_route("/zoos/<int:zoo_id>", make("show_zoo"))
    router.add_route("/zoos/<int:zoo_id>/animals/<name>", make("show_animal"))
    router.add_route("/files/<path:rest>", make("file"))
    router.add_route("/u/<uuid:id>", make("by_uuid"))
    router.add_route("/f/<float:x>", make("by_float"))
    router.add_route("/static", make("static"), name="custom_name")
    return router


URL_FOR = [
    ("int", "show_zoo", {"zoo_id": 3}, "/zoos/3"),
    ("two-params", "show_animal", {"zoo_id": 3, "name": "rex"}, "/zoos/3/animals/rex"),
    ("quoted-str", "show_animal", {"zoo_id": 1, "name": "a b/c?é"}, "/zoos/1/animals/a%20b%2Fc%3F%C3%A9"),
    ("path-keeps-slashes", "file", {"rest": "a/b c.txt"}, "/files/a/b%20c.txt"),
    ("uuid", "by_uuid", {"id": uuid.UUID(U)}, f"/u/{U}"),
    ("float", "by_float", {"x": 2.5}, "/f/2.5"),
    ("extra-to-query", "show_zoo", {"zoo_id": 3, "page": 2, "q": "a b"}, "/zoos/3?page=2&q=a+b"),
    ("extra-list-to-query", "show_zoo", {"zoo_id": 3, "tag": ["x", "y"]}, "/zoos/3?tag=x&tag=y"),
    ("explicit-name", "custom_name", {}, "/static"),
]


@pytest.mark.parametrize("name, params, url", [c[1:] for c in URL_FOR], ids=[c[0] for c in URL_FOR])
def test_url_for(named: Router, name: str, params: dict[str, Any], url: str) -> None:
    assert named.url_for(name, **params) == url


def test_url_for_round_trips_through_match(named: Router) -> None:
    url = named.url_for("show_animal", zoo_id=12, name="rex")
    assert named.match("GET", url).params == {"zoo_id": 12, "name": "rex"}


@pytest.mark.parametrize(
    "name, params",
    [
        ("show_zoo", {}),
        ("show_animal", {"zoo_id": 1}),
        ("show_zoo", {"zoo_id": -1}),
        ("show_zoo", {"zoo_id": "abc"}),
        ("show_zoo", {"zoo_id": True}),
        ("by_uuid", {"id": "not-a-uuid"}),
        ("by_float", {"x": float("nan")}),
        ("nope", {}),
        ("static", {}),  # registered under name= only
    ],
    ids=["missing", "missing-second", "negative-int", "str-for-int", "bool-for-int", "bad-uuid", "nan", "unknown-name",
         "function-name-when-renamed"],
)
def test_url_for_build_errors(named: Router, name: str, params: dict[str, Any]) -> None:
    with pytest.raises(BuildError):
        named.url_for(name, **params)


def test_build_error_is_lookup_error() -> None:
    assert issubclass(BuildError, LookupError)


# -- route errors at add time -------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["zoos", "", "/zoos/<int:id", "/zoos/id>", "/zoos/x<id>", "/zoos/<id>.json", "/zoos/<1id>", "/zoos/<int:>",
     "/zoos/<>", "/zoos/<a:b:c>"],
    ids=["no-slash", "empty", "unclosed", "unopened", "partial-segment-prefix", "partial-segment-suffix",
         "bad-name", "no-name", "empty-brackets", "two-colons"],
)
def test_bad_pattern(pattern: str) -> None:
    with pytest.raises(RouteError):
        Router().add_route(pattern, handler)


def test_route_error_is_value_error() -> None:
    assert issubclass(RouteError, ValueError)


def test_duplicate_param_names() -> None:
    with pytest.raises(RouteError, match="twice"):
        Router().add_route("/a/<id>/b/<int:id>", handler)


def test_unknown_converter() -> None:
    with pytest.raises(RouteError, match="unknown converter"):
        Router().add_route("/a/<hex:v>", handler)


def test_converter_registered_after_route_is_not_retroactive() -> None:
    router = Router()
    with pytest.raises(RouteError):
        router.add_route("/a/<hex:v>", handler)
    router.add_converter("hex", HexConverter)
    router.add_route("/a/<hex:v>", handler)


def test_path_converter_not_last() -> None:
    with pytest.raises(RouteError, match="last segment"):
        Router().add_route("/a/<path:p>/b", handler)


def test_duplicate_method_and_path() -> None:
    router = Router()
    router.add_route("/zoos", make("one"), methods=["GET", "POST"])
    with pytest.raises(RouteError, match="already routed"):
        router.add_route("/zoos", make("two"), methods=["POST"])
    # same shape, different parameter converter is a different route; same converter and name is a clash
    router.add_route("/zoos/<int:id>", make("three"))
    with pytest.raises(RouteError):
        router.add_route("/zoos/<int:id>", make("four"))
    # a failed add leaves the table as it was
    assert router.match("POST", "/zoos").route.name == "one"  # type: ignore[union-attr]


def test_duplicate_name_with_different_handler() -> None:
    router = Router()
    router.add_route("/a", make("same"))
    with pytest.raises(RouteError, match="already used"):
        router.add_route("/b", make("same"))
    with pytest.raises(RouteError):
        router.add_route("/c", handler, name="same")


def test_same_handler_may_serve_two_paths_under_one_name() -> None:
    router = Router()
    fn = make("list_zoos")
    router.add_route("/zoos", fn)
    router.add_route("/zoo-list", fn)
    assert router.url_for("list_zoos") == "/zoos"  # the first route keeps the name
    assert router.match("GET", "/zoo-list").route is not None


@pytest.mark.parametrize("methods", [["FETCH"], ["GET", "BREW"], [], ["CONNECT"], ["TRACE"]],
                         ids=["FETCH", "one-bad", "none", "CONNECT", "TRACE"])
def test_unknown_http_method(methods: list[str]) -> None:
    with pytest.raises(RouteError):
        Router().add_route("/a", handler, methods=methods)


def test_handler_must_be_callable() -> None:
    with pytest.raises(RouteError):
        Router().add_route("/a", "not callable")  # type: ignore[arg-type]


def test_decorators_return_handler_unchanged() -> None:
    router = Router()

    @router.post("/p")
    def create(request: Any) -> None:
        return None

    assert create.__name__ == "create"
    assert router.match("POST", "/p").route.handler is create  # type: ignore[union-attr]
    for verb in ("get", "put", "patch", "delete"):
        fn = make(f"{verb}_fn")
        getattr(router, verb)("/v")(fn)
        assert router.match(verb.upper(), "/v").route.handler is fn  # type: ignore[union-attr]


def test_route_options_are_kept() -> None:
    route = Router().add_route("/page", handler, produces="text/html")
    assert route.options == {"produces": "text/html"}


# -- many routes ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["static", "param"])
def test_thousand_routes_match_correctly(kind: str) -> None:
    router = Router()
    for i in range(1000):
        if kind == "static":
            router.add_route(f"/r{i}/items", make(f"h{i}"))
        else:
            router.add_route(f"/r{i}/items/<int:item_id>", make(f"h{i}"))
    assert len(router.routes) == 1000
    for i in (0, 1, 499, 500, 998, 999):
        path = f"/r{i}/items" + ("" if kind == "static" else f"/{i * 7}")
        match = router.match("GET", path)
        assert match.route is not None and match.route.name == f"h{i}"
        assert match.params == ({} if kind == "static" else {"item_id": i * 7})
        assert router.url_for(f"h{i}", **match.params) == path
    assert router.match("GET", "/r1000/items").route is None
    assert router.match("POST", "/r999/items" + ("" if kind == "static" else "/1")).allowed == {"GET", "HEAD", "OPTIONS"}



# -- mistakes fail when the route is added, saying what to write instead ----------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"bdy": dict}, "unknown route option bdy= for POST '/a': did you mean body=? route options are produces, body,"),
        ({"respones": {201: None}}, "unknown route option respones= for POST '/a': did you mean responses=?"),
        ({"erorrs": [409]}, "unknown route option erorrs= for POST '/a': did you mean errors=?"),
        ({"method": "PUT"}, "unknown route option method= for POST '/a': did you mean methods=?"),
        ({"zzz": 1}, "unknown route option zzz= for POST '/a': route options are produces, body, query,"),
        ({"produces": 3}, "route option produces= for POST '/a' must be a media type such as 'text/html', or None, not 3"),
        ({"body": "ZooIn"}, "route option body= for POST '/a' must be a dataclass or TypedDict (or list[Model]), not 'ZooIn'"),
        ({"responses": {"201": None}}, "route option responses= for POST '/a' must be a dict of status code to model"),
        ({"errors": 409}, "route option errors= for POST '/a' must be a list of status codes, e.g. [404, 409], not 409"),
        ({"tags": "zoos"}, "route option tags= for POST '/a' must be a list of strings, e.g. ['zoos'], not 'zoos'"),
        ({"unknown_fields": "drop"}, "route option unknown_fields= for POST '/a' must be 'reject' or 'ignore', not 'drop'"),
        ({"partial": "yes"}, "route option partial= for POST '/a' must be True or False, not 'yes'"),
        ({"include_in_schema": None}, "route option include_in_schema= for POST '/a' must be True or False, not None"),
        ({"header_params": ["If-Match", 3]}, "route option header_params= for POST '/a' must be a list of header names"),
        ({"security": ["bearerAuth"]}, "route option security= for POST '/a' must be a list of requirements"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_route_options_are_a_closed_typed_set(options: dict[str, Any], message: str) -> None:
    app = App()
    with pytest.raises(RouteError) as caught:
        app.add_route("/a", handler, methods=["POST"], **options)
    assert str(caught.value).startswith(message)
    assert app.router.routes == []


def show_by_id(request, id) -> Any:
    return {}


def show_without_request(item_id) -> Any:
    return {}


def ping() -> Any:
    return {}


def show_needing_more(request, item_id, extra) -> Any:
    return {}


def create_without_body(request) -> Any:
    return {}


def list_without_query(request: Any, **path: Any) -> Any:
    return {}


def show_positional_only(request, item_id, /) -> Any:
    return {}


SIGNATURE_MISTAKES = [
    ("path-parameter-not-taken", show_by_id, "/items/<int:item_id>", {},
     "handler show_by_id(request, id) for GET '/items/<int:item_id>' does not take the path parameter "
     "item_id as a keyword argument: write def show_by_id(request, item_id)"),
    ("no-request-parameter", show_without_request, "/items/<int:item_id>", {},
     "handler show_without_request(item_id) for GET '/items/<int:item_id>' would receive the request in item_id: "
     "the request comes first; write def show_without_request(request, item_id)"),
    ("no-parameters-at-all", ping, "/ping", {},
     "handler ping() for GET '/ping' must take the request as its first parameter: write def ping(request)"),
    ("requires-what-nobody-passes", show_needing_more, "/items/<int:item_id>", {},
     "handler show_needing_more(request, item_id, extra) for GET '/items/<int:item_id>' requires "
     "extra, which the route does not pass (it passes item_id): give extra a default, or write "
     "def show_needing_more(request, item_id)"),
    ("body-declared-not-taken", create_without_body, "/items", {"body": dict},
     "handler create_without_body(request) for GET '/items' does not take body=, the validated body the route "
     "declares, as a keyword argument: write def create_without_body(request, body)"),
    ("path-parameter-positional-only", show_positional_only, "/items/<int:item_id>", {},
     "handler show_positional_only(request, item_id, /) for GET '/items/<int:item_id>' does not take the "
     "path parameter item_id as a keyword argument"),
]


@pytest.mark.parametrize("function, pattern, options, message", [c[1:] for c in SIGNATURE_MISTAKES],
                         ids=[c[0] for c in SIGNATURE_MISTAKES])
def test_handler_signature_must_fit_the_route(function: Any, pattern: str, options: dict[str, Any], message: str) -> None:
    router = Router()
    with pytest.raises(RouteError) as caught:
        router.add_route(pattern, function, **options)
    assert str(caught.value).startswith(message)
    assert router.routes == []


@pytest.mark.parametrize(
    "function",
    [
        lambda request, item_id: None,
        lambda request, **params: None,
        lambda *args, **kwargs: None,
        lambda request, *, item_id, extra=1: None,
        list_without_query,
    ],
    ids=["exact", "var-keyword", "var-everything", "keyword-only-with-default", "kwargs-function"],
)
def test_handler_signatures_that_fit(function: Any) -> None:
    Router().add_route("/items/<int:item_id>", function)


def test_callable_objects_and_bound_methods_are_checked_too() -> None:
    class Resource:
        def show(self, request: Any, item_id: int) -> Any:
            return {"id": item_id}

        def __call__(self, request: Any) -> Any:
            return {}

    router = Router()
    router.add_route("/items/<int:item_id>", Resource().show)
    with pytest.raises(RouteError, match=r"does not take the path parameter item_id"):
        router.add_route("/other/<int:item_id>", Resource())


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("/items/{item_id}", "bad segment '{item_id}' in '/items/{item_id}': restkit writes a path parameter as <name> "
                             "or <converter:name>, not {name}: write '/items/<item_id>' (or '/items/<int:item_id>' for an integer)"),
        ("/zoos/{zoo_id:int}/animals", "write '/zoos/<zoo_id>/animals' (or '/zoos/<int:zoo_id>/animals' for an integer)"),
        ("/a{b}", "bad segment 'a{b}'"),
    ],
    ids=["openapi-style", "with-a-format", "inside-a-segment"],
)
def test_braces_are_refused_with_the_restkit_spelling(pattern: str, message: str) -> None:
    with pytest.raises(RouteError) as caught:
        Router().add_route(pattern, handler)
    assert message in str(caught.value)


def test_routes_hash_and_can_key_a_dict() -> None:
    router = Router()
    route = router.add_route("/zoos", handler, name="zoos", tags=["zoos"])
    assert {route: 1}[route] == 1
    assert hash(route) == hash(router.routes[0]) and route == router.routes[0]
    assert route != router.add_route("/other", handler, name="other")


def test_a_decorator_that_supplies_arguments_is_trusted() -> None:
    import functools

    def with_user(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(request: Any, **params: Any) -> Any:
            return function(request, user="alice", **params)

        return wrapper

    @with_user
    def show(request: Any, item_id: int, user: str) -> Any:
        return {"id": item_id, "user": user}

    app = App()
    app.add_route("/items/<int:item_id>", show)
    assert make_client(app).get("/items/3").json == {"id": 3, "user": "alice"}
