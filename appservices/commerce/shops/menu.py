"""The menu a shop keeps under every chat: what it says, the links a shop may add, and the
storefront widget its channel carries. Pure: the Matrix side is menu_delivery.py.

Matrix has no menu under a chat as WeChat or LINE have; every client shows pinned
messages, so each buyer's DM with a shop pins one menu message (the storefront, the
buyer's orders and coupons, and how to reach a person) and the channel pins a link to
the storefront. When what the menu shows changes, the message is edited in place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appservices.commerce import links
from appservices.commerce.errors import InvalidInput
from mercato.matrix.html import sanitize_html
from mercato.templates import template_environment
from mercato.values import plain_text

TEMPLATES = template_environment(Path(__file__).parent.parent / "templates")
MENU_KEY = "org.mercato.menu"  # in a menu message's content: {shop, kind, version}
MAX_LINKS = 5
LABEL_LIMIT = 40
# The storefront as a room widget (Element's widget state event): one per channel.
WIDGET_EVENT = "im.vector.modular.widgets"
WIDGET_LAYOUT_EVENT = "io.element.widgets.layout"
WIDGET_ID = "mercato_storefront"
PINNED_EVENT = "m.room.pinned_events"


@dataclass(frozen=True)
class MenuLink:
    label: str
    url: str


@dataclass(frozen=True)
class Menu:
    """What a shop's menu shows."""

    slug: str
    shop_name: str
    verified: bool
    storefront_url: str
    orders_url: str  # empty: the storefront has no orders page; the `orders` command
    extra: tuple[MenuLink, ...] = ()


def storefront_url(site_url: str, slug: str) -> str:
    return f"{site_url.rstrip('/')}/s/{quote(slug)}"


def widget_url(site_url: str, slug: str) -> str:
    """The storefront as a room widget. Element adds `widgetId` and `parentUrl` when it
    opens it, which the page's widget sign-in reads (web/assets/widget-signin.js)."""
    return storefront_url(site_url, slug) + "?widget=1"


def parse_links(value: Any, policy: links.LinkPolicy) -> tuple[MenuLink, ...]:
    """The extra links a shop puts in its menu: at most five {label, url}, each an https
    address the link rules allow (Mercato's pages, the shop's verified site)."""
    if not isinstance(value, list):
        raise InvalidInput("links", "send a list of {\"label\": …, \"url\": \"https://…\"}")
    if len(value) > MAX_LINKS:
        raise InvalidInput("links", f"has {len(value)} links; a menu holds at most {MAX_LINKS}")
    found: list[MenuLink] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInput(f"links[{i}]", "must be {\"label\": …, \"url\": \"https://…\"}")
        label = plain_text(f"links[{i}].label", item.get("label"), LABEL_LIMIT, required=True)
        url = links.clean_https_url(f"links[{i}].url", item.get("url"))
        if not url:
            raise InvalidInput(f"links[{i}].url", "is missing; give an https:// address")
        # The label is shown too: it may not carry a link of its own.
        links.check_links([label, url], policy)
        found.append(MenuLink(label=label, url=url))
    return tuple(found)


def links_json(extra: tuple[MenuLink, ...]) -> str:
    return json.dumps([{"label": link.label, "url": link.url} for link in extra])


def links_from_json(text: str) -> tuple[MenuLink, ...]:
    return tuple(MenuLink(label=item["label"], url=item["url"]) for item in json.loads(text))


def _rendered(template: str, menu: Menu) -> dict[str, str]:
    values = {"m": menu}
    body = TEMPLATES.get_template(f"{template}.txt.j2").render(values).strip()
    html = sanitize_html(TEMPLATES.get_template(f"{template}.html.j2").render(values).strip())
    return {"body": body, "formatted_body": html}


def dm_menu_content(menu: Menu, version: int) -> dict[str, Any]:
    """The menu message pinned in a buyer's DM with the shop."""
    text = _rendered("menu", menu)
    return {"msgtype": "m.notice", "body": text["body"], "format": "org.matrix.custom.html",
            "formatted_body": text["formatted_body"],
            MENU_KEY: {"shop": menu.slug, "kind": "dm", "version": version}}


def channel_content(menu: Menu, version: int) -> dict[str, Any]:
    """The storefront link pinned in the shop's channel."""
    text = _rendered("storefront_link", menu)
    return {"msgtype": "m.text", "body": text["body"], "format": "org.matrix.custom.html",
            "formatted_body": text["formatted_body"],
            MENU_KEY: {"shop": menu.slug, "kind": "channel", "version": version}}


def content_for(kind: str, menu: Menu, version: int) -> dict[str, Any]:
    return dm_menu_content(menu, version) if kind == "dm" else channel_content(menu, version)


def digest(menu: Menu) -> str:
    """What the menu shows, as a short fingerprint: the same menu, the same digest."""
    shown = [dm_menu_content(menu, 0), channel_content(menu, 0)]
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:32]


def edit_content(original_event_id: str, new_content: dict[str, Any]) -> dict[str, Any]:
    """An edit (m.replace) of a menu message: clients show the new content in its place."""
    return {"msgtype": new_content["msgtype"], "body": "* " + new_content["body"],
            "format": "org.matrix.custom.html",
            "formatted_body": "* " + new_content["formatted_body"],
            "m.new_content": new_content,
            "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id},
            MENU_KEY: new_content[MENU_KEY]}


def widget_content(menu: Menu, site_url: str, shop_mxid: str) -> dict[str, Any]:
    """The channel's storefront widget, as Element reads widget state events."""
    return {"type": "m.custom", "id": WIDGET_ID, "name": f"{menu.shop_name} — shop",
            "url": widget_url(site_url, menu.slug), "creatorUserId": shop_mxid,
            "waitForIframeLoad": True, "data": {"title": "Browse and order", "slug": menu.slug}}


def widget_layout() -> dict[str, Any]:
    """Element's layout event: the storefront shown at the top of the channel."""
    return {"widgets": {WIDGET_ID: {"container": "top", "index": 0, "width": 100,
                                    "height": 50}}}


def can_pin(state: list[dict[str, Any]], user_id: str) -> bool:
    """Whether `user_id` may set m.room.pinned_events in a room with this state: its power
    level (room creators unlimited from room version 12) against the event's level."""
    create = next((e for e in state if e.get("type") == "m.room.create"), {})
    content = create.get("content") or {}
    version = str(content.get("room_version", "1"))
    privileged = (version.isdigit() and int(version) >= 12) or version.startswith(
        "org.matrix.hydra.")
    if privileged and (create.get("sender") == user_id
                       or user_id in (content.get("additional_creators") or [])):
        return True
    levels = next((e.get("content") or {} for e in state
                   if e.get("type") == "m.room.power_levels"), None)
    if levels is None:  # no power levels: the creator may do anything, others nothing
        return create.get("sender") == user_id or content.get("creator") == user_id
    needed = (levels.get("events") or {}).get(PINNED_EVENT, levels.get("state_default", 50))
    have = (levels.get("users") or {}).get(user_id, levels.get("users_default", 0))
    return int(have) >= int(needed)


def pinned_with(current: Any, event_id: str) -> list[str] | None:
    """The pinned list with the menu added at the top, or None if it is pinned already
    (what others pinned stays)."""
    pinned = [e for e in (current if isinstance(current, list) else []) if isinstance(e, str)]
    if event_id in pinned:
        return None
    return [event_id, *pinned]
