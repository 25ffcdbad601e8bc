"""Addresses the bridge hands out: its public web address, invite pages, matrix.to. Pure."""

from __future__ import annotations

from urllib.parse import quote

from bridges.contacts.config import ContactsConfig
from mercato.config import MercatoConfig


def bridge_public_url(config: MercatoConfig) -> str:
    """Where people's browsers reach the bridge's pages (invite, import)."""
    return ContactsConfig.of(config).site_url


def invite_url(base: str, code: str) -> str:
    return f"{base}/invite/{quote(code, safe='')}"


def import_url(base: str, token: str) -> str:
    # The token travels in the fragment: browsers never send it with the page request,
    # so it is in no access log; the page's script reads it and sends it as a header.
    return f"{base}/import#token={quote(token, safe='')}"


def matrix_to(user_id: str) -> str:
    return f"https://matrix.to/#/{quote(user_id, safe='@:')}"
