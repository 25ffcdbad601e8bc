"""Products and their cards, sans I/O: validation, the card every client shows, alerts.

A card is one `m.room.message`: `m.image` with a caption when the product has an
image, `m.text` otherwise. `body` is complete plain text (a terminal client or a
bridge shows everything), `formatted_body` stays inside the spec's allowlist,
and the structured product travels under `org.mercato.product`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appservices.commerce import links
from appservices.commerce.campaigns.rules import parse_currency
from appservices.commerce.errors import InvalidInput
from appservices.commerce.quotas import check_daily_quota
from mercato.matrix.html import sanitize_html
from mercato.templates import template_environment
from mercato.values import json_kind, parse_money, plain_text, text_list

TEMPLATES = template_environment(Path(__file__).parent.parent / "templates")

PRODUCT_KEY = "org.mercato.product"
ALERT_REACTION = "🔔"
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STOCK_STATES = ("in_stock", "out_of_stock", "preorder")
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_TAGS = 20

# ISO 4217 codes in use; an unknown code is refused instead of guessed.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
""".split())


@dataclass(frozen=True)
class Product:
    merchant_slug: str
    sku: str
    title: str
    description: str
    price: str
    currency: str
    original_price: str | None
    image_mxc: str
    image_info: dict[str, Any]
    url: str
    stock: str
    tags: list[str] = field(default_factory=list)
    created_at: int = 0
    updated_at: int = 0
    quantity: int | None = None  # units left, counted by orders; None: not counted

    @property
    def on_sale(self) -> bool:
        return self.original_price is not None and Decimal(self.original_price) > Decimal(
            self.price)


def validate_sku(value: Any) -> str:
    if not isinstance(value, str) or not SKU.match(value):
        raise InvalidInput("sku", "use 1-64 letters, digits, '.', '_' or '-', starting with a "
                                  "letter or digit")
    return value


def validate_currency(value: Any) -> str:
    code = parse_currency(value)
    if code not in CURRENCIES:
        raise InvalidInput("currency", f"{code} is not an ISO 4217 currency code")
    return code


def validate_url(field_name: str, value: Any) -> str:
    """A clean absolute https:// address, normalised; never stored as typed."""
    return links.clean_https_url(field_name, value, 500)


def link_texts(fields: dict[str, Any]) -> list[str]:
    """The product's text a buyer reads, where the link rules apply."""
    return [str(fields.get(name) or "") for name in ("title", "description", "url")] + [
        str(tag) for tag in fields.get("tags") or []]


