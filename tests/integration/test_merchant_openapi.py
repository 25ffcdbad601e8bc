"""The OpenAPI document the running service serves describes every route it answers."""

from __future__ import annotations

import re

import aiohttp
from openapi_spec_validator import OpenAPIV31SpecValidator

from appservices.commerce.api import API_PREFIX
from appservices.commerce.http import ROUTES
from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import CommerceApi

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


async def test_openapi_document_lists_every_route(network: RunningNetwork,
                                                  http: aiohttp.ClientSession) -> None:
    async with http.get(f"{network.commerce_url}{API_PREFIX}/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        document = await resp.json()

    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]

    served = {(path, op) for path, item in document["paths"].items()
              for op in item if op in METHODS}
    declared = {(API_PREFIX + path, method.lower()) for method, path, _, _ in ROUTES}
    assert served == declared
    # The routes the spec promises for merchant accounts, by name.
    for method, path in (
        ("get", "/shops"), ("post", "/shops"), ("get", "/shops/{slug}"),
        ("patch", "/shops/{slug}"), ("get", "/merchant"), ("get", "/me/shops"),
        ("post", "/shops/{slug}/approve"), ("post", "/shops/{slug}/reject"),
        ("post", "/shops/{slug}/suspend"), ("post", "/shops/{slug}/reinstate"),
        ("post", "/shops/{slug}/verify"), ("post", "/shops/{slug}/domain-proof"),
        ("post", "/shops/{slug}/domain-proof/check"), ("get", "/shops/{slug}/staff"),
        ("post", "/shops/{slug}/staff"), ("delete", "/shops/{slug}/staff/{user_id}"),
        ("get", "/shops/{slug}/keys"), ("post", "/shops/{slug}/keys"),
        ("delete", "/shops/{slug}/keys/{key_id}"), ("get", "/shops/{slug}/audit"),
    ):
        assert (API_PREFIX + path, method) in served, (method, path)

    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            operation_ids.append(operation["operationId"])
            assert operation["summary"], where
            responses = operation["responses"]
            assert any(re.fullmatch(r"2\d\d", code) for code in responses), where
            assert "default" in responses, where
            error = responses["default"]["content"]["application/json"]["schema"]
            assert error["required"] == ["errcode", "error"], where
            parameters = {p["name"] for p in operation.get("parameters", [])
                          if p["in"] == "path"}
            assert parameters == set(re.findall(r"{(\w+)}", path)), where
            if method in ("post", "patch", "put") and "requestBody" in operation:
                assert "application/json" in operation["requestBody"]["content"], where
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    for path, names in (("/shops", {"q", "status"}), ("/shops/{slug}/audit", {"before", "limit"})):
        parameters = document["paths"][API_PREFIX + path]["get"]["parameters"]
        assert {p["name"] for p in parameters if p["in"] == "query"} == names, path
    assert "bearer" in document["components"]["securitySchemes"]


async def test_every_documented_route_answers_json(network: RunningNetwork,
                                                   http: aiohttp.ClientSession) -> None:
    """No documented route is missing from the server: each answers with a JSON error or
    success, never aiohttp's plain-text 404 or 405."""
    api = CommerceApi(network, http)
    document = (await api.get("/openapi.json")).body
    for path, item in document["paths"].items():
        concrete = re.sub(r"{\w+}", "nothing-here", path).removeprefix(API_PREFIX)
        for method in item:
            answer = await api.call(method.upper(), concrete, api.operator(), json={})
            assert isinstance(answer.body, dict), (method, path, answer)
            assert answer.status != 405, (method, path, answer)
            if answer.status >= 400:
                assert answer.errcode and answer.error, (method, path, answer)
