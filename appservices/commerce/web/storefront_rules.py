"""What the storefront shows, sans I/O: which page of the catalog a buyer asked for
(`?q=`, `?tag=`, `?page=`), the links to the pages around it, how a product's stock and
price read, and the form values a buyer sends at checkout. Tested without a server."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from appservices.commerce.catalog.products import Product

PER_PAGE = 48
MAX_QUERY = 100
LOW_STOCK = 5  # "only N left" from here down
# The homeserver's thumbnail that fits a grid cell at twice the pixels (phones and
# high-density screens); Synapse makes 320×240 (scaled) by default.
THUMBNAIL = (320, 240)


@dataclass(frozen=True)
class Listing:
    """Which products a buyer asked to see."""

    query: str = ""
    tag: str = ""
    page: int = 1
    per_page: int = PER_PAGE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def link(self, **changes: Any) -> str:
        """The query string of this listing with some values changed ("?q=tea&page=2");
        defaults are left out, so the plain shop address stays plain ("")."""
        wanted = replace(self, **changes)
        pairs = [("q", wanted.query), ("tag", wanted.tag)]
        pairs += [("page", str(wanted.page))] if wanted.page > 1 else []
        kept = [(k, v) for k, v in pairs if v]
        return f"?{urlencode(kept)}" if kept else ""


@dataclass(frozen=True)
class ShopPage:
    products: list[Product]
    matching: int  # products matching the listing, on every page


def parse_listing(params: Any) -> Listing:
    """A listing from the query string; nonsense reads as the first page, never an error
    page (a buyer edited a link or followed an old one)."""
    query = " ".join(str(params.get("q", "")).split())[:MAX_QUERY]
    tag = str(params.get("tag", "")).strip().casefold()[:40]
    try:
        page = max(1, min(int(params.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    return Listing(query=query, tag=tag, page=page)


def page_count(matching: int, per_page: int = PER_PAGE) -> int:
    return max(1, -(-matching // per_page))


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    previous: str | None  # query strings, None at either end
    next: str | None


def pager(listing: Listing, matching: int) -> Pager:
    pages = page_count(matching, listing.per_page)
    return Pager(listing.page, pages,
                 listing.link(page=listing.page - 1) if listing.page > 1 else None,
                 listing.link(page=listing.page + 1) if listing.page < pages else None)


def stock_label(product: Product) -> tuple[str, str]:
    """(what the buyer reads, a CSS class) for the product's stock."""
    if product.stock == "out_of_stock" or product.quantity == 0:
        return "Sold out", "sold-out"
    if product.stock == "preorder":
        return "Pre-order", "preorder"
    if product.quantity is not None and product.quantity <= LOW_STOCK:
        return f"Only {product.quantity} left", "low"
    return "In stock", "in-stock"


def can_order(product: Product) -> bool:
    return stock_label(product)[1] != "sold-out"


def percent_off(product: Product) -> int | None:
    """How much a sale takes off, rounded down to a whole percent."""
    if not product.on_sale or product.original_price is None:
        return None
    before = Decimal(product.original_price)
    return int((before - Decimal(product.price)) * 100 / before)


# -- what a buyer sends in the forms ---------------------------------------------------------

def form_quantity(value: Any) -> int | str:
    """A quantity typed in a form: the whole number, or the text as typed for orders' own
    check to refuse with its sentence."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else text


def checkout_body(slug: str, form: Any) -> dict[str, Any]:
    """The order to place, from the checkout form, as orders' place_order takes it."""
    kind = str(form.get("delivery", "")).strip()
    delivery: dict[str, Any] = {"kind": kind, "phone": str(form.get("phone", "")).strip()}
    if kind == "shipping":  # the address field stays in the form whatever is chosen
        delivery["address"] = str(form.get("address", "")).strip()
    return {"shop": slug, "from_cart": True, "delivery": delivery,
            "payment": str(form.get("payment", "")).strip(),
            "coupon": str(form.get("coupon", "")).strip() or None}


DELIVERY_TEXT = {"shipping": "Shipping to your address", "pickup": "Pick up at the shop",
                 "none": "Nothing to deliver (digital)"}


def payment_hint(name: str, settings: dict[str, Any], total: str) -> str:
    """What the buyer will be asked to do for a payment method, before the order exists (the
    order card carries the exact instructions with the order's number)."""
    if name == "on_delivery":
        return f"Pay {total} to the courier when the parcel arrives."
    if name == "pickup":
        return f"Pay {total} when you collect the order at the shop."
    if name == "bank_transfer":
        return (f"Transfer {total} to {settings.get('details', 'the shop')}; the reference "
                "comes with your order, which ships once the payment arrives.")
    if name == "payment_link":
        return f"Pay {total} online on the shop's payment page; the link comes with your order."
    return f"Pay {total} as the shop's order card explains."


def payment_choices(methods: list[dict[str, Any]], settings: dict[str, dict[str, Any]],
                    total: str) -> list[dict[str, Any]]:
    """The shop's methods (checkout_options' view) with what each asks and which delivery it
    goes with."""
    return [{**m, "hint": payment_hint(m["method"], settings.get(m["method"], {}), total),
             "only": [DELIVERY_TEXT.get(k, k).lower() for k in m["delivery"]]
             if len(m["delivery"]) < 3 else []} for m in methods]
