"""The commerce HTTP API as the shop bot calls it: the service token, for one Matrix user.

The API decides what that user may do; its refusals come back as `ApiError`, a
`CommandError` whose text is the API's own sentence, so the user reads it as is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato.commands import CommandError
from mercato.config import MercatoConfig, reachable_host
from mercato.logging import get_logger
from mercato.types import CampaignID, MerchantSlug, Sku

log = get_logger(__name__)

ACTING_USER_HEADER = "X-Mercato-Acting-User"
# Connection failures are retried (nothing reached the API); answers never are.
RETRY_DELAYS = (0.5, 1.5, 4.0)


class ApiError(CommandError):
    """The API answered with an error: {errcode, error}."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode


class ApiUnavailable(CommandError):
    """The API could not be reached; nothing was done."""


def commerce_api_url(config: MercatoConfig) -> str:
    """Where the commerce API listens, as seen from this machine."""
    host = reachable_host(config.commerce.bind_address)
    return f"http://{host}:{config.commerce.port}/api/v1"


def _segment(value: str) -> str:
    return quote(value, safe="")


class CommerceApi:
    """One session for the bot; `as_user` gives the calls made on behalf of a user."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, service_token: str,
                 *, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.service_token = service_token
        self.retry_delays = retry_delays

    def as_user(self, user_id: str, *, before_write: Callable[[], None] | None = None
                ) -> UserApi:
        """`before_write` is called before each call that may change something."""
        return UserApi(self, user_id, before_write)

    async def request(self, method: str, path: str, user_id: str, *,
                      body: Any = None, params: dict[str, str] | None = None,
                      data: bytes | None = None, content_type: str = "") -> Any:
        """Call the API for `user_id`: a JSON `body`, or raw `data` of `content_type`."""
        headers = {"Authorization": f"Bearer {self.service_token}",
                   ACTING_USER_HEADER: user_id}
        if data is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                async with self.session.request(method, url, json=body, data=data,
                                                params=params, headers=headers) as resp:
                    return await self._answer(resp, method, path)
            except (aiohttp.ClientConnectionError, TimeoutError) as e:
                # A refused connection sent nothing; a dropped one may have been acted on.
                sent = not isinstance(e, aiohttp.ClientConnectorError)
                attempt += 1
                log.warning("shopbot.api_unreachable", method=method, path=path,
                            attempt=attempt, error=str(e) or type(e).__name__)
                if attempt > len(self.retry_delays) or (sent and method != "GET"):
                    raise ApiUnavailable(_unavailable(sent)) from None
                await asyncio.sleep(self.retry_delays[attempt - 1])

    @staticmethod
    async def _answer(resp: aiohttp.ClientResponse, method: str, path: str) -> Any:
        try:
            data = await resp.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            data = None
        if resp.status < 400:
            return data if data is not None else {}
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise ApiError(resp.status, str(data.get("errcode", "")), data["error"])
        log.warning("shopbot.api_failed", method=method, path=path, status=resp.status)
        raise ApiError(resp.status, "", f"The shop service failed (HTTP {resp.status}); "
                                        "try again later, or tell the operator.")


def _unavailable(sent: bool) -> str:
    if not sent:
        return "The shop service is not answering right now, so nothing was done. " \
               "Try again in a minute."
    return ("The shop service stopped answering; what you asked may or may not have been "
            "done. Check with the status or list command before trying again.")


class UserApi:
    """The API calls the bot makes for one Matrix user."""

    def __init__(self, api: CommerceApi, user_id: str,
                 before_write: Callable[[], None] | None = None) -> None:
        self.api = api
        self.user_id = user_id
        self.before_write = before_write

    async def _call(self, method: str, path: str, body: Any = None,
                    params: dict[str, str] | None = None, *, data: bytes | None = None,
                    content_type: str = "") -> Any:
        if method != "GET" and self.before_write is not None:
            self.before_write()
        return await self.api.request(method, path, self.user_id, body=body, params=params,
                                      data=data, content_type=content_type)

    async def my_shops(self) -> list[dict[str, str]]:
        """[{slug, role}] of the shops this user works for."""
        return list((await self._call("GET", "/me/shops"))["shops"])

    async def shop(self, slug: MerchantSlug) -> dict[str, Any]:
        return dict(await self._call("GET", f"/shops/{_segment(slug)}"))

    async def directory(self, query: str = "") -> list[dict[str, Any]]:
        params = {"q": query} if query else None
        return list((await self._call("GET", "/shops", params=params))["shops"])

    async def apply(self, application: dict[str, str]) -> dict[str, Any]:
        return dict(await self._call("POST", "/shops", application))

    async def update_shop(self, slug: MerchantSlug, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("PATCH", f"/shops/{_segment(slug)}", changes))

    async def staff(self, slug: MerchantSlug) -> list[dict[str, Any]]:
        return list((await self._call("GET", f"/shops/{_segment(slug)}/staff"))["staff"])

    async def add_staff(self, slug: MerchantSlug, user_id: str, role: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/shops/{_segment(slug)}/staff",
                                     {"user_id": user_id, "role": role}))

    async def remove_staff(self, slug: MerchantSlug, user_id: str) -> None:
        await self._call("DELETE", f"/shops/{_segment(slug)}/staff/{_segment(user_id)}")

    async def keys(self, slug: MerchantSlug) -> list[dict[str, Any]]:
        return list((await self._call("GET", f"/shops/{_segment(slug)}/keys"))["keys"])

    async def create_key(self, slug: MerchantSlug, label: str, role: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/shops/{_segment(slug)}/keys",
                                     {"label": label, "role": role}))

    async def revoke_key(self, slug: MerchantSlug, key_id: str) -> None:
        await self._call("DELETE", f"/shops/{_segment(slug)}/keys/{_segment(key_id)}")

    # -- catalog -----------------------------------------------------------------------

    def _product_path(self, slug: MerchantSlug, sku: Sku | None = None) -> str:
        path = f"/shops/{_segment(slug)}/products"
        return path if sku is None else f"{path}/{_segment(sku)}"

    async def products(self, slug: MerchantSlug, query: str = "",
                       limit: int = 100) -> dict[str, Any]:
        """{products: [...], total} — the catalog, by SKU, `query` searching it."""
        params = {"limit": str(limit), **({"q": query} if query else {})}
        return dict(await self._call("GET", self._product_path(slug), params=params))

    async def product(self, slug: MerchantSlug, sku: Sku) -> dict[str, Any]:
        return dict(await self._call("GET", self._product_path(slug, sku)))

    async def create_product(self, slug: MerchantSlug, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("POST", self._product_path(slug), fields))

    async def update_product(self, slug: MerchantSlug, sku: Sku,
                             changes: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("PATCH", self._product_path(slug, sku), changes))

    async def delete_product(self, slug: MerchantSlug, sku: Sku) -> None:
        await self._call("DELETE", self._product_path(slug, sku))

    async def import_products(self, slug: MerchantSlug, csv_data: bytes,
                              currency: str | None = None) -> dict[str, Any]:
        """The import report: {rows, imported, updated, refused: [{row, sku, reason}], warnings}."""
        params = {"currency": currency} if currency else None
        return dict(await self._call("POST", self._product_path(slug) + "/import",
                                     params=params, data=csv_data,
                                     content_type="text/csv; charset=utf-8"))

    async def card(self, slug: MerchantSlug, sku: Sku) -> dict[str, Any]:
        """The product card as m.room.message content."""
        return dict(await self._call("GET", self._product_path(slug, sku) + "/card"))

    async def add_alert(self, slug: MerchantSlug, sku: Sku) -> dict[str, Any]:
        return dict(await self._call("POST", self._product_path(slug, sku) + "/alert"))

    async def cancel_alert(self, slug: MerchantSlug, sku: Sku) -> None:
        await self._call("DELETE", self._product_path(slug, sku) + "/alert")

    async def alerts(self) -> list[dict[str, Any]]:
        """[{merchant_slug, sku, price, created_at, notified_at}] of the acting user."""
        return list((await self._call("GET", "/me/alerts"))["alerts"])

    # -- campaigns, coupons, stats -----------------------------------------------------

    def _campaign_path(self, slug: MerchantSlug, campaign: CampaignID | None = None) -> str:
        path = f"/shops/{_segment(slug)}/campaigns"
        return path if campaign is None else f"{path}/{int(campaign)}"

    async def upload_image(self, slug: MerchantSlug, image: bytes,
                           mimetype: str) -> dict[str, Any]:
        """{image_mxc, image_info} of an image uploaded for the shop's posts."""
        return dict(await self._call("POST", f"/shops/{_segment(slug)}/media", data=image,
                                     content_type=mimetype or "application/octet-stream"))

    async def create_campaign(self, slug: MerchantSlug, draft: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("POST", self._campaign_path(slug), draft))

    async def campaigns(self, slug: MerchantSlug) -> list[dict[str, Any]]:
        return list((await self._call("GET", self._campaign_path(slug)))["campaigns"])

    async def campaign(self, slug: MerchantSlug, campaign: CampaignID) -> dict[str, Any]:
        return dict(await self._call("GET", self._campaign_path(slug, campaign)))

    async def preview_campaign(self, slug: MerchantSlug, campaign: CampaignID) -> dict[str, Any]:
        return dict(await self._call("POST", self._campaign_path(slug, campaign) + "/preview"))

    async def schedule_campaign(self, slug: MerchantSlug, campaign: CampaignID,
                                at: str | None = None) -> dict[str, Any]:
        """Schedule for `at` (ISO 8601 with its timezone), or send now."""
        return dict(await self._call("POST", self._campaign_path(slug, campaign) + "/schedule",
                                     {"at": at} if at else {}))

    async def cancel_campaign(self, slug: MerchantSlug, campaign: CampaignID) -> dict[str, Any]:
        return dict(await self._call("POST", self._campaign_path(slug, campaign) + "/cancel"))

    async def stats(self, slug: MerchantSlug) -> dict[str, Any]:
        return dict(await self._call("GET", f"/shops/{_segment(slug)}/stats"))

    async def redeem(self, slug: MerchantSlug, code: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/shops/{_segment(slug)}/coupons/redeem",
                                     {"code": code}))

    async def claim(self, coupon: int) -> dict[str, Any]:
        return dict(await self._call("POST", f"/coupons/{int(coupon)}/claim"))

    async def coupons(self) -> list[dict[str, Any]]:
        """[{code, coupon, shop, title, expires_at, claimed_at, redeemed_at}] of the user."""
        return list((await self._call("GET", "/me/coupons"))["coupons"])

    # -- carts and orders ----------------------------------------------------------------

    async def cart(self, slug: MerchantSlug) -> dict[str, Any]:
        """{shop, items: [{sku, title, quantity, unit_price, currency, total, stock}],
        currency, subtotal} of the acting user at a shop."""
        return dict(await self._call("GET", f"/me/cart/{_segment(slug)}"))

    async def add_to_cart(self, slug: MerchantSlug, sku: Sku, quantity: int) -> dict[str, Any]:
        """Add `quantity` to what the cart holds of a product, in one step; the cart."""
        return dict(await self._call("POST", f"/me/cart/{_segment(slug)}/items",
                                     {"sku": sku, "quantity": quantity}))

    async def carts(self) -> list[dict[str, Any]]:
        """The acting user's carts that hold something, at any shop: [{shop, shop_name,
        shop_status, note, items, currency, subtotal}]."""
        return list((await self._call("GET", "/me/carts"))["carts"])

    async def set_cart_item(self, slug: MerchantSlug, sku: Sku, quantity: int) -> dict[str, Any]:
        """Put `quantity` of a product in the cart (not added to what is there); the cart."""
        return dict(await self._call("PUT", f"/me/cart/{_segment(slug)}/items/{_segment(sku)}",
                                     {"quantity": quantity}))

    async def remove_cart_item(self, slug: MerchantSlug, sku: Sku) -> dict[str, Any]:
        return dict(await self._call("DELETE",
                                     f"/me/cart/{_segment(slug)}/items/{_segment(sku)}"))

    async def checkout_options(self, slug: MerchantSlug) -> dict[str, Any]:
        """{shop, delivery: [kind], payment_methods: [{method, label, delivery}]}."""
        return dict(await self._call("GET", f"/shops/{_segment(slug)}/checkout"))

    async def place_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("POST", "/me/orders", order))

    async def my_orders(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/me/orders"))["orders"])

    async def my_order(self, order_id: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"/me/orders/{_segment(order_id)}"))

    async def cancel_order(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        return dict(await self._call("POST", f"/me/orders/{_segment(order_id)}/cancel",
                                     {"reason": reason} if reason else {}))

    async def forget_order(self, order_id: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/me/orders/{_segment(order_id)}/forget"))

    async def shop_orders(self, slug: MerchantSlug, status: str | None = None, *,
                          limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        """{orders: [...] newest first, next}: pass next back as `cursor` for older ones."""
        params = {"limit": str(limit)}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return dict(await self._call("GET", f"/shops/{_segment(slug)}/orders", params=params))

    async def shop_order(self, slug: MerchantSlug, order_id: str) -> dict[str, Any]:
        return dict(await self._call("GET",
                                     f"/shops/{_segment(slug)}/orders/{_segment(order_id)}"))

    async def move_order(self, slug: MerchantSlug, order_id: str,
                         change: dict[str, Any]) -> dict[str, Any]:
        """`{"status": "shipped", "carrier", "tracking", "tracking_url"}`, `{"status":
        "declined", "reason"}`, …; the order as it is now."""
        return dict(await self._call(
            "POST", f"/shops/{_segment(slug)}/orders/{_segment(order_id)}/status", change))
