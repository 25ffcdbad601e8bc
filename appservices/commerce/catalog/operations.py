"""The product catalog: create, edit, delete, share cards, live edits and price-drop alerts.

Called by the HTTP API; Matrix effects go through the `CatalogMatrix` port.
A price or stock change edits every card the shop posted (`m.replace`) and tells
each price-drop subscriber once, by DM from the shop.
"""

from __future__ import annotations

from typing import Any, Protocol

from appservices.commerce import links
from appservices.commerce.catalog import cards as card_edits
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as rows
from appservices.commerce.catalog.products import Product
from appservices.commerce.errors import Conflict, Forbidden, InvalidInput, NotFound
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.rooms import room_id_of
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, get_shop, require
from appservices.commerce.shops.roles import Action
from mercato.db import Connection, Database, transaction
from mercato.logging import get_logger

log = get_logger(__name__)


class CatalogMatrix(Protocol):
    public_url: str
    mercato_hosts: tuple[str, ...]

    async def post_card(self, merchant: store.Merchant, room_id: str,
                        content: dict[str, Any], txn_id: str) -> str: ...

    async def queue_card_edit(self, merchant: store.Merchant, room_id: str,
                              card_event_id: str, txn_id: str, conn: Connection) -> None: ...

    def wake_messages(self) -> None: ...

    async def resolve_room(self, room: str) -> str: ...

    async def send_direct(self, merchant: store.Merchant, user_id: str, text: str,
                          txn_id: str, *, kind: str = ...) -> tuple[str, str]: ...


def card_for(matrix: CatalogMatrix, merchant: store.Merchant, product: Product) -> dict[str, Any]:
    return products.render_card(
        product, shop_name=merchant.name, shop_mxid=merchant.mxid, verified=merchant.verified,
        page_url=products.product_page_url(matrix.public_url, merchant.slug, product.sku))


def check_product_links(matrix: CatalogMatrix, merchant: store.Merchant,
                        product: Product) -> None:
    """The link rules, on a product as stored: it may be older than the rules, or the
    shop's verification gone since it was saved."""
    links.check_links(products.link_texts(product.__dict__),
                      links.policy_for(merchant, matrix.mercato_hosts))


def shown_url(matrix: CatalogMatrix, merchant: store.Merchant, product: Product) -> str:
    """The product's URL if the link rules still allow it, else nothing to show."""
    try:
        links.check_links([product.url], links.policy_for(merchant, matrix.mercato_hosts))
    except links.LinkRefused:
        return ""
    return product.url


async def get_product(db: Database, slug: str, sku: str) -> Product:
    product = await rows.get_product(db, slug, sku)
    if product is None:
        raise NotFound(f"There is no product '{sku}' in '{slug}'.")
    return product


async def public_product(db: Database, slug: str, sku: str) -> tuple[store.Merchant, Product]:
    """A product anyone may see: of an approved shop."""
    merchant = await get_shop(db, slug)
    if merchant.status != "approved":
        raise NotFound(f"There is no shop '{slug}'.")
    return merchant, await get_product(db, slug, sku)


async def create_product(db: Database, matrix: CatalogMatrix, principal: Principal, slug: str,
                         body: Any) -> Product:
    merchant = await require(db, principal, slug, Action.EDIT_CATALOG)
    fields = products.validate_product(body)
    links.check_links(products.link_texts(fields),
                      links.policy_for(merchant, matrix.mercato_hosts))
    async with transaction(db) as conn:
        if await rows.get_product(conn, slug, fields["sku"]):
            raise Conflict(f"The SKU '{fields['sku']}' already exists in your catalog; edit "
                           "it instead.", errcode="MERCATO_SKU_TAKEN")
        await rows.upsert_product(conn, slug, fields)
        await store.audit(conn, slug, principal.actor, "product_created", sku=fields["sku"])
    return await get_product(db, slug, fields["sku"])


async def update_product(db: Database, matrix: CatalogMatrix, principal: Principal, slug: str,
                         sku: str, body: Any) -> Product:
    return (await update_products(db, matrix, principal, slug, [(sku, body)]))[0]


