"""Homeserver administration Mercato needs: creating accounts with the shared secret."""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from mercato.logging import get_logger
from mercato.matrix import paths

log = get_logger(__name__)


class HomeserverAdminError(Exception):
    pass


def registration_mac(shared_secret: str, nonce: str, username: str, password: str,
                     admin: bool) -> str:
    """The HMAC Synapse's shared-secret registration expects (sans I/O)."""
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    role = "admin" if admin else "notadmin"
    mac.update(b"\x00".join(part.encode() for part in (nonce, username, password, role)))
    return mac.hexdigest()


async def register_user(session: aiohttp.ClientSession, homeserver_url: str,
                        shared_secret: str, localpart: str, password: str,
                        *, admin: bool = False, displayname: str | None = None) -> bool:
    """Create a password account; returns False if it already existed."""
    url = paths.url(homeserver_url, paths.synapse_path("admin", "v1", "register"))
    async with session.get(url) as resp:
        if resp.status != 200:
            raise HomeserverAdminError(f"shared-secret registration unavailable ({resp.status})")
        nonce = (await resp.json())["nonce"]
    body = {
        "nonce": nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": registration_mac(shared_secret, nonce, localpart, password, admin),
    }
    if displayname:
        body["displayname"] = displayname
    async with session.post(url, json=body) as resp:
        data = await resp.json()
        if resp.status == 200:
            log.info("account.created", user_id=data.get("user_id"))
            return True
        if data.get("errcode") == "M_USER_IN_USE":
            return False
        raise HomeserverAdminError(f"could not create @{localpart}: "
                                   f"{data.get('errcode')} {data.get('error')}")
