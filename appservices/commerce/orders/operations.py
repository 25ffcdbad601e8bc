"""Orders: placing an order and moving it through its statuses. The HTTP routes and the
chat flows call these same functions; carts are in `carts`, the shop's order settings in
`settings`, and reading orders (views, pages, the stats' numbers) in `views`.

Placing an order is one database transaction: the counted stock is taken with a
conditional UPDATE (of fifty orders for the last five units exactly five get one, on
SQLite and PostgreSQL alike), the coupon code is spent once, the order, its items and
its first history row are written, and its Matrix messages (the card in the buyer's DM,
the thread opening in the staff room) and webhook event are recorded — all of it or
none. Each status change is one transaction the same way. Matrix effects go through the
`OrdersMatrix` port; the outbox sends what was recorded after the commit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from appservices.commerce import links
from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.catalog.operations import CatalogMatrix
from appservices.commerce.errors import Conflict, InvalidInput
from appservices.commerce.orders import cards, carts, payments, rules, views
from appservices.commerce.orders import messages as order_messages
from appservices.commerce.orders import settings as order_settings
from appservices.commerce.orders import storage as rows
from appservices.commerce.orders.rules import Actor, Order, Status, StatusChange
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, get_shop, require
from appservices.commerce.shops.roles import Action
from appservices.commerce.webhooks.events import record_event
from mercato.db import Connection, Database, transaction
from mercato.logging import get_logger
from mercato.matrix.outbox import Message
from mercato.matrix.retrying import now_ms
from mercato.values import plain_text

log = get_logger(__name__)



class OrdersMatrix(CatalogMatrix, Protocol):
    """What orders need from Matrix: the buyer's DM with the shop, and the outbox."""

    async def order_room(self, merchant: store.Merchant, user_id: str) -> tuple[str, bool]:
        """The shop's DM with the buyer (created, or the buyer invited back if they left)
        and whether the buyer is in it now."""

    async def queue_message(self, message: Message, conn: Connection) -> None:
        """Record a message in the outbox, inside the caller's transaction."""

    def wake_messages(self) -> None:
        """Messages were recorded in a transaction now committed: send them now."""


# -- placing an order ---------------------------------------------------------------------------

async def _attribution(db: Database, matrix: OrdersMatrix, slug: str,
                       skus: list[str]) -> int | None:
    """The latest campaign of the shop that linked to one of these products, if any."""
    for campaign in await campaign_rows.campaigns_of(db, slug):
        if campaign.state not in ("sent", "sending"):
            continue
        texts = [str(text) for text in campaign.fields.values()]
        if rules.linked_products(matrix.public_url, slug, texts) & set(skus):
            return campaign.id
    return None


def _order_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("body", 'send {"shop": …, "items": [...], "delivery": {…}, '
                                   '"payment": …}')
    if not isinstance(body.get("shop"), str) or not body["shop"]:
        raise InvalidInput("shop", "name the shop (its slug) you order from")
    return body


