"""What the shop bot answers to a file sent to it on its own, with no command. Pure.

A file is useful to the bot only with a command: `products import` takes a catalog
CSV, `campaign draft` an image for the post. Sent alone in a direct chat, a file gets
an answer saying which command takes it, for this sender (a shop's editor, its other
staff, or a buyer), or where it belongs instead: address books go to the contacts bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from bots.shopbot.context import ALLOWED_ROLES, Attachment, Need
from mercato.commands import shorten

FileKind = Literal["address_book", "table", "image", "other"]

VCARD_NAMES = (".vcf", ".vcard")
VCARD_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory"})
TABLE_NAMES = (".csv", ".tsv", ".txt")
TABLE_TYPES = frozenset({"text/csv", "application/csv", "text/comma-separated-values",
                         "application/vnd.ms-excel", "text/tab-separated-values",
                         "text/plain"})


def kind_of(attachment: Attachment) -> FileKind:
    """What a file looks like from its name and type (the bot does not download it)."""
    name, mimetype = attachment.filename.lower(), attachment.mimetype.lower()
    if name.endswith(VCARD_NAMES) or mimetype in VCARD_TYPES:
        return "address_book"
    if mimetype.startswith("image/"):
        return "image"
    if name.endswith(TABLE_NAMES) or mimetype in TABLE_TYPES:
        return "table"
    return "other"


def file_answer(attachment: Attachment, shops: Sequence[dict[str, str]] | None, *,
                prefix: str, contacts_bot: str) -> str:
    """The answer to a file sent alone; `shops` are the sender's (None: not known)."""
    name = f"“{shorten(attachment.filename)}”"
    p = prefix
    contacts = (f"send it to the contacts bot, {contacts_bot}, in a direct chat, and it tells "
                "you who of your contacts is on Mercato.")
    editing = [s["slug"] for s in shops or () if s.get("role") in ALLOWED_ROLES[Need.EDITOR]]
    kind = kind_of(attachment)
    if kind == "address_book":
        return f"{name} is an address book, which I do not read: {contacts}"
    if kind == "table":
        if shops is None or editing:
            shop = "" if len(editing) < 2 else f" --shop {'|'.join(editing)}"
            return (f"To import {name} into your shop's catalog, reply to it with "
                    f"{p}products import{shop} (add --currency EUR if the file has no "
                    f"currency column). If it is an address book instead, {contacts}")
        if shops:
            slug, role = shops[0]["slug"], shops[0]["role"]
            return (f"If {name} is a catalog: importing products is for the owners and "
                    f"editors of {slug}, and your role there is {role}; ask one of them to "
                    f"send it to me. If it is an address book, {contacts}")
        return (f"If {name} is your address book, {contacts} I import product catalogs, for "
                f"shops' staff; type {p}help for what I do.")
    if kind == "image" and (shops is None or editing):
        return (f"To post this image in a campaign, reply to it with {p}campaign draft "
                f"<kind> <title…> (see {p}help campaign draft).")
    return (f"I cannot do anything with {name} on its own. I take CSV files of products "
            f"({p}products import) and images for campaign posts, from a shop's owners and "
            f"editors; address books go to the contacts bot, {contacts_bot}. Type {p}help "
            "for what I do.")
