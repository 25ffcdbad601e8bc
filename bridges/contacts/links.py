"""Addresses the bridge hands out: its public web address, invite pages, matrix.to. Pure."""

from __future__ import annotations

from urllib.parse import quote

from mercato.config import MercatoConfig


def bridge_public_url(config: MercatoConfig) -> str:
    """Where people's browsers reach the bridge's pages (invite, import).

    `contacts.public_url` once the configuration has it; until then the bridge's port on
    localhost, as for the commerce appservice's product pages.
    """
    configured = str(getattr(config.contacts, "public_url", "") or "")
    return (configured or f"http://localhost:{config.contacts.port}").rstrip("/")


def invite_url(base: str, code: str) -> str:
    return f"{base}/invite/{quote(code, safe='')}"


def import_url(base: str, token: str) -> str:
    # The token travels in the fragment: browsers never send it with the page request,
    # so it is in no access log; the page's script reads it and sends it as a header.
    return f"{base}/import#token={quote(token, safe='')}"


def matrix_to(user_id: str) -> str:
    return f"https://matrix.to/#/{quote(user_id, safe='@:')}"
