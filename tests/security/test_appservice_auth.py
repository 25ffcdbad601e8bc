"""Every homeserver-facing endpoint of every Mercato appservice refuses a caller
without the right `hs_token` in `Authorization: Bearer`.

tests/integration/test_appservice_endpoint.py already sends a transaction with no
token, a wrong token and the query-string token; here the same checks cover the
user and alias queries and the ping too, on both appservices, with the other ways
a token can be wrong (another service's token, the as_token, a wrong scheme, a
right token with more after it). The comparison itself is `hmac.compare_digest`
(mercato/matrix/appservice.py), constant-time by construction.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mercato_ops.testnet import RunningNetwork

COMPONENTS = ["commerce", "contacts"]
ENDPOINTS = {
    "transaction": ("PUT", "/_matrix/app/v1/transactions/{txn}"),
    "user": ("GET", "/_matrix/app/v1/users/@shop_probe:localhost"),
    "alias": ("GET", "/_matrix/app/v1/rooms/%23shop_probe:localhost"),
    "ping": ("POST", "/_matrix/app/v1/ping"),
}
# (header builder, query, expected status, errcode); `svc` is the component's config.
CREDENTIALS: dict[str, tuple[Any, dict[str, str] | None, int, str]] = {
    "missing": (lambda svc, other: {}, None, 401, "M_UNAUTHORIZED"),
    "wrong": (lambda svc, other: {"Authorization": "Bearer wrong"}, None, 403, "M_FORBIDDEN"),
    "query_string_only": (lambda svc, other: {}, "hs_token", 401, "M_UNAUTHORIZED"),
    "other_services_hs_token": (lambda svc, other: {"Authorization": f"Bearer {other.hs_token}"},
                                None, 403, "M_FORBIDDEN"),
    "as_token": (lambda svc, other: {"Authorization": f"Bearer {svc.as_token}"}, None, 403,
                 "M_FORBIDDEN"),
    "lowercase_scheme": (lambda svc, other: {"Authorization": f"bearer {svc.hs_token}"}, None,
                         401, "M_UNAUTHORIZED"),
    "basic_scheme": (lambda svc, other: {"Authorization": f"Basic {svc.hs_token}"}, None, 401,
                     "M_UNAUTHORIZED"),
    "token_with_suffix": (lambda svc, other: {"Authorization": f"Bearer {svc.hs_token}x"}, None,
                          403, "M_FORBIDDEN"),
    "token_prefix": (lambda svc, other: {"Authorization": f"Bearer {svc.hs_token[:-1]}"}, None,
                     403, "M_FORBIDDEN"),
    # HTTP drops the trailing space: this is a header with no token at all.
    "empty_bearer": (lambda svc, other: {"Authorization": "Bearer "}, None, 401,
                     "M_UNAUTHORIZED"),
}
# Already covered for transactions by tests/integration/test_appservice_endpoint.py.
COVERED_ELSEWHERE = {("transaction", "missing"), ("transaction", "wrong"),
                     ("transaction", "query_string_only")}


def _cases() -> list[Any]:
    return [pytest.param(component, endpoint, credential,
                         id=f"{component}-{endpoint}-{credential}")
            for component in COMPONENTS for endpoint in ENDPOINTS for credential in CREDENTIALS
            if (endpoint, credential) not in COVERED_ELSEWHERE]


def _event() -> dict[str, Any]:
    return {"type": "m.room.message", "room_id": "!probe:localhost",
            "sender": "@someone:localhost", "event_id": f"$probe-{uuid.uuid4().hex}",
            "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": "hello"}}


@pytest.mark.parametrize(("component", "endpoint", "credential"), _cases())
async def test_endpoint_refuses_without_the_right_hs_token(
        open_network: RunningNetwork, http, component: str, endpoint: str,
        credential: str) -> None:
    config = open_network.config
    service = getattr(config, component)
    other = config.contacts if component == "commerce" else config.commerce
    make_headers, query, status, errcode = CREDENTIALS[credential]
    method, path = ENDPOINTS[endpoint]
    txn = f"probe-{uuid.uuid4().hex}"
    url = f"http://127.0.0.1:{service.port}{path.format(txn=txn)}"
    params = {"access_token": service.hs_token} if query else None
    body = {"events": [_event()]} if endpoint == "transaction" else {}
    async with http.request(method, url, headers=make_headers(service, other), params=params,
                            json=body) as resp:
        answer = await resp.json(content_type=None)
        assert (resp.status, answer.get("errcode")) == (status, errcode), answer
    assert service.hs_token not in str(answer)
    if endpoint == "transaction":
        stored = open_network.rows(component, "SELECT COUNT(*) FROM as_transaction WHERE "
                                   "txn_id=?", txn)[0][0]
        assert stored == 0, "a refused transaction was stored"


@pytest.mark.parametrize("component", COMPONENTS)
async def test_the_right_token_is_accepted(open_network: RunningNetwork, http,
                                           component: str) -> None:
    """The control: the same requests with the right token get through."""
    service = getattr(open_network.config, component)
    headers = {"Authorization": f"Bearer {service.hs_token}"}
    base = f"http://127.0.0.1:{service.port}"
    txn = f"probe-{uuid.uuid4().hex}"
    expected = {"transaction": 200, "ping": 200, "user": 404, "alias": 404}
    for endpoint, (method, path) in ENDPOINTS.items():
        body = {"events": [_event()]} if endpoint == "transaction" else {}
        async with http.request(method, base + path.format(txn=txn), headers=headers,
                                json=body) as resp:
            assert resp.status == expected[endpoint], (endpoint, await resp.text())
    assert open_network.rows(component, "SELECT COUNT(*) FROM as_transaction WHERE txn_id=?",
                             txn)[0][0] == 1


async def test_synapse_pings_with_the_real_token_and_no_one_else_can(
        open_network: RunningNetwork, http) -> None:
    """Synapse's own ping reaches commerce (so Synapse holds the hs_token we check);
    the contacts bridge's as_token cannot ping commerce's registration."""
    config = open_network.config
    url = f"{open_network.hs_url}/_matrix/client/v1/appservice/mercato-commerce/ping"
    async with http.post(url, json={},
                         headers={"Authorization": f"Bearer {config.commerce.as_token}"}) as r:
        answer = await r.json()
        assert r.status == 200 and "duration_ms" in answer, answer
    async with http.post(url, json={},
                         headers={"Authorization": f"Bearer {config.contacts.as_token}"}) as r:
        answer = await r.json()
        assert (r.status, answer.get("errcode")) == (403, "M_FORBIDDEN"), answer
