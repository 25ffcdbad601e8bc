"""The demo shop's catalog: products, their cards and a coupon, ready for the demo buyer.

`mercato up` calls `seed_demo_shop` once every component is healthy. It works as a
shop's own back-end would, through the commerce HTTP API with the demo shop's API key:
upload each picture, add the product, share its card into the channel, then post a
coupon campaign. A second run with the same data adds nothing: products are looked up
before they are added, and what was posted into which channel is kept in
`data/demo_shop.json`, so cards and the coupon are never posted twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato.config import MercatoConfig, reachable_host
from mercato.logging import get_logger
from mercato_ops.demo_pictures import shipped_picture

log = get_logger(__name__)

MARKER = "demo_shop.json"
CURRENCY = "EUR"
NEARLY_SOLD_OUT = 2
COUPON_STOCK = 100
COUPON_DAYS = 90
COUPON_PERCENT_OFF = 10


class DemoSeedError(Exception):
    """The commerce API refused a step of the seeding; the message says which and why."""


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    title: str
    description: str
    price: str
    picture: str
    original_price: str | None = None
    nearly_sold_out: bool = False
    tags: tuple[str, ...] = ()


CATALOG = (
    DemoProduct("mug-teal", "Teal stoneware mug",
                "Hand-glazed stoneware, 350 ml, with a wide handle. Dishwasher safe.",
                "14.00", "mug", tags=("kitchen", "mugs")),
    DemoProduct("tote-canvas", "Canvas tote bag",
                "Heavy cotton canvas with long straps: holds a week's shopping.",
                "18.00", "tote", original_price="24.00", tags=("bags", "sale")),
    DemoProduct("beans-house", "House blend coffee beans, 250 g",
                "Medium roast, whole beans: chocolate, hazelnut and a little cherry.",
                "11.50", "coffee", tags=("coffee",)),
    DemoProduct("tea-sencha", "Sencha green tea, 100 g tin",
                "Steamed Japanese green tea in a resealable tin. Only a few left.",
                "9.00", "tea", nearly_sold_out=True, tags=("tea", "last few")),
    DemoProduct("notebook-a5", "A5 dotted notebook",
                "192 pages of 100 g paper, lay-flat binding, a ribbon and an elastic band.",
                "16.00", "notebook", tags=("stationery",)),
)

COUPON_FIELDS = {"title": "10% off your first order",
                 "text": "Welcome to the demo shop: give your code at checkout."}


@dataclass
class Posted:
    """What the seeding already posted into one channel (the marker file's content)."""

    channel: str
    cards: dict[str, str | None] = field(default_factory=dict)
    coupon_campaign: int | None = None

    @classmethod
    def read(cls, path: Path, channel: str) -> Posted:
        """The marker for `channel`; an unreadable one, or another channel's, starts afresh."""
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(channel)
        if not isinstance(raw, dict) or raw.get("channel") != channel:
            return cls(channel)
        cards = raw.get("cards")
        coupon = raw.get("coupon_campaign")
        return cls(channel, dict(cards) if isinstance(cards, dict) else {},
                   coupon if isinstance(coupon, int) else None)

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"channel": self.channel, "cards": self.cards,
                                   "coupon_campaign": self.coupon_campaign}, indent=2))
        os.replace(tmp, path)


@dataclass(frozen=True)
class DemoCatalog:
    """What data/demo.json lists of the catalog."""

    products: list[dict[str, str]]
    coupon_campaign: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {"products": self.products, "coupon_campaign": self.coupon_campaign}


def product_body(product: DemoProduct, media: dict[str, Any]) -> dict[str, Any]:
    """The POST /products body of one demo product, with its uploaded picture."""
    body: dict[str, Any] = {
        "sku": product.sku, "title": product.title, "description": product.description,
        "price": product.price, "currency": CURRENCY, "tags": list(product.tags),
        "image_mxc": media["image_mxc"],
        "image_info": {**media["image_info"], "filename": f"{product.sku}.jpg"}}
    if product.original_price is not None:
        body["original_price"] = product.original_price
    return body


def coupon_body(now: datetime) -> dict[str, Any]:
    expires = now + timedelta(days=COUPON_DAYS)
    return {"kind": "coupon", "fields": dict(COUPON_FIELDS),
            "coupon": {"stock": COUPON_STOCK, "expires_at": expires.isoformat(),
                       "percent_off": COUPON_PERCENT_OFF}}