def checked_update(matrix: CatalogMatrix, merchant: store.Merchant, before: Product,
                   body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields `body` changes and the whole product as it will be stored, every rule
    checked (nothing is written here)."""
    changes = products.validate_product(body, partial=True)
    if changes.get("sku", before.sku) != before.sku:
        raise InvalidInput("sku", "cannot be changed; create a new product instead")
    merged = {**before.__dict__, **changes}
    # Check the combination (a sale price against the original price).
    products.validate_product({k: merged[k] for k in (
        "sku", "title", "description", "price", "currency", "original_price", "image_mxc",
        "image_info", "url", "stock", "tags")})
    # The whole product, not only the change: a link stored before the rules is found too.
    links.check_links(products.link_texts(merged),
                      links.policy_for(merchant, matrix.mercato_hosts))
    return changes, merged


async def update_products(db: Database, matrix: CatalogMatrix, principal: Principal,
                          slug: str, edits: list[tuple[str, Any]]) -> list[Product]:
    """Change one product or several (the console's bulk changes): every change is checked
    before any is written, then all are saved in one transaction or none is. Cards and
    price-drop alerts follow once it is committed."""
    merchant = await require(db, principal, slug, Action.EDIT_CATALOG)
    if len({sku for sku, _ in edits}) != len(edits):
        raise InvalidInput("products", "name each product once")
    befores = [await get_product(db, slug, sku) for sku, _ in edits]
    checked = [checked_update(matrix, merchant, before, body)
               for before, (_, body) in zip(befores, edits, strict=True)]
    async with transaction(db) as conn:
        for before, (changes, merged) in zip(befores, checked, strict=True):
            await rows.upsert_product(conn, slug, merged)
            await store.audit(conn, slug, principal.actor, "product_updated", sku=before.sku,
                              fields=sorted(changes))
    afters = [await get_product(db, slug, before.sku) for before in befores]
    for before, after in zip(befores, afters, strict=True):
        await _tell_followers(db, matrix, merchant, before, after)
    return afters


async def _tell_followers(db: Database, matrix: CatalogMatrix, merchant: store.Merchant,
                          before: Product, after: Product) -> None:
    """Edit the posted cards when what they show changed; tell price-drop subscribers."""
    if (before.price, before.currency, before.stock, before.original_price) != (
            after.price, after.currency, after.stock, after.original_price) or (
            before.title, before.image_mxc) != (after.title, after.image_mxc):
        await refresh_cards(db, matrix, merchant, after)
    if products.price_dropped(before, after):
        await notify_alerts(db, matrix, merchant, before, after)


async def delete_product(db: Database, principal: Principal, slug: str, sku: str) -> None:
    await require(db, principal, slug, Action.EDIT_CATALOG)
    async with transaction(db) as conn:
        if not await rows.delete_product(conn, slug, sku):
            raise NotFound(f"There is no product '{sku}' in '{slug}'.")
        await store.audit(conn, slug, principal.actor, "product_deleted", sku=sku)


async def share_card(db: Database, matrix: CatalogMatrix, principal: Principal, slug: str,
                     sku: str, room_id: Any) -> dict[str, Any]:
    """The shop posts the card into a room it is in (its channel, a DM, a group)."""
    merchant = await require(db, principal, slug, Action.EDIT_CATALOG)
    if merchant.status != "approved":
        raise Forbidden(f"The shop is {merchant.status} and cannot post.",
                        errcode="MERCATO_SHOP_NOT_ACTIVE")
    # An alias is resolved before anything is written: a card stored under one could
    # never be edited.
    room_id = await room_id_of(matrix, "room_id", room_id,
                               what="a room ID (!…) or alias (#…) the shop is in")
    product = await get_product(db, slug, sku)
    check_product_links(matrix, merchant, product)
    now = store.now_ms()
    used, oldest = await rows.shares_since(db, slug, now - DAY_MS)
    products.check_share_quota(merchant.daily_share_quota, used, oldest, now)
    content = card_for(matrix, merchant, product)
    # The outbox sends it; the answer waits for the event ID (None if the homeserver has
    # not answered in time: the card is then sent, and recorded for edits, later).
    event_id = await matrix.post_card(merchant, room_id, content,
                                      txn_id=f"mercato.card.{slug}.{sku}.{store.now_ms()}")
    if event_id:
        await rows.record_card(db, event_id, room_id, product)
    return {"event_id": event_id or None, "room_id": room_id}


async def refresh_cards(db: Database, matrix: CatalogMatrix, merchant: store.Merchant,
                        product: Product) -> int:
    """Edit every card of this product the shop posted, so it shows what is true now.

    The outbox sends each edit with the card of that moment (card_delivery.py); the
    count is of those queued.
    """
    return await card_edits.refresh_cards(db, matrix, merchant, product)


async def notify_alerts(db: Database, matrix: CatalogMatrix, merchant: store.Merchant,
                        before: Product, after: Product) -> int:
    told = 0
    why = (f"is now {after.price} {after.currency} (was {before.price} {before.currency})"
           if after.price != before.price else "is back in stock")
    page = products.product_page_url(matrix.public_url, merchant.slug, after.sku)
    for user_id in await rows.open_alerts(db, merchant.slug, after.sku):
        if not await rows.mark_alert_sent(db, merchant.slug, after.sku, user_id):
            continue
        text = f"🔔 {after.title} {why}.\n{page}"
        await matrix.send_direct(merchant, user_id, text,
                                 txn_id=f"mercato.alert.{merchant.slug}.{after.sku}."
                                        f"{user_id}.{after.updated_at}", kind="price_alert")
        told += 1
    return told


async def subscribe_alert(db: Database, slug: str, sku: str, user_id: str) -> Product:
    merchant, product = await public_product(db, slug, sku)
    await rows.add_alert(db, merchant.slug, product.sku, user_id, product.price)
    return product


def product_view(product: Product, page_url: str) -> dict[str, Any]:
    view = {k: v for k, v in product.__dict__.items() if k != "merchant_slug"}
    view["shop"] = product.merchant_slug
    view["page"] = page_url
    return view