def validate_product(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """The product fields in `body`, checked; with partial=True only those present."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    allowed = {"sku", "title", "description", "price", "currency", "original_price",
               "image_mxc", "image_info", "url", "stock", "tags", "quantity"}
    unknown = set(body) - allowed
    if unknown:
        raise InvalidInput(sorted(unknown)[0], f"is not a product field; use "
                                               f"{', '.join(sorted(allowed))}")
    out: dict[str, Any] = {}

    def has(name: str) -> bool:
        return not partial or name in body

    if has("sku"):
        out["sku"] = validate_sku(body.get("sku"))
    if has("title"):
        out["title"] = plain_text("title", body.get("title"), MAX_TITLE, required=True)
    if has("description"):
        out["description"] = plain_text("description", body.get("description"),
                                         MAX_DESCRIPTION)
    if has("price"):
        out["price"] = parse_money("price", body.get("price"))
    if has("currency"):
        out["currency"] = validate_currency(body.get("currency"))
    if has("original_price"):
        original = body.get("original_price")
        out["original_price"] = None if original in (None, "") else parse_money(
            "original_price", original)
    if has("image_mxc"):
        image = body.get("image_mxc")
        image = "" if image is None else image
        if image != "" and not (isinstance(image, str) and re.fullmatch(
                r"mxc://[A-Za-z0-9.:-]+/[A-Za-z0-9_-]+", image)):
            raise InvalidInput("image_mxc", "must be an mxc:// URI from the media repository")
        out["image_mxc"] = image
    if has("image_info"):
        info = body.get("image_info")
        info = {} if info is None else info
        if not isinstance(info, dict):
            raise InvalidInput("image_info", "must be an object (mimetype, w, h, size), not "
                                             f"{json_kind(info)}")
        if len(json.dumps(info)) > 2000:
            raise InvalidInput("image_info", "must be a small object (mimetype, w, h, size)")
        out["image_info"] = info
    if has("url"):
        out["url"] = validate_url("url", body.get("url"))
    if has("stock"):
        stock = body.get("stock")
        stock = "in_stock" if stock in (None, "") else stock
        if not isinstance(stock, str) or stock not in STOCK_STATES:
            raise InvalidInput("stock", f"use one of: {', '.join(STOCK_STATES)}")
        out["stock"] = stock
    if has("tags"):
        tags = body.get("tags")
        tags = [] if tags is None else text_list("tags", tags, limit=MAX_TAGS, item_limit=40,
                                                 example='["mugs", "kitchen"]')
        out["tags"] = sorted({tag.casefold() for tag in tags} - {""})
    if has("quantity"):
        out["quantity"] = validate_stock_quantity(body.get("quantity"))
    if "price" in out and "original_price" in out and out["original_price"] is not None \
            and Decimal(out["original_price"]) < Decimal(out["price"]):
        raise InvalidInput("original_price", "is lower than the price; for a sale give the "
                                             "price before the sale")
    return out


MAX_STOCK_QUANTITY = 1_000_000


def validate_stock_quantity(value: Any) -> int | None:
    """Units in stock that orders count down: a whole number, or null (not counted)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not (
            0 <= value <= MAX_STOCK_QUANTITY):
        raise InvalidInput("quantity", f"must be a whole number from 0 to {MAX_STOCK_QUANTITY}"
                                       ", or null when you do not count this product's stock")
    return value


def stock_for_quantity(stock: str, quantity: int | None) -> str:
    """A counted product's stock state follows its quantity: none left is out of stock."""
    if quantity is None or stock == "preorder":
        return stock
    if quantity == 0:
        return "out_of_stock"
    return "in_stock" if stock == "out_of_stock" else stock


def product_page_url(public_url: str, slug: str, sku: str) -> str:
    return f"{public_url.rstrip('/')}/p/{quote(slug)}/{quote(sku)}"


STOCK_TEXT = {"in_stock": "In stock", "out_of_stock": "Out of stock", "preorder": "Pre-order"}


def render_card(product: Product, *, shop_name: str, shop_mxid: str, verified: bool,
                page_url: str) -> dict[str, Any]:
    values = {"p": product, "shop_name": shop_name, "shop_mxid": shop_mxid,
              "verified": verified, "page_url": page_url,
              "stock_text": STOCK_TEXT[product.stock], "alert_reaction": ALERT_REACTION}
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": TEMPLATES.get_template("card.txt.j2").render(values).strip(),
        "format": "org.matrix.custom.html",
        "formatted_body": sanitize_html(
            TEMPLATES.get_template("card.html.j2").render(values).strip()),
        PRODUCT_KEY: {
            "sku": product.sku, "shop": shop_mxid, "shop_slug": product.merchant_slug,
            "title": product.title, "price": product.price, "currency": product.currency,
            "original_price": product.original_price, "stock": product.stock,
            "url": product.url or page_url, "page": page_url,
        },
    }
    if product.image_mxc:
        content.update(msgtype="m.image", url=product.image_mxc, info=product.image_info,
                       filename=product.image_info.get("filename", f"{product.sku}.jpg"))
    return content


def edit_content(new_card: dict[str, Any], original_event_id: str) -> dict[str, Any]:
    """An m.replace edit carrying the current card (clients show it in place)."""
    fallback = dict(new_card)
    fallback["body"] = "* " + new_card["body"]
    fallback["formatted_body"] = "* " + new_card["formatted_body"]
    fallback["m.new_content"] = {k: v for k, v in new_card.items()}
    fallback["m.relates_to"] = {"rel_type": "m.replace", "event_id": original_event_id}
    return fallback


def price_dropped(before: Product, after: Product) -> bool:
    """What an alert subscriber wants to hear about: cheaper, or back in stock."""
    cheaper = before.currency == after.currency and Decimal(after.price) < Decimal(before.price)
    back = before.stock == "out_of_stock" and after.stock != "out_of_stock"
    return cheaper or back


def product_link_pattern(public_url: str) -> re.Pattern[str]:
    """Matches links to Mercato's product pages: groups are shop slug and SKU."""
    return re.compile(re.escape(public_url.rstrip("/")) + r"/p/([a-z0-9-]+)/([A-Za-z0-9._-]+)")


def check_share_quota(quota: int, shares_in_last_day: int, oldest_share_ms: int | None,
                      now_ms: int) -> None:
    """Shares count as posts do, with their own daily number, so the post quota has no
    side door."""
    check_daily_quota(quota, shares_in_last_day, oldest_share_ms,
                      may=f"share {quota} product cards", next_use="share")