class ShopApi:
    """The commerce API as the demo shop's own back-end calls it, with its API key."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, slug: str,
                 api_key: str) -> None:
        self.http = http
        self.base = f"{base_url}/shops/{quote(slug)}"
        self.root = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def call(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
                   root: bool = False) -> tuple[int, Any]:
        url = (self.root if root else self.base) + path
        async with self.http.request(method, url, json=body, data=data,
                                     headers=self.headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def require(self, method: str, path: str, body: Any = None, *,
                      data: bytes | None = None, root: bool = False) -> Any:
        status, answer = await self.call(method, path, body, data=data, root=root)
        if status not in (200, 201):
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise DemoSeedError(f"{method} {path} answered {status}: {error}")
        return answer


async def ensure_product(api: ShopApi, product: DemoProduct) -> dict[str, Any]:
    """The product as the catalog has it, added (with its picture) when missing."""
    status, existing = await api.call("GET", f"/products/{quote(product.sku)}")
    if status == 200:
        return dict(existing)
    media = await api.require("POST", "/media", data=shipped_picture(product.picture))
    created = await api.require("POST", "/products", product_body(product, media))
    log.info("demo.product_added", sku=product.sku)
    return dict(created)


async def demo_quantity(api: ShopApi, product: dict[str, Any], quantity: int) -> dict[str, Any]:
    """Give the product a small stock count, where the catalog counts stock.

    A product that already has a count keeps it (the buyer may have ordered some);
    a catalog without counts keeps the product in stock, as it was added.
    """
    if product.get("quantity") is not None:
        return product
    status, changed = await api.call("PATCH", f"/products/{quote(product['sku'])}",
                                     {"quantity": quantity})
    if status == 200:
        return dict(changed)
    return product


async def share_cards(api: ShopApi, posted: Posted, marker: Path) -> None:
    for product in CATALOG:
        if product.sku in posted.cards:
            continue
        shared = await api.require("POST", f"/products/{quote(product.sku)}/share",
                                   {"room_id": posted.channel})
        posted.cards[product.sku] = shared.get("event_id")
        posted.write(marker)
        log.info("demo.card_shared", sku=product.sku, event_id=shared.get("event_id"))


async def post_coupon(api: ShopApi, posted: Posted, marker: Path) -> int:
    """The coupon campaign's ID, drafted and sent now unless it already was."""
    if posted.coupon_campaign is not None:
        return posted.coupon_campaign
    campaigns = (await api.require("GET", "/campaigns"))["campaigns"]
    # Oldest first: a draft left by an interrupted run is sent instead of a second one.
    campaign = next((c for c in reversed(campaigns) if c["kind"] == "coupon"
                     and c["fields"].get("title") == COUPON_FIELDS["title"]), None)
    if campaign is None:
        campaign = await api.require("POST", "/campaigns", coupon_body(datetime.now(UTC)))
    if campaign["state"] == "draft":
        await api.require("POST", f"/campaigns/{campaign['id']}/schedule", {})
    posted.coupon_campaign = int(campaign["id"])
    posted.write(marker)
    log.info("demo.coupon_posted", campaign=posted.coupon_campaign)
    return posted.coupon_campaign


def commerce_api_url(config: MercatoConfig) -> str:
    host = reachable_host(config.commerce.bind_address)
    return f"http://{host}:{config.commerce.port}/api/v1"


async def seed_demo_shop(config: MercatoConfig, data_dir: Path) -> DemoCatalog:
    """Add the demo catalog, post its cards and a coupon into the demo channel, once."""
    demo = config.demo
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        api = ShopApi(http, commerce_api_url(config), demo.shop_slug, demo.api_key)
        shop = await api.require("GET", "/merchant", root=True)
        channels = sorted(shop["channels"], key=lambda c: not c["primary"])
        channel = channels[0]["room_id"] if channels else None
        if channel is None:
            raise DemoSeedError(f"the demo shop '{demo.shop_slug}' has no channel yet")
        for product in CATALOG:
            view = await ensure_product(api, product)
            if product.nearly_sold_out:
                await demo_quantity(api, view, NEARLY_SOLD_OUT)
        marker = data_dir / MARKER
        posted = Posted.read(marker, channel)
        await share_cards(api, posted, marker)
        campaign_id = await post_coupon(api, posted, marker)
    return DemoCatalog(
        products=[{"sku": p.sku, "title": p.title} for p in CATALOG],
        coupon_campaign={"id": campaign_id, "title": COUPON_FIELDS["title"]})
