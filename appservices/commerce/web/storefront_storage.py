"""The storefront's reads of the catalog: one page of a shop's products with how many match,
and the tags its products carry. A page costs a fixed number of queries, whatever the size
of the catalog or the page."""

from __future__ import annotations

import json
from typing import Any

from appservices.commerce.catalog.storage import _COLUMNS, _product
from appservices.commerce.web.storefront_rules import Listing, ShopPage

# LIKE treats % and _ as wildcards; a buyer typing them means the characters.
_ESCAPE = "!"


def _like(text: str) -> str:
    escaped = (text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%")
               .replace("_", _ESCAPE + "_"))
    return f"%{escaped}%"


def _filters(listing: Listing) -> tuple[str, list[Any]]:
    """The WHERE clause after the shop's slug ($1) and its arguments."""
    where, args = "", []
    if listing.query:
        args.append(_like(listing.query.casefold()))
        n = len(args) + 1
        where += (f" AND (LOWER(title) LIKE ${n} ESCAPE '{_ESCAPE}'"
                  f" OR LOWER(description) LIKE ${n} ESCAPE '{_ESCAPE}'"
                  f" OR LOWER(sku) LIKE ${n} ESCAPE '{_ESCAPE}'"
                  f" OR LOWER(tags) LIKE ${n} ESCAPE '{_ESCAPE}')")
    if listing.tag:
        # Tags are stored as a JSON list; the quoted tag matches one element exactly.
        args.append(_like(json.dumps(listing.tag)))
        where += f" AND tags LIKE ${len(args) + 1} ESCAPE '{_ESCAPE}'"
    return where, args


async def shop_page(db: Any, slug: str, listing: Listing) -> ShopPage:
    """The products of one page (by title, then SKU) and how many match in all, in one
    query: each row carries the count of the whole match."""
    where, args = _filters(listing)
    n = len(args) + 2
    rows = await db.fetch(
        f"SELECT {_COLUMNS}, COUNT(*) OVER () AS matching FROM product"
        f" WHERE merchant_slug=$1{where} ORDER BY LOWER(title), sku LIMIT ${n} OFFSET ${n + 1}",
        slug, *args, listing.per_page, listing.offset)
    matching = rows[0]["matching"] if rows else await _count(db, slug, where, args)
    return ShopPage([_product({k: r[k] for k in r.keys() if k != "matching"}) for r in rows],
                    matching)


async def _count(db: Any, slug: str, where: str, args: list[Any]) -> int:
    """Only for a page past the end (nothing came back to carry the count)."""
    return int(await db.fetchval(f"SELECT COUNT(*) FROM product WHERE merchant_slug=$1{where}",
                                 slug, *args))


async def shop_tags(db: Any, slug: str) -> list[str]:
    """Every tag of the shop's products, sorted; products sharing a set of tags are read
    once."""
    rows = await db.fetch("SELECT DISTINCT tags FROM product WHERE merchant_slug=$1", slug)
    return sorted({tag for r in rows for tag in json.loads(r["tags"])})
