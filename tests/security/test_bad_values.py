"""Values the API must never coerce: prices, JSON types and invisible characters.

Each bad value goes through the real HTTP API and is refused with 400 naming the
field and what to send instead, and nothing is written: Python's `Decimal` would
have read "5_0" as 50, "1e3" as 1000 and "١٩" as 19, and "-0" as a price of -0.00.
"""

from __future__ import annotations

from typing import Any

import pytest

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop

PRICE_REFUSALS: list[tuple[Any, str]] = [
    (19.9, 'must be a string like "19.90", not a number: prices are never JSON numbers'),
    (5, 'must be a string like "19.90", not a number: prices are never JSON numbers'),
    ("-0", "'-0' is not a price: prices cannot be negative"),
    ("-0.00", "'-0.00' is not a price: prices cannot be negative"),
    ("5_0", "'5_0' is not a price; write it like 19.90"),
    ("1e3", "'1e3' is not a price; write it like 19.90"),
    ("١٩", "'١٩' is not a price; write it with the digits 0-9"),
    ("１９", "'１９' is not a price; write it with the digits 0-9"),
    ("+19", "'+19' is not a price; write it without a sign"),
    ("19,90", "'19,90' is not a price; write it with a decimal point"),
    ("1 9", "'1 9' is not a price"),
    ("NaN", "'NaN' is not a price"),
    ("19.999", "'19.999' has more than two decimals"),
    ("1000000000.01", "is over the largest price"),
]
FIELD_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"tags": "mugs"}, 'tags: must be a list of text, like ["mugs", "kitchen"], not text'),
    ({"tags": [1]}, "tags: must be text, not a number"),
    ({"title": 7}, "title: must be text, not a number"),
    ({"description": ["x"]}, "description: must be text, not a list"),
    ({"currency": 978}, 'currency: must be text such as "EUR", not a number'),
    ({"stock": True}, "stock: use one of: in_stock, out_of_stock, preorder"),
    ({"image_info": []}, "image_info: must be an object (mimetype, w, h, size), not a list"),
    ({"image_mxc": 1}, "image_mxc: must be an mxc:// URI from the media repository"),
    ({"title": "Mug\u202egpj.exe"},
     "title: contains invisible control characters (U+202E); remove them"),
    ({"description": "a\u2067b"},
     "description: contains invisible control characters (U+2067); remove them"),
    ({"title": "null\x00byte"},
     "title: contains invisible control characters (U+0000); remove them"),
]


@pytest.fixture
async def shop(open_network: RunningNetwork, http, api: Api) -> tuple[str, str]:
    owner = await new_user(open_network, http, "owner")
    return await open_shop(api, owner.user_id)


async def _refused(api: Api, shop: tuple[str, str], body: dict[str, Any]) -> str:
    slug, key = shop
    product = {"sku": "bad-1", "title": "Mug", "price": "9.90", "currency": "EUR", **body}
    status, answer = await api.call("POST", f"/shops/{slug}/products", key, product)
    assert (status, answer.get("errcode")) == (400, "MERCATO_INVALID"), (body, answer)
    assert (await api.call("GET", f"/shops/{slug}/products/bad-1", key))[0] == 404, body
    return str(answer["error"])


async def test_bad_prices_are_refused_and_nothing_is_written(api: Api,
                                                             shop: tuple[str, str]) -> None:
    slug, key = shop
    for value, reason in PRICE_REFUSALS:
        for field in ("price", "original_price"):
            error = await _refused(api, shop, {field: value})
            assert error.startswith(f"{field}: ") and reason in error, (value, error)
    # A campaign's price follows the same rules.
    for value, reason in PRICE_REFUSALS:
        status, answer = await api.call("POST", f"/shops/{slug}/campaigns", key, {
            "kind": "product", "fields": {"title": "Mug", "price": value, "currency": "EUR"}})
        assert status == 400 and answer["error"].startswith("price: ") and \
            reason in answer["error"], (value, answer)
    status, answer = await api.call("GET", f"/shops/{slug}/campaigns", key)
    assert answer["campaigns"] == []


async def test_zero_is_zero_and_prices_are_answered_with_two_decimals(
        api: Api, shop: tuple[str, str]) -> None:
    slug, key = shop
    for n, (typed, stored) in enumerate([("0", "0.00"), ("19", "19.00"), ("19.9", "19.90"),
                                         ("19.90", "19.90")]):
        status, product = await api.call("POST", f"/shops/{slug}/products", key, {
            "sku": f"ok-{n}", "title": "Mug", "price": typed, "currency": "EUR"})
        assert (status, product["price"]) == (201, stored), product


async def test_fields_of_the_wrong_type_are_refused_by_name(api: Api,
                                                            shop: tuple[str, str]) -> None:
    for body, error in FIELD_REFUSALS:
        assert await _refused(api, shop, body) == error


async def test_wrong_types_elsewhere_in_the_api(api: Api, shop: tuple[str, str]) -> None:
    slug, key = shop
    for method, path, body, error in [
        ("POST", f"/shops/{slug}/keys", {"label": "sync", "role": 1},
         'role: must be text such as "editor", not a number'),
        ("POST", f"/shops/{slug}/keys", {"label": ["sync"]}, "label: must be text, not a list"),
        ("PATCH", f"/shops/{slug}", {"opening_hours": {"timezone": ["UTC"]}},
         'opening_hours: timezone must be text such as "Europe/Paris", not a list'),
        ("PATCH", f"/shops/{slug}", {"away_message": 5}, "away_message: must be text, not a "
                                                         "number"),
        ("POST", f"/shops/{slug}/campaigns", {"kind": ["text"], "fields": {"title": "x"}},
         "kind: use one of: product, sale, coupon, text"),
    ]:
        status, answer = await api.call(method, path, key, body)
        assert (status, answer.get("error")) == (400, error), (path, body, answer)
