"""Who a user's friends are, asked of the contacts bridge over its HTTP API.

Commerce cannot see anyone's DMs (it is not in them), so what Mercato knows of friendship
is the contacts bridge's: the opted-in people a user's address book found, and the people
whose address books found them. No component imports another: this is an HTTP call with
the bridge's `contacts.circle_token`. A bridge that does not answer means no friends found
now (opting in still works; friends can knock and be approved).
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from appservices.commerce.config import CommerceConfig
from mercato.config import MercatoConfig
from mercato.config.network import reachable_host
from mercato.logging import get_logger

log = get_logger(__name__)

FRIENDS_PATH = "/_mercato/contacts/v1/users/{user_id}/friends"
TIMEOUT = aiohttp.ClientTimeout(total=10)


def contacts_url(config: MercatoConfig) -> str:
    """The bridge's base URL: `commerce.circle.contacts_url`, or this network's bridge."""
    configured = CommerceConfig.of(config).circle.contacts_url
    if configured:
        return configured.rstrip("/")
    contacts = getattr(config, "contacts", None)
    if contacts is None:
        return ""
    return f"http://{reachable_host(contacts.bind_address)}:{contacts.port}"


class FriendFinder:
    def __init__(self, config: MercatoConfig) -> None:
        self.base_url = contacts_url(config)
        contacts = getattr(config, "contacts", None)
        self.token = str(getattr(contacts, "circle_token", "") or "")

    async def friends_of(self, user_id: str) -> list[str]:
        """The friends the contacts bridge found for `user_id`, both directions."""
        if not self.base_url or not self.token:
            return []
        url = self.base_url + FRIENDS_PATH.format(user_id=quote(user_id, safe=""))
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(
                    url, headers={"Authorization": f"Bearer {self.token}"}) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200:
                    log.warning("circle.friends_refused", status=resp.status,
                                error=body.get("error") if isinstance(body, dict) else None)
                    return []
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            log.warning("circle.friends_unavailable", error=str(e))
            return []
        return [str(f["user_id"]) for f in body.get("friends", [])
                if isinstance(f, dict) and isinstance(f.get("user_id"), str)]
