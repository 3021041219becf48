"""restkit.errors: the HTTPError hierarchy, alone and raised through an app."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

import restkit
from restkit import App, HTTPError
from restkit.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    InternalServerError,
    LengthRequired,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
    URITooLong,
)

from tests.conftest import make_client

SIMPLE = [
    (BadRequest, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (NotAcceptable, 406),
    (RequestTimeout, 408),
    (Conflict, 409),
    (Gone, 410),
    (LengthRequired, 411),
    (PreconditionFailed, 412),
    (PayloadTooLarge, 413),
    (URITooLong, 414),
    (UnsupportedMediaType, 415),
    (UnprocessableEntity, 422),
    (PreconditionRequired, 428),
    (TooManyRequests, 429),
    (RequestHeaderFieldsTooLarge, 431),
    (InternalServerError, 500),
    (ServiceUnavailable, 503),
]
IDS = [cls.__name__ for cls, _ in SIMPLE]


@pytest.mark.parametrize("cls, code", SIMPLE, ids=IDS)
def test_subclass_status_and_default_message(cls: type[HTTPError], code: int) -> None:
    assert cls.status == code
    exc = cls()
    assert isinstance(exc, HTTPError)
    assert exc.status == code
    assert exc.message == HTTPStatus(code).phrase
    assert exc.to_dict() == {"error": HTTPStatus(code).phrase}
    assert str(exc) == HTTPStatus(code).phrase


@pytest.mark.parametrize("cls, code", SIMPLE, ids=IDS)
def test_subclass_is_exported_from_package(cls: type[HTTPError], code: int) -> None:
    assert getattr(restkit, cls.__name__) is cls


def test_method_not_allowed_status_and_allow() -> None:
    exc = MethodNotAllowed(["POST", "GET", "GET"])
    assert exc.status == 405
    assert exc.message == "Method Not Allowed"
    assert exc.allowed == ["GET", "POST"]
    assert ("Allow", "GET, POST") in exc.headers


def test_custom_message_and_extra_fields() -> None:
    exc = UnprocessableEntity("validation failed", details={"name": "required"})
    assert exc.to_dict() == {"error": "validation failed", "details": {"name": "required"}}
    assert repr(exc) == "UnprocessableEntity(422, 'validation failed')"


def test_base_httperror_with_explicit_status() -> None:
    exc = HTTPError(status=418)
    assert exc.status == 418
    assert exc.message == HTTPStatus(418).phrase
    assert HTTPError.status == 500  # the class attribute is untouched
    assert HTTPError().status == 500


@pytest.mark.parametrize(
    "headers",
    [{"X-Reason": "quota"}, [("X-Reason", "quota")]],
    ids=["mapping", "pairs"],
)
def test_extra_headers(headers: Any) -> None:
    assert Forbidden(headers=headers).headers == [("X-Reason", "quota")]


@pytest.mark.parametrize("cls", [PayloadTooLarge, TooManyRequests, ServiceUnavailable], ids=lambda c: c.__name__)
def test_retry_after(cls: type[HTTPError]) -> None:
    assert ("Retry-After", "30") in cls(retry_after=30).headers  # type: ignore[call-arg]
    assert ("Retry-After", "0") in cls(retry_after=-5).headers  # type: ignore[call-arg]
    assert not any(name == "Retry-After" for name, _ in cls().headers)


def test_unauthorized_www_authenticate() -> None:
    assert Unauthorized().headers == [("WWW-Authenticate", "Bearer")]
    assert Unauthorized(www_authenticate='Basic realm="zoo"').headers == [("WWW-Authenticate", 'Basic realm="zoo"')]


# -- raised from a handler, through the app ------------------------------------------------

RAISED = [
    ("bad-request", lambda: BadRequest("name is required"), 400, {"error": "name is required"}, {}),
    ("unauthorized", lambda: Unauthorized("log in"), 401, {"error": "log in"}, {"WWW-Authenticate": "Bearer"}),
    ("forbidden-default", lambda: Forbidden(), 403, {"error": "Forbidden"}, {}),
    ("not-found", lambda: NotFound("zoo 3 does not exist"), 404, {"error": "zoo 3 does not exist"}, {}),
    ("method-not-allowed", lambda: MethodNotAllowed(["GET", "PUT"]), 405, {"error": "Method Not Allowed"},
     {"Allow": "GET, PUT"}),
    ("conflict", lambda: Conflict("already exists", id=7), 409, {"error": "already exists", "id": 7}, {}),
    ("gone", lambda: Gone(), 410, {"error": "Gone"}, {}),
    ("precondition-failed", lambda: PreconditionFailed(), 412, {"error": "Precondition Failed"}, {}),
    ("payload-too-large", lambda: PayloadTooLarge("too big", retry_after=60), 413, {"error": "too big"},
     {"Retry-After": "60"}),
    ("unsupported-media-type", lambda: UnsupportedMediaType(), 415, {"error": "Unsupported Media Type"}, {}),
    ("unprocessable", lambda: UnprocessableEntity("validation failed", details={"name": "required"}), 422,
     {"error": "validation failed", "details": {"name": "required"}}, {}),
    ("too-many-requests", lambda: TooManyRequests(retry_after=30), 429, {"error": "Too Many Requests"},
     {"Retry-After": "30"}),
    ("internal", lambda: InternalServerError("db down"), 500, {"error": "db down"}, {}),
    ("unavailable", lambda: ServiceUnavailable("maintenance", retry_after=120), 503, {"error": "maintenance"},
     {"Retry-After": "120"}),
    ("teapot", lambda: HTTPError("short and stout", status=418), 418, {"error": "short and stout"}, {}),
    ("custom-header", lambda: Forbidden(headers={"X-Reason": "quota"}), 403, {"error": "Forbidden"},
     {"X-Reason": "quota"}),
]


@pytest.mark.parametrize("make, code, body, headers", [r[1:] for r in RAISED], ids=[r[0] for r in RAISED])
def test_error_raised_from_handler(make: Any, code: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    app = App()

    @app.get("/boom")
    def boom(request: Any) -> None:
        raise make()

    @app.get("/ok")
    def ok(request: Any) -> dict[str, bool]:
        return {"ok": True}

    client = make_client(app)
    resp = client.get("/boom", status=code)
    assert resp.status_int == code
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.json == body
    for name, value in headers.items():
        assert resp.headers[name] == value
    assert client.get("/ok").json == {"ok": True}


def test_error_raised_from_before_hook() -> None:
    app = App()

    @app.before_request
    def auth(request: Any) -> None:
        if "HTTP_AUTHORIZATION" not in request.environ:
            raise Unauthorized("missing token")

    @app.get("/secret")
    def secret(request: Any) -> dict[str, str]:
        return {"secret": "42"}

    client = make_client(app)
    resp = client.get("/secret", status=401)
    assert resp.json == {"error": "missing token"}
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/secret", headers={"Authorization": "Bearer x"}).json == {"secret": "42"}