async def place_order(db: Database, matrix: OrdersMatrix, buyer_id: str, body: Any) -> Order:
    """Place an order: `{"shop", "items": [{"sku", "quantity"}] (or "from_cart": true),
    "delivery": {"kind", "address", "phone"}, "payment": <method>, "coupon": <code>}`."""
    body = _order_request(body)
    merchant = await carts.open_shop(db, body["shop"])
    from_cart = body.get("from_cart") is True or "items" not in body
    if from_cart:
        in_cart = await rows.cart_items(db, buyer_id, merchant.slug)
        if not in_cart:
            raise InvalidInput("items", f"your cart at {merchant.name} is empty; add products "
                                        "or list the items to order")
        wanted = rules.validate_items([{"sku": s, "quantity": q} for s, q in in_cart])
    else:
        wanted = rules.validate_items(body.get("items"))
    settings = await order_settings.settings_of(db, merchant.slug)
    delivery = rules.validate_delivery(body.get("delivery"), settings["delivery"])
    chosen = payments.choose(body.get("payment"), settings["payment_methods"], delivery.kind)
    items = []
    for sku, quantity in wanted:
        product = await carts.orderable(db, merchant, sku, quantity)
        items.append((product, rules.Item(sku, product.title, rules.cents(product.price),
                                          quantity)))
    currencies = {product.currency for product, _ in items}
    if len(currencies) > 1:
        raise InvalidInput("items", f"are priced in {' and '.join(sorted(currencies))}; order "
                                    "them separately")
    coupon = await carts.checked_coupon(db, merchant, buyer_id, body.get("coupon"))
    subtotal = sum(item.line_total for _, item in items)
    discount = carts.coupon_discount(subtotal, coupon)
    campaign_id = await _attribution(db, matrix, merchant.slug, [s for s, _ in wanted])
    room_id, joined = await matrix.order_room(merchant, buyer_id)  # idempotent; before the write
    now = now_ms()
    order = Order(
        id="", merchant_slug=merchant.slug, buyer_id=buyer_id, status=Status.PLACED.value,
        currency=currencies.pop(), subtotal=subtotal, discount=discount,
        total=subtotal - discount, delivery_kind=delivery.kind.value, address=delivery.address,
        phone=delivery.phone, payment_method=chosen.name, payment_reference="",
        coupon_code=coupon["code"] if coupon else None, paid_at=None, carrier=None,
        tracking=None, tracking_url=None, reason=None, campaign_id=campaign_id,
        dm_room_id=room_id, card_event_id=None, staff_event_id=None, forgotten_at=None,
        created_at=now, updated_at=now, items=[item for _, item in items],
        history=[rules.HistoryEntry(Status.PLACED.value, buyer_id, "", now)])
    async with transaction(db) as conn:
        order = await _write_new_order(conn, order, merchant, chosen)
        if coupon and not await rows.spend_code(conn, coupon["code"], buyer_id, order.id, now):
            raise InvalidInput("coupon", f"{coupon['code']} was already used")
        if from_cart:
            await rows.clear_cart(conn, buyer_id, merchant.slug)
        await _record_placed(conn, matrix, merchant, order, settings, held=not joined)
        # Last: a product's row stays locked from taking its stock until the commit, and
        # concurrent orders of the same product wait on that lock; the shorter, the better.
        await _take_stock(conn, merchant, order)
    matrix.wake_messages()
    log.info("order.placed", order=order.id, shop=merchant.slug, items=len(order.items),
             total=order.total, currency=order.currency)
    await _stock_changed(db, matrix, merchant, [p for p, _ in items], returned=False)
    return order


async def _take_stock(conn: Connection, merchant: store.Merchant, order: Order) -> None:
    """Take the stock of every counted product ordered; raises SoldOut (the transaction
    then rolls back all of the order) when one has fewer left than ordered."""
    for item in sorted(order.items, key=lambda i: i.sku):  # one lock order: no deadlock
        if await rows.counted_quantity(conn, merchant.slug, item.sku) is None:
            continue
        if not await rows.take_stock(conn, merchant.slug, item.sku, item.quantity):
            left = await rows.counted_quantity(conn, merchant.slug, item.sku) or 0
            raise carts.SoldOut(f"{item.title} ({item.sku}) is sold out." if left == 0 else
                          f"Only {left} of {item.title} ({item.sku}) left; ask for {left} "
                          "or fewer.")


async def _write_new_order(conn: Connection, order: Order, merchant: store.Merchant,
                           chosen: payments.PaymentMethod) -> Order:
    """Write the order with a fresh ID (its stock is taken by `_take_stock`)."""
    order_id = rules.new_order_id()
    while await rows.order_exists(conn, order_id):
        order_id = rules.new_order_id()
    face = _face(merchant)
    reference = chosen.reference(cards.payable(_with(order, id=order_id), face))
    order = _with(order, id=order_id, payment_reference=reference)
    await rows.insert_order(conn, order)
    await rows.add_history(conn, order.id, Status.PLACED.value, order.buyer_id, "",
                           order.created_at)
    return order


