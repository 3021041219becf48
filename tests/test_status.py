"""restkit.status: status lines and predicates built on http.HTTPStatus."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from restkit import status

ALL_KNOWN = [s for s in HTTPStatus if 100 <= s.value <= 599]


@pytest.mark.parametrize("code", ALL_KNOWN, ids=lambda s: f"{s.value}")
def test_status_line_matches_httpstatus(code: HTTPStatus) -> None:
    assert status.status_line(int(code)) == f"{code.value} {code.phrase}"
    assert status.reason_phrase(int(code)) == code.phrase


@pytest.mark.parametrize(
    "code, line",
    [(200, "200 OK"), (201, "201 Created"), (204, "204 No Content"), (404, "404 Not Found"),
     (500, "500 Internal Server Error")],
    ids=["200", "201", "204", "404", "500"],
)
def test_obvious_status_lines(code: int, line: str) -> None:
    assert status.status_line(code) == line


def test_status_line_accepts_httpstatus_member() -> None:
    assert status.status_line(HTTPStatus.NOT_FOUND) == "404 Not Found"


@pytest.mark.parametrize(
    "code, phrase",
    [(199, "Informational"), (299, "Success"), (399, "Redirection"), (499, "Client Error"), (599, "Server Error")],
    ids=["1xx", "2xx", "3xx", "4xx", "5xx"],
)
def test_unknown_codes_get_generic_phrase_of_their_class(code: int, phrase: str) -> None:
    assert code not in {s.value for s in HTTPStatus}
    assert status.status_line(code) == f"{code} {phrase}"
    assert status.reason_phrase(code) == phrase
    # cached lines stay correct on the second call
    assert status.status_line(code) == f"{code} {phrase}"


@pytest.mark.parametrize(
    "code",
    [0, 99, 600, 1000, -404, True, False, "404", 404.0, None],
    ids=["zero", "99", "600", "1000", "negative", "True", "False", "str", "float", "None"],
)
def test_invalid_codes_raise_value_error(code: object) -> None:
    with pytest.raises(ValueError):
        status.status_line(code)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        status.reason_phrase(code)  # type: ignore[arg-type]


PREDICATES = {
    "is_informational": range(100, 200),
    "is_success": range(200, 300),
    "is_redirect": range(300, 400),
    "is_client_error": range(400, 500),
    "is_server_error": range(500, 600),
}


@pytest.mark.parametrize("name", sorted(PREDICATES))
@pytest.mark.parametrize("code", [100, 101, 199, 200, 204, 299, 300, 308, 399, 400, 404, 499, 500, 503, 599])
def test_class_predicates(name: str, code: int) -> None:
    assert getattr(status, name)(code) is (code in PREDICATES[name])


@pytest.mark.parametrize(
    "code, expected",
    [(200, False), (302, False), (399, False), (400, True), (404, True), (499, True), (500, True), (599, True)],
    ids=lambda v: str(v),
)
def test_is_error(code: int, expected: bool) -> None:
    assert status.is_error(code) is expected


@pytest.mark.parametrize(
    "code, expected",
    [(100, False), (101, False), (103, False), (200, True), (201, True), (204, False), (205, False),
     (301, True), (304, False), (404, True), (500, True)],
    ids=lambda v: str(v),
)
def test_allows_body(code: int, expected: bool) -> None:
    assert status.allows_body(code) is expected


def test_exports_httpstatus() -> None:
    assert status.HTTPStatus is HTTPStatus


def test_status_table_loads_on_first_use_with_the_same_lines() -> None:
    from restkit import response

    assert response._OK == status.status_line(200)  # written out there so `import restkit` skips http
    assert status.HTTPStatus is HTTPStatus
    for member in HTTPStatus:
        assert status.status_line(int(member)) == f"{int(member)} {member.phrase}"
