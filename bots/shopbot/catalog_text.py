"""Products as merchants type them and as the bot shows them; product links in messages. Pure.

Prices stay decimal strings from what is typed to what the API stores: never floats.
The API applies the full rules; these parsers catch the typing mistakes early, with
a sentence saying how to write the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import unquote

from bots.shopbot.replies import CLEAR_WORDS, table
from mercato.commands import ArgumentError, Reply
from mercato.types import MerchantSlug, Sku
from mercato.values import InvalidValue, parse_money

STOCK_STATES = ("in_stock", "out_of_stock", "preorder")
STOCK_TEXT = {"in_stock": "in stock", "out_of_stock": "out of stock", "preorder": "pre-order"}
_STOCK_WORDS = {
    "in": "in_stock", "instock": "in_stock", "available": "in_stock", "yes": "in_stock",
    "out": "out_of_stock", "outofstock": "out_of_stock", "soldout": "out_of_stock",
    "none": "out_of_stock", "no": "out_of_stock",
    "pre": "preorder", "preorder": "preorder",
}
MAX_LISTED_PRODUCTS = 30
MAX_SHOWN_REFUSALS = 15
MAX_CARDS_PER_MESSAGE = 3
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


# -- parsers ----------------------------------------------------------------------------

def parse_sku(value: str) -> Sku:
    if not _SKU.match(value):
        raise ArgumentError(f"'{value}' is not a SKU: use up to 64 letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit, like mug-350")
    return Sku(value)


def parse_price(value: str) -> str:
    """`19.9`, `19,90` or `19` → "19.90"; the API's rules (mercato/values.py), with a comma."""
    try:
        return parse_money("price", value, decimal_comma=True)
    except InvalidValue as e:
        raise ArgumentError(e.reason) from None


def parse_clearable_price(value: str) -> str:
    """A price, or `off` to remove it (the price before a sale)."""
    return "" if value.strip().lower() in CLEAR_WORDS else parse_price(value)


def parse_currency(value: str) -> str:
    if not _CURRENCY.match(value.strip()):
        raise ArgumentError(f"'{value}' is not a currency code; use the three letters of "
                            "ISO 4217, like EUR or USD")
    return value.strip().upper()


def parse_stock(value: str) -> str:
    word = value.strip().lower().replace("-", "_")
    if word in STOCK_STATES:
        return word
    found = _STOCK_WORDS.get(word.replace("_", ""))
    if found is None:
        raise ArgumentError(f"'{value}' is not a stock state; use in_stock, out_of_stock or "
                            "preorder")
    return found


def parse_clearable_url(value: str) -> str:
    """An https:// address, or `off` to remove it."""
    url = value.strip()
    if url.lower() in CLEAR_WORDS:
        return ""
    if "://" not in url:
        url = "https://" + url
    if not re.match(r"^https://[^\s/@]+\.[^\s/@]+(/\S*)?$", url):
        raise ArgumentError(f"'{value}' is not a web address; write it like "
                            "https://shop.example/mug")
    return url


# -- product links ----------------------------------------------------------------------

def product_link_pattern(public_url: str) -> re.Pattern[str]:
    """Links to Mercato's product pages, `<public url>/p/<shop>/<sku>`: groups shop, SKU."""
    base = re.escape(public_url.rstrip("/"))
    return re.compile(base + r"/p/([a-z0-9][a-z0-9-]*)/([A-Za-z0-9._%-]+)")


def product_links(text: str, public_url: str) -> list[tuple[MerchantSlug, Sku]]:
    """The products a message links to, in order, each once, at most a few."""
    if not public_url:
        return []
    found: list[tuple[MerchantSlug, Sku]] = []
    for match in product_link_pattern(public_url).finditer(text):
        sku = unquote(match.group(2)).rstrip(".")
        if not _SKU.match(sku):
            continue
        link = (MerchantSlug(match.group(1)), Sku(sku))
        if link not in found:
            found.append(link)
        if len(found) == MAX_CARDS_PER_MESSAGE:
            break
    return found


# -- answers ----------------------------------------------------------------------------

def price_text(product: dict[str, Any]) -> str:
    text = f"{product['price']} {product['currency']}"
    original = product.get("original_price")
    if original and Decimal(original) > Decimal(product["price"]):
        text += f" (was {original})"
    return text


def product_line(product: dict[str, Any]) -> str:
    return (f"{product['sku']} — {product['title']} — {price_text(product)} — "
            f"{STOCK_TEXT.get(product.get('stock', ''), product.get('stock', ''))}")


def product_list(slug: str, found: Sequence[dict[str, Any]], total: int, query: str,
                 prefix: str) -> Reply:
    if not found:
        if query:
            return Reply(f"No product of {slug} matches '{query}'. {prefix}products list shows "
                         "them all.")
        return Reply(f"{slug} has no products yet. Add one with {prefix}products add <sku> "
                     "<price> <currency> <title…>, or import a CSV file with "
                     f"{prefix}products import.")
    shown = found[:MAX_LISTED_PRODUCTS]
    head = (f"Products of {slug} matching '{query}':" if query
            else f"Products of {slug} ({total} in all):")
    lines = [head, *(product_line(p) for p in shown)]
    if len(found) > len(shown) or (not query and total > len(shown)):
        lines.append(f"…and more; narrow it down with {prefix}products list <word>.")
    rows = [(p["sku"], p["title"], price_text(p), STOCK_TEXT.get(p.get("stock", ""), ""))
            for p in shown]
    html = (f"<p>{escape(head)}</p>" + table(("SKU", "Title", "Price", "Stock"), rows)
            + "".join(f"<p>{escape(line)}</p>" for line in lines[len(shown) + 1:]))
    return Reply("\n".join(lines), html)


