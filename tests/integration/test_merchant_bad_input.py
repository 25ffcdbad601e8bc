"""Bad input and abuse through the real API: a clear error, a stable code, nothing changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import (
    CommerceApi,
    commerce_rows,
    new_user,
    open_shop,
    unique_slug,
)


def table_sizes(network: RunningNetwork) -> dict[str, int]:
    return {table: commerce_rows(network, f"SELECT COUNT(*) FROM {table}")[0][0]
            for table in ("merchant", "staff", "audit_log", "api_key")}


@pytest.fixture
async def api(network: RunningNetwork, http: aiohttp.ClientSession) -> CommerceApi:
    return CommerceApi(network, http)


@pytest.fixture
async def applicant(network: RunningNetwork, http: aiohttp.ClientSession) -> str:
    return (await new_user(network, http, "applicant")).user_id


SLUG_HELP = ("slug: use 2-32 lowercase letters, digits and '-', starting and ending with a "
             "letter or digit (for example 'green-grocer')")


@pytest.mark.parametrize(("field", "value", "error"), [
    ("slug", "Bad_Slug", SLUG_HELP),
    ("slug", "-leading-dash", SLUG_HELP),
    ("slug", "x", SLUG_HELP),
    ("slug", "a" * 33, SLUG_HELP),
    ("slug", "café", SLUG_HELP),
    ("slug", 42, SLUG_HELP),
    ("slug", "admin", "slug: 'admin' is reserved; choose another"),
    ("slug", "directory", "slug: 'directory' is reserved; choose another"),
    ("name", 42, "name: must be text, not a number"),
    ("name", ["Big Sale"], "name: must be text, not a list"),
    ("name", "", "name: is required"),
    ("name", "N" * 65, "name: is 65 characters long; the limit is 64"),
    ("name", "Shop\u202egnp.exe",
     "name: contains invisible control characters (U+202E); remove them"),
    ("description", True, "description: must be text, not true or false"),
    ("description", "d" * 1001, "description: is 1001 characters long; the limit is 1000"),
    ("website", "http://shop.example",
     "website: must be an https:// address such as https://shop.example"),
    ("website", "https://user:pw@shop.example",
     "website: must not contain a user name or password"),
    ("website", "https://shop.example:99999",
     "website: has a port that is not a number from 1 to 65535"),
    ("avatar_url", "https://evil.example/a.png",
     "avatar_url: must be an mxc:// URI from the media repository"),
])
async def test_bad_application_changes_nothing(network: RunningNetwork, api: CommerceApi,
                                               applicant: str, field: str, value: Any,
                                               error: str) -> None:
    application = {"slug": unique_slug("bad"), "name": "Good Name", field: value}
    before = table_sizes(network)
    answer = await api.post("/shops", api.acting_as(applicant), application)
    assert answer.status == 400, answer
    assert answer.errcode == "MERCATO_INVALID"
    assert answer.error == error
    assert table_sizes(network) == before
    mine = await api.get("/me/shops", api.acting_as(applicant))
    assert mine.body["shops"] == []


async def test_duplicate_slug(network: RunningNetwork, http: aiohttp.ClientSession,
                              api: CommerceApi, applicant: str) -> None:
    slug = unique_slug("dup")
    await api.apply(applicant, slug, "First Come")
    first = await api.shop(slug)
    other = await new_user(network, http, "other")
    before = table_sizes(network)
    for taken in (slug, "demo"):
        answer = await api.post("/shops", api.acting_as(other.user_id),
                                {"slug": taken, "name": "Second Serve"})
        assert answer.status == 409 and answer.errcode == "MERCATO_SLUG_TAKEN", answer
        assert answer.error == f"The shop name '{taken}' is taken; choose another slug."
    assert table_sizes(network) == before
    assert await api.shop(slug) == first
    assert await api.staff(slug) == {applicant: "owner"}


async def test_look_alike_of_a_verified_shop_is_flagged(
        network: RunningNetwork, api: CommerceApi, applicant: str) -> None:
    suffix = unique_slug("x")[-8:]
    owner = applicant
    verified_slug = await open_shop(api, owner, "green", name=f"Green Grocer {suffix}",
                                    website="https://green.example")
    assert (await api.post(f"/shops/{verified_slug}/verify", api.operator())).status == 200

    # Case, accents, digits for letters and "Official" do not make a different name.
    look_alike = f"GRÉEN GR0CER Official {suffix}"
    slug = unique_slug("green-official")
    applied = await api.apply(owner, slug, look_alike)
    assert applied["status"] == "pending"
    assert applied["flagged"] == f"name looks like the verified shop '{verified_slug}'"
    flagged = (await api.audit(slug))[0]
    assert (flagged["action"], flagged["actor"]) == ("flagged", "mercato")
    assert flagged["detail"] == {"reason": applied["flagged"]}
    pending = await api.get("/shops?status=pending", api.operator())
    assert next(s for s in pending.body["shops"] if s["slug"] == slug)["flagged"]
    # Only the operator sees pending applications.
    refused = await api.get("/shops?status=pending", api.acting_as(owner))
    assert refused.status == 403 and refused.errcode == "M_FORBIDDEN"

    # A different name is not flagged.
    fine = await api.apply(owner, unique_slug("grocer"), f"Blue Grocer {suffix}")
    assert fine["flagged"] is None


async def test_wrong_tokens(network: RunningNetwork, http: aiohttp.ClientSession,
                            api: CommerceApi, applicant: str) -> None:
    owner = (await new_user(network, http, "owner")).user_id
    slug = await open_shop(api, owner, "tokens")
    shop = await api.shop(slug)
    key = await api.post(f"/shops/{slug}/keys", api.acting_as(owner),
                         {"label": "script", "role": "owner"})
    assert key.status == 201
    revoked = await api.delete(f"/shops/{slug}/keys/{key.body['key_id']}", api.acting_as(owner))
    assert revoked.status == 200
    before = table_sizes(network)

    cases: list[tuple[dict[str, str], int, str, str]] = [
        ({"Authorization": "Bearer not-a-token"}, 401, "M_UNKNOWN_TOKEN",
         "This token is unknown or the API key was revoked; create a new key with the shop "
         "bot or the API."),
        ({"Authorization": f"Bearer {key.body['key']}"}, 401, "M_UNKNOWN_TOKEN",
         "This token is unknown or the API key was revoked; create a new key with the shop "
         "bot or the API."),
        ({"Authorization": f"Bearer {key.body['key'][:-2]}"}, 401, "M_UNKNOWN_TOKEN",
         "This token is unknown or the API key was revoked; create a new key with the shop "
         "bot or the API."),
        ({"Authorization": f"Basic {network.config.commerce.operator_token}"}, 401,
         "M_MISSING_TOKEN", "Use 'Authorization: Bearer <token>'."),
        ({}, 401, "M_MISSING_TOKEN", "Sign this request: 'Authorization: Bearer <API key>'."),
        ({"Authorization": f"Bearer {network.config.commerce.service_token}"}, 400,
         "M_MISSING_PARAM", "The service token needs the X-Mercato-Acting-User header naming "
                            "the Matrix user it acts for."),
        ({**api.acting_as(owner), "X-Mercato-Acting-User": "owner"}, 400, "MERCATO_INVALID",
         "X-Mercato-Acting-User: must be a Matrix user ID such as @alice:example.org"),
    ]
    for auth, status, errcode, error in cases:
        for method, path, body in (
            ("PATCH", f"/shops/{slug}", {"name": "Hijacked"}),
            ("POST", f"/shops/{slug}/keys", {"label": "mine now"}),
            ("POST", f"/shops/{slug}/staff", {"user_id": applicant, "role": "owner"}),
            ("POST", "/shops", {"slug": unique_slug("sneak"), "name": "Sneaky"}),
        ):
            answer = await api.call(method, path, auth, json=body)
            assert (answer.status, answer.errcode, answer.error) == (status, errcode, error), \
                (auth, method, path, answer)
    assert table_sizes(network) == before
    assert await api.shop(slug) == shop
    # A wrong token is refused even where none is needed: it is a mistake worth telling.
    answer = await api.get(f"/shops/{slug}", {"Authorization": "Bearer not-a-token"})
    assert answer.status == 401


async def test_malformed_bodies(network: RunningNetwork, http: aiohttp.ClientSession,
                                api: CommerceApi, applicant: str) -> None:
    owner = (await new_user(network, http, "owner")).user_id
    slug = await open_shop(api, owner, "bodies")
    shop = await api.shop(slug)
    before = table_sizes(network)
    json_header = {"Content-Type": "application/json"}
    as_owner = api.acting_as(owner)

    for method, path in (("POST", "/shops"), ("PATCH", f"/shops/{slug}"),
                         ("POST", f"/shops/{slug}/staff"), ("POST", f"/shops/{slug}/keys")):
        for data in (b"{not json", b'{"name": "Trailing",}', b"\xff\xfe\x00garbage"):
            answer = await api.call(method, path, as_owner, data=data, headers=json_header)
            assert answer.status == 400, (method, path, data, answer)
            assert answer.errcode == "M_NOT_JSON"
            assert answer.error == "The request body is not valid JSON."
        answer = await api.call(method, path, as_owner, json=["a", "list"])
        assert answer.status == 400 and answer.errcode == "MERCATO_INVALID", (path, answer)
        assert answer.error.startswith("body: "), answer

    # PATCH names what cannot be changed, and checks customer-service settings.
    for body, error in (
        ({"status": "approved"}, "status: cannot be changed; changeable: name, description, "
                                 "website, avatar_url, welcome_message, away_message, "
                                 "opening_hours, keyword_replies"),
        ({"opening_hours": {"timezone": "Mars/Olympus"}},
         "opening_hours: unknown timezone 'Mars/Olympus'; use a name such as Europe/Paris"),
        ({"opening_hours": {"monday": ["09:00-17:00"]}},
         "opening_hours: unknown day 'monday'; use mon, tue, wed, thu, fri, sat, sun"),
        ({"opening_hours": {"mon": ["9-17"]}},
         'opening_hours: mon: give spans like "09:00-18:00"'),
        ({"keyword_replies": [{"keyword": "price"}]}, "keyword_replies.reply: is required"),
        ({"welcome_message": "Hi\u2066there"},
         "welcome_message: contains invisible control characters (U+2066); remove them"),
        ({"opening_hours": {"timezone": 1}},
         'opening_hours: timezone must be text such as "Europe/Paris", not a number'),
        ({}, "body: send a JSON object with the fields to change"),
    ):
        answer = await api.patch(f"/shops/{slug}", as_owner, body)
        assert (answer.status, answer.errcode, answer.error) == \
            (400, "MERCATO_INVALID", error), answer
    assert table_sizes(network) == before
    assert await api.shop(slug) == shop


async def test_oversize_bodies(network: RunningNetwork, api: CommerceApi,
                               applicant: str) -> None:
    before = table_sizes(network)
    big = json.dumps({"slug": unique_slug("big"), "name": "Big",
                      "description": "x" * (1024 * 1024)}).encode()
    answer = await api.call("POST", "/shops", api.acting_as(applicant), data=big,
                            headers={"Content-Type": "application/json"})
    assert answer.status == 413 and answer.errcode == "M_TOO_LARGE", answer
    assert answer.error == "Request body over 1024 KiB; send less."

    # Without a Content-Length (chunked), the limit holds while reading.
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    answer = await api.call("POST", "/shops", api.acting_as(applicant), data=chunks(),
                            headers={"Content-Type": "application/json"})
    assert answer.status == 413 and answer.errcode == "M_TOO_LARGE", answer
    assert table_sizes(network) == before
