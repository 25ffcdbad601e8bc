"""The core's HTTP API toolkit (mercato/http_api), as a client of an API built with it sees it.

A small API declared here, with its own wording, answers every kind of wrong request;
then the commerce and contacts APIs' own wording is checked on the answers the toolkit
gives for them (their routes are tested in their own files).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from mercato.http_api import (
    ApiDescription,
    ApiError,
    ErrorAnswers,
    RouteTable,
    Spec,
    add_openapi_route,
    bearer_token,
    error_middleware,
    json_object,
    openapi_document,
    query_number,
    read_json,
    same_secret,
)
from mercato.values import InvalidValue

PREFIX = "/toy/v1"
LIMIT = 2048
ANSWERS = ErrorAnswers(not_found="No {path} in the toy.", not_allowed="{method}? Use {allowed}.",
                       too_large_hint="send a smaller toy.", failed="Broken; try later.",
                       unavailable="The toy box is closed; try again soon.")
ABOUT = ApiDescription(title="Toy API", description="Toys.",
                       auth_text={"none": "Anyone.", "owner": "The toy's owner."},
                       bearer_text="An owner's token.")
TOYS = RouteTable()


@TOYS.route("POST", "/toys", Spec("Add a toy", auth="owner", success=201,
                                  body={"name": {"type": "string"}}))
async def add_toy(request: web.Request) -> web.Response:
    body = await json_object(request, limit=LIMIT, hint=ANSWERS.too_large_hint)
    if "name" not in body:
        raise ApiError("Name the toy.", errcode="TOY_UNNAMED", field="name")
    return web.json_response(body, status=201)


@TOYS.route("POST", "/toys/any", Spec("Echo any JSON value", auth="none"))
async def echo(request: web.Request) -> web.Response:
    return web.json_response({"got": await read_json(request, limit=LIMIT, hint="less.")})


@TOYS.route("GET", "/toys/{toy_id}", Spec("One toy", auth="none", query={"size": "1 to 9"}))
async def get_toy(request: web.Request) -> web.Response:
    size = query_number(request, "size", default=None, low=1, high=9)
    if request.match_info["toy_id"] == "bug":
        raise RuntimeError("a bug")
    if request.match_info["toy_id"] == "locked":
        raise sqlite3.OperationalError("database is locked")
    if request.match_info["toy_id"] == "odd":
        raise InvalidValue("toy_id", "must not be odd")
    return web.json_response({"size": size})


async def outside(_: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="plain")


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[error_middleware(
        lambda request: request.path.startswith(PREFIX), ANSWERS, lambda _request: LIMIT)])
    TOYS.mount(app, PREFIX)
    add_openapi_route(app, PREFIX + "/openapi.json", openapi_document(TOYS, PREFIX, ABOUT))
    app.router.add_get("/elsewhere", outside)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def answer(resp: Any) -> tuple[int, dict[str, Any]]:
    return resp.status, await resp.json()


async def test_a_declared_route_answers_and_an_api_error_is_json_with_its_extra_fields(
        client: TestClient) -> None:
    assert await answer(await client.post(f"{PREFIX}/toys", json={"name": "kite"})) == (
        201, {"name": "kite"})
    assert await answer(await client.post(f"{PREFIX}/toys", json={})) == (
        400, {"errcode": "TOY_UNNAMED", "error": "Name the toy.", "field": "name"})


@pytest.mark.parametrize(("body", "status", "errcode"), [
    (b"{not json", 400, "M_NOT_JSON"),
    (b"\xff\xfe", 400, "M_NOT_JSON"),
    (b"[1, 2]", 400, "M_BAD_JSON"),
])
async def test_a_body_that_is_not_a_json_object_is_refused_by_name(
        client: TestClient, body: bytes, status: int, errcode: str) -> None:
    resp = await client.post(f"{PREFIX}/toys", data=body)
    assert (resp.status, (await resp.json())["errcode"]) == (status, errcode)


async def test_any_json_value_is_read_and_no_body_is_an_empty_object(
        client: TestClient) -> None:
    assert (await (await client.post(f"{PREFIX}/toys/any", json=[1])).json()) == {"got": [1]}
    assert (await (await client.post(f"{PREFIX}/toys/any")).json()) == {"got": {}}


async def test_a_body_over_the_cap_is_refused_whether_announced_or_chunked(
        client: TestClient) -> None:
    refusal = (413, {"errcode": "M_TOO_LARGE",
                     "error": "Request body over 2 KiB; send a smaller toy."})
    announced = await client.post(f"{PREFIX}/toys", data=b" " * (LIMIT + 1))
    assert await answer(announced) == refusal

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 1024

    assert await answer(await client.post(f"{PREFIX}/toys", data=chunks())) == refusal


async def test_unknown_paths_and_methods_are_answered_in_the_apis_words(
        client: TestClient) -> None:
    assert await answer(await client.get(f"{PREFIX}/nowhere")) == (
        404, {"errcode": "M_UNRECOGNIZED", "error": f"No {PREFIX}/nowhere in the toy."})
    assert await answer(await client.delete(f"{PREFIX}/toys")) == (
        405, {"errcode": "M_UNRECOGNIZED", "error": "DELETE? Use POST."})


async def test_paths_outside_the_api_are_left_alone(client: TestClient) -> None:
    resp = await client.get("/elsewhere")
    assert (resp.status, await resp.text()) == (404, "plain")


async def test_a_refused_value_a_bug_and_a_database_away_each_get_their_answer(
        client: TestClient) -> None:
    assert await answer(await client.get(f"{PREFIX}/toys/odd")) == (
        400, {"errcode": "MERCATO_INVALID", "error": "toy_id: must not be odd"})
    assert await answer(await client.get(f"{PREFIX}/toys/bug")) == (
        500, {"errcode": "M_UNKNOWN", "error": "Broken; try later."})
    locked = await client.get(f"{PREFIX}/toys/locked")
    assert await answer(locked) == (
        503, {"errcode": "MERCATO_UNAVAILABLE", "error": "The toy box is closed; try again soon."})
    assert locked.headers["Retry-After"] == "5"


@pytest.mark.parametrize(("query", "expected"), [
    ("", (200, {"size": None})),
    ("?size=9", (200, {"size": 9})),
    ("?size=0", (400, {"errcode": "MERCATO_INVALID",
                       "error": "size: must be a whole number from 1 to 9"})),
    ("?size=two", (400, {"errcode": "MERCATO_INVALID",
                         "error": "size: must be a whole number from 1 to 9"})),
])
async def test_query_numbers_are_whole_and_in_range(
        client: TestClient, query: str, expected: tuple[int, dict[str, Any]]) -> None:
    assert await answer(await client.get(f"{PREFIX}/toys/kite{query}")) == expected


async def test_the_openapi_document_is_the_route_table(client: TestClient) -> None:
    document = await (await client.get(f"{PREFIX}/openapi.json")).json()
    assert document["info"]["title"] == "Toy API"
    assert set(document["paths"]) == {f"{PREFIX}/toys", f"{PREFIX}/toys/any",
                                      f"{PREFIX}/toys/{{toy_id}}"}
    add = document["paths"][f"{PREFIX}/toys"]["post"]
    assert (add["operationId"], add["description"], add["security"]) == (
        "add_toy", "The toy's owner.", [{"bearer": []}])
    assert set(add["responses"]) == {"201", "default"}
    assert add["requestBody"]["content"]["application/json"]["schema"]["properties"] == {
        "name": {"type": "string"}}
    one = document["paths"][f"{PREFIX}/toys/{{toy_id}}"]["get"]
    assert "security" not in one
    assert [(p["name"], p["in"]) for p in one["parameters"]] == [("toy_id", "path"),
                                                                  ("size", "query")]


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"),
    ("Bearer  abc ", "abc"),
    ("Bearer ", None),
    ("bearer abc", None),
    ("Basic abc", None),
    ("abc", None),
    (None, None),
])
def test_only_a_bearer_authorization_gives_a_token(header: str | None,
                                                   token: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    assert bearer_token(make_mocked_request("GET", "/", headers=headers)) == token


def test_secrets_match_only_exactly() -> None:
    assert same_secret("s3cret", "s3cret")
    assert not same_secret("s3cre", "s3cret")
    assert not same_secret("s3cretx", "s3cret")
    assert same_secret("ключ", "ключ")


# -- each API's own wording ---------------------------------------------------------------

async def test_the_commerce_api_words_unknown_paths_methods_and_sizes_as_before() -> None:
    from appservices.commerce.api import API_PREFIX, api_errors

    async def shops(_: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application(middlewares=[api_errors])
    app.router.add_get(API_PREFIX + "/shops", shops)
    async with TestClient(TestServer(app)) as commerce:
        assert await answer(await commerce.get(f"{API_PREFIX}/nope")) == (404, {
            "errcode": "M_UNRECOGNIZED",
            "error": f"There is no {API_PREFIX}/nope in the API; see {API_PREFIX}/openapi.json"})
        assert await answer(await commerce.put(f"{API_PREFIX}/shops")) == (405, {
            "errcode": "M_UNRECOGNIZED", "error": "PUT is not allowed here; use GET, HEAD"})
        big = await commerce.put(f"{API_PREFIX}/shops", data=b" " * (1024 * 1024 + 1))
        assert await answer(big) == (413, {"errcode": "M_TOO_LARGE",
                                           "error": "Request body over 1024 KiB; send less."})
