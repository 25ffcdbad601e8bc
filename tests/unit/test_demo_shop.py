"""The demo shop's catalog: its pictures, its products as the API takes them, its marker."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from appservices.commerce.campaigns.operations import MAX_COUPON_STOCK
from appservices.commerce.catalog.products import validate_product
from mercato_ops import demo_pictures
from mercato_ops.demo_shop import (
    CATALOG,
    DemoCatalog,
    Posted,
    ShopApi,
    coupon_body,
    demo_quantity,
    product_body,
)
from mercato_ops.supervisor import login_instructions

MEDIA = {"image_mxc": "mxc://localhost/abcDEF123",
         "image_info": {"mimetype": "image/jpeg", "size": 9000, "w": 512, "h": 512,
                        "filename": "demo.jpeg"}}


def _jpeg(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


@pytest.mark.parametrize("name", sorted(demo_pictures.PICTURES))
def test_each_picture_is_a_small_square_jpeg(name: str) -> None:
    data = demo_pictures.draw_picture(name)
    assert len(data) <= 60 * 1024
    image = _jpeg(data)
    assert image.size == (demo_pictures.SIZE, demo_pictures.SIZE)
    # A clean backdrop: the corners are near white, the middle holds the product.
    corner = image.convert("RGB").getpixel((4, 4))
    assert isinstance(corner, tuple) and min(corner) >= 235
    colours = image.convert("RGB").resize((32, 32)).getcolors(32 * 32) or []
    assert len(colours) > 20, "a picture, not a blank square"


def test_every_product_ships_its_picture() -> None:
    folder = Path(demo_pictures.__file__).parent / demo_pictures.ASSETS
    for product in CATALOG:
        data = (folder / f"{product.picture}.jpg").read_bytes()
        assert len(data) <= demo_pictures.MAX_BYTES, product.picture
        assert _jpeg(data).size == (demo_pictures.SIZE, demo_pictures.SIZE)
        assert demo_pictures.shipped_picture(product.picture) == data


def test_catalog_has_a_sale_and_a_nearly_sold_out_product() -> None:
    assert len(CATALOG) >= 5
    assert len({p.sku for p in CATALOG}) == len(CATALOG)
    on_sale = [p for p in CATALOG if p.original_price is not None]
    assert [p.sku for p in on_sale] == ["tote-canvas"]
    assert Decimal(on_sale[0].original_price or "0") > Decimal(on_sale[0].price)
    assert [p.sku for p in CATALOG if p.nearly_sold_out] == ["tea-sencha"]


@pytest.mark.parametrize("product", CATALOG, ids=lambda p: p.sku)
def test_each_product_is_what_the_catalog_accepts(product) -> None:
    body = product_body(product, MEDIA)
    checked = validate_product(body)
    assert checked["sku"] == product.sku and checked["currency"] == "EUR"
    assert checked["image_mxc"] == MEDIA["image_mxc"]
    assert checked["image_info"]["filename"] == f"{product.sku}.jpg"


def test_coupon_campaign_is_open_long_enough() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    body = coupon_body(now)
    assert body["kind"] == "coupon"
    assert 0 < body["coupon"]["stock"] <= MAX_COUPON_STOCK
    assert body["coupon"]["percent_off"] == 10, "the code takes off what the title says"
    assert datetime.fromisoformat(body["coupon"]["expires_at"]) > now


def test_marker_belongs_to_its_channel(tmp_path: Path) -> None:
    marker = tmp_path / "demo_shop.json"
    assert Posted.read(marker, "!a:localhost") == Posted("!a:localhost")
    Posted("!a:localhost", {"mug-teal": "$card"}, 7).write(marker)
    assert Posted.read(marker, "!a:localhost") == Posted("!a:localhost", {"mug-teal": "$card"}, 7)
    # A new channel (the shop's data started afresh) is posted into again.
    assert Posted.read(marker, "!b:localhost") == Posted("!b:localhost")
    marker.write_text("{not json")
    assert Posted.read(marker, "!a:localhost") == Posted("!a:localhost")


def test_login_instructions_say_how_to_order() -> None:
    summary = {"homeserver_url": "http://localhost:8008", "channel_alias": "#shop_demo:localhost",
               "shopbot": "@shopbot:localhost",
               "storefront_url": "http://localhost:8090/s/demo",
               "console_url": "http://localhost:8090/console/",
               "buyer": {"user_id": "@buyer:localhost", "password": "pw-buyer"},
               "merchant": {"user_id": "@merchant:localhost", "password": "pw-merchant"}}
    assert "🛒" not in login_instructions(summary), "no catalog, nothing to order"
    catalog = DemoCatalog([{"sku": p.sku, "title": p.title} for p in CATALOG],
                          {"id": 1, "title": "10% off your first order"})
    text = login_instructions({**summary, **catalog.summary()})
    assert "react 🛒 to a product card" in text
    assert "'buy demo <sku>', then 'checkout demo'" in text
    assert "mug-teal, tote-canvas" in text
    assert "The shop on the web:  http://localhost:8090/s/demo" in text
    assert "Merchant console:     http://localhost:8090/console/" in text
    assert json.loads(json.dumps(catalog.summary())) == catalog.summary()


async def _catalog_api(accepts_quantity: bool) -> TestServer:
    """A commerce API's product PATCH, with or without stock counts."""
    async def patch(request: web.Request) -> web.Response:
        body = await request.json()
        if not accepts_quantity:
            return web.json_response({"errcode": "M_INVALID_PARAM", "error": "quantity is not "
                                      "a product field"}, status=400)
        return web.json_response({"sku": request.match_info["sku"], "stock": "in_stock",
                                  "quantity": body["quantity"]})

    app = web.Application()
    app.router.add_patch("/api/v1/shops/demo/products/{sku}", patch)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.mark.parametrize("accepts_quantity", [True, False])
async def test_nearly_sold_out_product_gets_two_units_where_stock_is_counted(
        accepts_quantity: bool) -> None:
    server = await _catalog_api(accepts_quantity)
    try:
        async with aiohttp.ClientSession() as http:
            api = ShopApi(http, str(server.make_url("/api/v1")), "demo", "mk_test")
            tea = {"sku": "tea-sencha", "stock": "in_stock"}
            changed = await demo_quantity(api, tea, 2)
            counted = {"sku": "tea-sencha", "stock": "in_stock", "quantity": 1}
            kept = await demo_quantity(api, counted, 2)
    finally:
        await server.close()
    expected = {**tea, "quantity": 2} if accepts_quantity else tea
    assert changed == expected
    assert kept == counted, "a count the buyer already lowered stays"
