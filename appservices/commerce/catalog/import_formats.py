"""The catalog formats an import reads, each mapped to Mercato's product fields: Shopify's
and WooCommerce's product exports and Mercato's own documented CSV (docs/catalog-csv.md).

Sans I/O: a row in, the product fields (or why the row cannot be one) out.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import nh3

from mercato.values import InvalidValue, parse_money

BLOCK_TAGS = re.compile(r"<\s*(?:br|/?(?:p|div|ul|ol|h[1-6]|tr|table|blockquote|section)|/li)"
                        r"\b[^>]*>", re.IGNORECASE)
LIST_ITEM = re.compile(r"<\s*li\b[^>]*>", re.IGNORECASE)


def html_to_text(markup: str) -> str:
    """An HTML description as plain text: tags (and script/style content) gone, entities
    decoded, whitespace collapsed; paragraphs and list items each on a line."""
    text = LIST_ITEM.sub("\n• ", BLOCK_TAGS.sub("\n", markup))
    text = html.unescape(nh3.clean(text, tags=set()))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _lines(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _split_tags(value: str) -> list[str]:
    # WooCommerce writes a comma inside a tag as "\,".
    return [t.replace("\\,", ",").strip() for t in re.split(r"(?<!\\),", value) if t.strip()]


def _price(value: str) -> str:
    """A price as typed in a spreadsheet: a decimal comma ("9,50") is read as a point. What
    is no price stays as typed, for the product's validator to refuse with its column."""
    try:
        return parse_money("price", value, decimal_comma=True)
    except InvalidValue:
        return value.strip()


def _stock_from_quantity(quantity: str, default: str = "in_stock") -> str:
    try:
        return "in_stock" if Decimal(quantity.strip()) > 0 else "out_of_stock"
    except InvalidOperation:
        return default


@dataclass
class Mapped:
    """One CSV row as the product fields to check, or a row that carries no product."""

    product: dict[str, Any] | None  # None: nothing to import from this row
    sku: str = ""
    image_url: str = ""
    warnings: list[str] = field(default_factory=list)


class Refused(Exception):
    """The row cannot become a product; `reason` tells the shop what to change."""

    def __init__(self, sku: str, reason: str) -> None:
        super().__init__(reason)
        self.sku, self.reason = sku, reason


class MercatoCsv:
    """Mercato's documented CSV (docs/catalog-csv.md): one product per row."""

    name = "mercato"
    columns = ("sku", "title", "description", "price", "currency", "original_price", "url",
               "stock", "tags", "image_url")
    sources = {name: name for name in columns}

    def __init__(self, default_currency: str | None) -> None:
        self.default_currency = default_currency

    def map(self, r: dict[str, str]) -> Mapped:
        sku = r["sku"].strip()
        currency = r.get("currency", "").strip() or self.default_currency
        if not currency:
            raise Refused(sku, "currency: is empty and the import has no default currency; "
                               "fill it in or give the currency of the prices (such as EUR)")
        stock = r.get("stock", "").strip().lower().replace(" ", "_").replace("-", "_")
        if re.fullmatch(r"-?\d+", stock):
            stock = _stock_from_quantity(stock)
        return Mapped(product={
            "sku": sku, "title": _one_line(r["title"]),
            "description": _lines(r.get("description", "")), "price": _price(r["price"]),
            "currency": currency, "original_price": _price(r.get("original_price", "")) or None,
            "url": r.get("url", "").strip(), "stock": stock or "in_stock",
            "tags": _split_tags(r.get("tags", ""))},
            sku=sku, image_url=r.get("image_url", "").strip())


