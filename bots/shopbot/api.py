"""The commerce HTTP API as the shop bot calls it: the service token, for one Matrix user.

The API decides what that user may do; its refusals come back as `ApiError`, a
`CommandError` whose text is the API's own sentence, so the user reads it as is.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato.commands import CommandError
from mercato.config import MercatoConfig, reachable_host
from mercato.logging import get_logger
from mercato.types import MerchantSlug

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

    def as_user(self, user_id: str) -> UserApi:
        return UserApi(self, user_id)

    async def request(self, method: str, path: str, user_id: str, *,
                      body: Any = None, params: dict[str, str] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.service_token}",
                   ACTING_USER_HEADER: user_id}
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                async with self.session.request(method, url, json=body, params=params,
                                                headers=headers) as resp:
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

    def __init__(self, api: CommerceApi, user_id: str) -> None:
        self.api = api
        self.user_id = user_id

    async def _call(self, method: str, path: str, body: Any = None,
                    params: dict[str, str] | None = None) -> Any:
        return await self.api.request(method, path, self.user_id, body=body, params=params)

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