async def _record_placed(conn: Connection, matrix: OrdersMatrix, merchant: store.Merchant,
                         order: Order, settings: dict[str, Any], *, held: bool) -> None:
    face = _face(merchant)
    methods = settings["payment_methods"]
    card = cards.render_card(order, face, methods.get(order.payment_method, {}))
    await matrix.queue_message(order_messages.card(
        order.id, order.dm_room_id, merchant.mxid, card, order.buyer_id if held else None),
        conn)
    if merchant.staff_room_id:
        await matrix.queue_message(order_messages.staff_opening(
            order.id, merchant.staff_room_id, merchant.mxid, cards.staff_opening(order, face)),
            conn)
    await _order_event(conn, order, "order.placed")


async def _order_event(conn: Connection, order: Order, event_type: str) -> None:
    """The shop's back-end hears of it (webhooks), in the order's transaction. Address and
    phone are not sent: the back-end reads them with its key (GET …/orders/{id})."""
    await record_event(conn, store.MerchantSlug(order.merchant_slug), event_type, order.id,
                       views.order_payload(order))


# -- status changes ------------------------------------------------------------------------------

async def change_status(db: Database, matrix: OrdersMatrix, principal: Principal, slug: str,
                        order_id: str, body: Any) -> Order:
    """The shop moves an order on: `{"status": "shipped", "carrier", "tracking",
    "tracking_url"}`, `{"status": "declined", "reason"}`, …"""
    merchant = await require(db, principal, slug, Action.MANAGE_ORDERS)
    order = await views.order_of_shop(db, merchant, order_id)
    change = rules.parse_status_change(body, links.policy_for(merchant, matrix.mercato_hosts))
    return await _move(db, matrix, merchant, order, change, Actor.SHOP, principal.actor)


async def cancel_order(db: Database, matrix: OrdersMatrix, buyer_id: str, order_id: str,
                       reason: Any = None) -> Order:
    """The buyer cancels their order (before it ships)."""
    order = await views.order_of_buyer(db, buyer_id, order_id)
    merchant = await get_shop(db, order.merchant_slug)
    change = StatusChange(Status.CANCELLED,
                          reason=plain_text("reason", reason, rules.MAX_REASON) or None)
    return await _move(db, matrix, merchant, order, change, Actor.BUYER, buyer_id)


async def _move(db: Database, matrix: OrdersMatrix, merchant: store.Merchant, order: Order,
                change: StatusChange, actor: Actor, actor_id: str) -> Order:
    method = payments.REGISTRY[order.payment_method]
    rules.check_transition(order, change, actor, paid_before_shipping=method.paid_before_shipping)
    now = now_ms()
    changes: dict[str, Any] = {"status": change.status.value, "updated_at": now}
    if change.status == Status.PAID or (change.status == Status.DELIVERED and
                                        not method.paid_before_shipping and order.paid_at is None):
        changes["paid_at"] = now  # paid to the courier or at the counter
    if change.status == Status.SHIPPED:
        changes.update(carrier=change.carrier, tracking=change.tracking,
                       tracking_url=change.tracking_url)
    if change.reason:
        changes["reason"] = change.reason
    returned = rules.stock_returns(order.status, change.status)
    before = await _products_of(db, order) if returned else []
    async with transaction(db) as conn:
        if not await rows.move_order(conn, order.id, order.status, **changes):
            raise Conflict(f"Order {order.id} was changed a moment ago; look at it again.",
                           errcode="MERCATO_ORDER_STATUS")
        await rows.add_history(conn, order.id, change.status.value, actor_id,
                               rules.history_note(change), now)
        if returned:
            for item in order.items:
                await rows.return_stock(conn, order.merchant_slug, item.sku, item.quantity)
        if order.coupon_code and order.status == Status.PLACED and change.status in (
                Status.CANCELLED, Status.DECLINED):
            await rows.unspend_code(conn, order.coupon_code, order.id)  # never confirmed
        moved = await rows.get_order(conn, order.id)
        assert moved is not None
        await _record_change(conn, matrix, merchant, moved, actor_id)
    matrix.wake_messages()
    log.info("order.moved", order=order.id, shop=merchant.slug, status=change.status.value,
             by=actor.value)
    if returned:
        await _stock_changed(db, matrix, merchant, before, returned=True)
    return moved