class ShopifyExport:
    """Shopify's product export: a product's first row has its Title; the rows under it with
    the same Handle are its other variants (each with its Variant SKU) or more images."""

    name = "shopify"
    sources = {"sku": "Variant SKU", "title": "Title", "description": "Body (HTML)",
               "price": "Variant Price", "original_price": "Variant Compare At Price",
               "tags": "Tags", "image_url": "Image Src", "currency": "the import's currency"}

    def __init__(self, default_currency: str | None) -> None:
        self.currency = default_currency
        self.parent: dict[str, str] | None = None

    def map(self, r: dict[str, str]) -> Mapped:
        handle = r["handle"].strip()
        if r["title"].strip():
            self.parent = base = r
        elif self.parent is not None and handle == self.parent["handle"].strip():
            base = self.parent
            if not any(r.get(c, "").strip() for c in ("variant sku", "variant price",
                                                      "option1 value")):
                return Mapped(product=None)  # one more image of the product above
        else:
            raise Refused(r.get("variant sku", "").strip(),
                          f"Title is empty and no row with a Title has the Handle '{handle}' "
                          "just before it; keep each product's rows together, first row "
                          "first")
        options = [r.get(f"option{i} value", "").strip() for i in (1, 2, 3)]
        options = [o for o in options if o and o != "Default Title"]
        sku, warnings = r.get("variant sku", "").strip(), []
        status = (base.get("status") or "active").strip().lower()
        if status != "active":  # said once, on the product's first row
            return Mapped(product=None, sku=sku or handle, warnings=[
                f"Status is {status}; only active products are imported"] if r is base else [])
        if not sku and options:
            raise Refused("", "Variant SKU is empty; give each variant its own SKU")
        if not sku:
            sku = handle
            warnings.append(f"Variant SKU is empty; the Handle '{handle}' is the SKU")
        title = _one_line(base["title"])
        if options:
            title = f"{title} – {' / '.join(options)}"
        price = r.get("variant price", "").strip()
        compare = r.get("variant compare at price", "").strip()
        original: str | None = compare or None
        try:
            if compare and Decimal(compare) <= Decimal(price):
                original = None  # Shopify shows no sale then, nor do we
                if Decimal(compare) < Decimal(price):
                    warnings.append(f"Variant Compare At Price {compare} is lower than the "
                                    "price; it was ignored")
        except InvalidOperation:
            pass  # the validator names the bad price
        stock = "in_stock"
        if r.get("variant inventory tracker", "shopify").strip():
            stock = _stock_from_quantity(r.get("variant inventory qty", ""))
            if stock == "out_of_stock" and r.get(
                    "variant inventory policy", "").strip().lower() == "continue":
                stock = "preorder"  # sold while out of stock
        return Mapped(product={
            "sku": sku, "title": title, "description": html_to_text(base.get("body (html)", "")),
            "price": price, "currency": self.currency, "original_price": original,
            "stock": stock, "tags": _split_tags(base.get("tags", ""))},
            sku=sku, warnings=warnings,
            image_url=(r.get("variant image", "") or base.get("image src", "")).strip())


class WooCommerceExport:
    """WooCommerce's product export: simple and external products, and the variations of a
    variable product (which follow it, naming it in Parent)."""

    name = "woocommerce"
    sources = {"sku": "SKU", "title": "Name", "description": "Description",
               "price": "Sale price or Regular price", "original_price": "Regular price",
               "stock": "In stock?",
               "tags": "Tags", "url": "External URL", "image_url": "Images",
               "currency": "the import's currency"}

    def __init__(self, default_currency: str | None) -> None:
        self.currency = default_currency
        self.parent: dict[str, str] | None = None

    def map(self, r: dict[str, str]) -> Mapped:
        kinds = {k.strip() for k in r["type"].lower().split(",")}
        sku = r["sku"].strip()
        if "variable" in kinds:
            self.parent = r
            return Mapped(product=None)  # its variations carry the prices
        if "grouped" in kinds:
            return Mapped(product=None)  # a list of other products, imported on their own
        published = r.get("published", "").strip()
        if published not in ("", "1"):
            state = {"0": "private", "-1": "a draft"}.get(published, published)
            return Mapped(product=None, sku=sku, warnings=[
                f"the product is {state} (Published {published}); only published products "
                "are imported"])
        if not sku:
            raise Refused("", "SKU is empty; give every product a SKU")
        parent: dict[str, str] = {}
        if "variation" in kinds and self.parent is not None and r.get("parent", "").strip() in (
                f"id:{self.parent.get('id', '').strip()}", self.parent["sku"].strip()):
            parent = self.parent
        description = (r.get("description") or r.get("short description")
                       or parent.get("description") or parent.get("short description") or "")
        sale, regular = r.get("sale price", "").strip(), r.get("regular price", "").strip()
        in_stock = r.get("in stock?", "").strip().lower()
        stock = {"1": "in_stock", "0": "out_of_stock", "backorder": "preorder",
                 "onbackorder": "preorder"}.get(in_stock) or _stock_from_quantity(
            r.get("stock", ""))
        images = r.get("images", "").strip() or parent.get("images", "")
        return Mapped(product={
            "sku": sku, "title": _one_line(r["name"] or parent.get("name", "")),
            "description": html_to_text(description.replace("\\n", "\n")),
            "price": sale or regular, "currency": self.currency,
            "original_price": regular if sale else None,
            "url": r.get("external url", "").strip(), "stock": stock,
            "tags": _split_tags(r.get("tags", "") or parent.get("tags", ""))},
            sku=sku, image_url=images.split(",")[0].strip())


Format = type[MercatoCsv] | type[ShopifyExport] | type[WooCommerceExport]


def detect_format(header: list[str]) -> Format | None:
    names = {h.strip().lower() for h in header}
    if {"handle", "title", "variant price"} <= names:
        return ShopifyExport
    if {"type", "sku", "name", "regular price"} <= names:
        return WooCommerceExport
    if {"sku", "title", "price"} <= names:
        return MercatoCsv
    return None