def product_saved(verb: str, slug: str, product: dict[str, Any], prefix: str) -> str:
    lines = [f"{verb} {product_line(product)} in {slug}."]
    if product.get("page"):
        lines.append(f"Its page: {product['page']}")
    lines.append(f"A card to forward: {prefix}share {slug} {product['sku']}")
    return "\n".join(lines)


def _row_note(item: Any, text_key: str) -> tuple[str, str, str]:
    """(row, sku, text) of a refused row or a warning; a bare string is a warning as is."""
    if not isinstance(item, dict):
        return "", "", str(item)
    row = item.get("row")
    return ("" if row is None else str(row), str(item.get("sku") or ""),
            str(item.get(text_key) or ""))


def import_report(slug: str, report: dict[str, Any], filename: str) -> Reply:
    """The import's per-row report: counts, refused rows with their reason, warnings."""
    refused = [_row_note(i, "reason") for i in report.get("refused") or []]
    refused_count = int(report.get("refused_count", len(refused)))
    warnings = [_row_note(i, "warning") for i in report.get("warnings") or []]
    warning_count = int(report.get("warning_count", len(warnings)))
    shown = refused[:MAX_SHOWN_REFUSALS]
    head = (f"Imported {filename} into {slug}: {report.get('rows', 0)} rows, "
            f"{report.get('imported', 0)} new, {report.get('updated', 0)} updated, "
            f"{refused_count} refused"
            + (f", {report['skipped']} skipped (no product of their own)"
               if report.get("skipped") else "") + ".")
    notes = []
    if refused_count > len(shown):
        notes.append(f"…and {refused_count - len(shown)} more refused rows.")
    if refused_count:
        notes.append("Nothing of a refused row was written. Fix these rows and send the file "
                     "again: rows already imported are updated, not doubled.")
    for row, sku, text in warnings[:MAX_SHOWN_REFUSALS]:
        where = f"row {row}{f' ({sku})' if sku else ''}: " if row else ""
        notes.append(f"Note: {where}{text}")
    if warning_count > min(len(warnings), MAX_SHOWN_REFUSALS):
        notes.append(f"…and {warning_count - min(len(warnings), MAX_SHOWN_REFUSALS)} more "
                     "notes.")
    lines = [head]
    if shown:
        lines.append("Refused rows:")
        lines += [f"row {row}{f' ({sku})' if sku else ''}: {reason}"
                  for row, sku, reason in shown]
    lines += notes
    html = (f"<p>{escape(head)}</p>"
            + (table(("Row", "SKU", "Why refused"), shown) if shown else "")
            + "".join(f"<p>{escape(note)}</p>" for note in notes))
    return Reply("\n".join(lines), html)


def alert_list(alerts: Sequence[dict[str, Any]], prefix: str) -> Reply:
    if not alerts:
        return Reply(f"You have no price-drop alerts. Set one with {prefix}alert <shop> <sku>, "
                     "or react 🔔 to a product card.")
    lines = ["Your price-drop alerts:"]
    for alert in alerts:
        state = "already told" if alert.get("notified_at") else "waiting"
        lines.append(f"{alert['merchant_slug']} {alert['sku']} — set at {alert['price']} — "
                     f"{state}")
    lines.append(f"Cancel one with {prefix}alerts cancel <shop> <sku>.")
    return Reply("\n".join(lines))


def channel_link(alias: str) -> str:
    """A matrix.to link that opens the room in the reader's own client."""
    return "https://matrix.to/#/" + alias.replace("#", "%23", 1).replace(":", "%3A")


def deals(shops: Sequence[dict[str, Any]], on_sale: dict[str, list[dict[str, Any]]],
          prefix: str) -> Reply:
    """Verified shops with their channels, and what they sell below its earlier price."""
    if not shops:
        return Reply("No shop is verified by the operator yet, so there are no deals to show. "
                     f"Browse every shop with {prefix}shops.")
    lines = ["Deals come as posts in shops' channels: join a channel to get them. "
             "Verified shops:"]
    html = [f"<p>{escape(lines[0])}</p><ul>"]
    for shop in shops:
        alias = (shop.get("channels") or [""])[0]
        where = f" — {alias} {channel_link(alias)}" if alias else ""
        lines.append(f"✓ {shop['name']} ({shop['slug']}){where}")
        item = f"<li>✓ {escape(shop['name'])} ({escape(shop['slug'])})"
        if alias:
            item += f' — <a href="{escape(channel_link(alias))}">{escape(alias)}</a>'
        sales = on_sale.get(shop["slug"], [])
        if sales:
            item += "<ul>"
        for product in sales:
            lines.append(f"   on sale: {product['title']} — {price_text(product)} — "
                         f"{prefix}share {shop['slug']} {product['sku']}")
            item += (f"<li>on sale: {escape(product['title'])} — "
                     f"{escape(price_text(product))}</li>")
        html.append(item + ("</ul>" if sales else "") + "</li>")
    footer = f"Follow a shop: {prefix}follow <shop>. Search all shops: {prefix}shops <word>."
    lines.append(footer)
    html.append(f"</ul><p>{escape(footer)}</p>")
    return Reply("\n".join(lines), "".join(html))


def on_sale(products: Sequence[dict[str, Any]], limit: int = 3) -> list[dict[str, Any]]:
    """Products priced below their earlier price, biggest saving first."""
    sales = [p for p in products if p.get("original_price")
             and Decimal(p["original_price"]) > Decimal(p["price"])
             and p.get("stock") != "out_of_stock"]
    sales.sort(key=lambda p: Decimal(p["price"]) / Decimal(p["original_price"]))
    return sales[:limit]