async def _record_change(conn: Connection, matrix: OrdersMatrix, merchant: store.Merchant,
                         order: Order, actor_id: str) -> None:
    face = _face(merchant)
    step = len(order.history)
    settings = await order_settings.settings_of(conn, merchant.slug)
    card = cards.render_card(order, face, settings["payment_methods"].get(
        order.payment_method, {}))
    await matrix.queue_message(order_messages.card_edit(
        order.id, step, order.dm_room_id, merchant.mxid, card), conn)
    await matrix.queue_message(order_messages.notice(
        order.id, step, order.dm_room_id, merchant.mxid, cards.status_notice(order, face)), conn)
    if merchant.staff_room_id:
        await matrix.queue_message(order_messages.staff_update(
            order.id, step, merchant.staff_room_id, merchant.mxid,
            cards.staff_update(order, actor_id)), conn)
    await _order_event(conn, order, "order.status_changed")


async def forget_personal_data(db: Database, matrix: OrdersMatrix, buyer_id: str,
                               order_id: str) -> Order:
    """Erase the address and phone of a finished order; its totals stay for the shop's
    books. The card is edited so it no longer shows them."""
    order = await views.order_of_buyer(db, buyer_id, order_id)
    if Status(order.status) in (Status.PLACED, Status.CONFIRMED, Status.PAID, Status.SHIPPED):
        raise Conflict(f"Order {order.id} is {order.status}; its address is needed until it "
                       "is delivered or cancelled.", errcode="MERCATO_ORDER_STATUS")
    if order.forgotten_at is not None:
        return order
    merchant = await get_shop(db, order.merchant_slug)
    async with transaction(db) as conn:
        await rows.update_order(conn, order.id, address=None, phone=None,
                                forgotten_at=now_ms())
        forgotten = await rows.get_order(conn, order.id)
        assert forgotten is not None
        settings = await order_settings.settings_of(conn, merchant.slug)
        card = cards.render_card(forgotten, _face(merchant), settings["payment_methods"].get(
            order.payment_method, {}))
        await matrix.queue_message(order_messages.card_edit(
            order.id, 0, order.dm_room_id, merchant.mxid, card), conn)
    matrix.wake_messages()
    log.info("order.personal_data_erased", order=order.id, shop=merchant.slug)
    return forgotten


# -- stock and the catalog's cards ----------------------------------------------------------------

async def _products_of(db: Database, order: Order) -> list[products.Product]:
    found = [await product_rows.get_product(db, order.merchant_slug, i.sku) for i in order.items]
    return [p for p in found if p is not None]


async def _stock_changed(db: Database, matrix: OrdersMatrix, merchant: store.Merchant,
                         before: list[products.Product], *, returned: bool) -> None:
    """After the commit: product cards show sold out (or in stock again), and those who
    asked to hear when a product is back are told. The order stands whatever happens here."""
    for old in before:
        if old.quantity is None:
            continue
        try:
            new = await product_rows.get_product(db, merchant.slug, old.sku)
            if new is None or new.stock == old.stock and not returned:
                continue
            await catalog.refresh_cards(db, matrix, merchant, new)
            if returned and products.price_dropped(old, new):
                await catalog.notify_alerts(db, matrix, merchant, old, new)
        except Exception:
            log.exception("order.card_refresh_failed", shop=merchant.slug, sku=old.sku)


# -- small helpers ---------------------------------------------------------------------------------

def _face(merchant: store.Merchant) -> cards.ShopFace:
    return cards.ShopFace(merchant.slug, merchant.name, merchant.mxid, merchant.verified)


def _with(order: Order, **changes: Any) -> Order:
    return replace(order, **changes)
