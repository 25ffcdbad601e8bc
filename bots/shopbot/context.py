"""What every shop bot command gets: who asked, the API for them, the Matrix side, the registry.

The command modules (`commands`, `catalog_commands`, `campaign_commands`,
`buyer_commands`, `order_commands`) declare their commands on `registry`; `authorize`
picks the shop a command acts on and refuses early, with a clear sentence, what the role cannot do.
The API checks again: the bot's check only makes the answer sooner and clearer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from bots.shopbot import replies
from bots.shopbot.api import UserApi
from mercato.commands import Command, CommandError, Context, Registry, Reply, option, shorten
from mercato.types import MerchantSlug

ROLES = ("owner", "editor", "support", "analyst")


class Need(StrEnum):
    """Who may run a command, in the shop it names (or the user's only shop)."""

    STAFF = "staff"  # any role
    OWNER = "owner"
    EDITOR = "editor"  # owners and editors: products and campaigns
    STATS = "stats"  # owners, editors and analysts
    ORDERS = "orders"  # owners and support: the API's manage_orders permission
    TILL = "till"  # owners, editors and support: the API's redeem_coupons permission


ALLOWED_ROLES: dict[Need, frozenset[str]] = {
    Need.STAFF: frozenset(ROLES),
    Need.OWNER: frozenset({"owner"}),
    Need.EDITOR: frozenset({"owner", "editor"}),
    Need.STATS: frozenset({"owner", "editor", "analyst"}),
    Need.ORDERS: frozenset({"owner", "support"}),
    Need.TILL: frozenset({"owner", "editor", "support"}),
}
WHO = {Need.STAFF: "the shop's staff (any role)", Need.OWNER: "the shop's owners",
       Need.EDITOR: "the shop's owners and editors", Need.STATS: "owners, editors and analysts",
       Need.ORDERS: "the shop's owners and support staff",
       Need.TILL: "the shop's owners, editors and support staff"}


FILE_MSGTYPES = ("m.file", "m.image", "m.video", "m.audio")


@dataclass(frozen=True)
class Attachment:
    """A file a user sent: where it is, and its key when the room is encrypted."""

    mxc: str
    filename: str
    mimetype: str = ""
    size: int | None = None
    encryption: dict[str, Any] | None = None  # the `file` object of an encrypted upload

    @classmethod
    def of(cls, content: dict[str, Any]) -> Attachment | None:
        """The file of an m.file/m.image/m.video/m.audio message, or None."""
        if content.get("msgtype") not in FILE_MSGTYPES:
            return None
        info = content.get("info")
        info = info if isinstance(info, dict) else {}
        encrypted = content.get("file")
        encrypted = encrypted if isinstance(encrypted, dict) else None
        mxc = (encrypted or {}).get("url") or content.get("url")
        if not isinstance(mxc, str) or not mxc.startswith("mxc://"):
            return None
        name = content.get("filename") or content.get("body") or "file"
        size = info.get("size")
        return cls(mxc=mxc, filename=str(name), mimetype=str(info.get("mimetype") or ""),
                   size=size if isinstance(size, int) else None, encryption=encrypted)

    @property
    def shown_name(self) -> str:
        """The file's name for a reply: a name can be as long as a message."""
        return shorten(self.filename)


class BotMatrix(Protocol):
    """What commands may ask of the bot's Matrix side (a fake in unit tests)."""

    async def download(self, attachment: Attachment) -> bytes: ...

    async def attachment_of(self, room_id: str, event_id: str) -> Attachment | None: ...

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        """The room's m.room.power_levels content ({} when it has none), its creators
        listed at the top level where the room version makes them all-powerful."""
        ...


@dataclass(frozen=True)
class CardReply(Reply):
    """Answer with this message content as is (a product card), not with a notice."""

    content: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Question(Reply):
    """Ask before doing: the bot seeds the reactions and accepts a typed yes/no too.

    `declined` is what the bot says when the answer is no.
    """

    declined: str = "OK, nothing was done."


@dataclass(frozen=True)
class LeaveRoom(Reply):
    """Say this, then leave the room (`leave`)."""


@dataclass(frozen=True)
class AwaitFile(Reply):
    """The command needs a file: the next file the user sends here completes it."""


@dataclass
class ShopContext(Context):
    api: UserApi | None = None
    matrix: BotMatrix | None = None
    # Links to product pages start with this (the commerce service's public address).
    public_url: str = ""
    # A file sent with the command (as its caption), or after the bot asked for one.
    attachment: Attachment | None = None
    # The event the command replies to, if any (to take a file from it).
    replied_to: str | None = None
    # True when the user already said yes to the bot's question about this command.
    confirmed: bool = False
    # Filled by `authorize` for commands that act on a shop.
    role: str = ""
    shops: list[dict[str, str]] = field(default_factory=list)

    @property
    def commerce(self) -> UserApi:
        if self.api is None:
            raise CommandError("The shop service is not configured; tell the operator.")
        return self.api

    @property
    def bot_matrix(self) -> BotMatrix:
        if self.matrix is None:
            raise CommandError("This command needs the bot's Matrix connection, which is not "
                               "available here.")
        return self.matrix

    async def file(self) -> Attachment | None:
        """The file sent with the command, or the one the command replies to."""
        if self.attachment is not None:
            return self.attachment
        if self.replied_to and self.matrix is not None:
            return await self.matrix.attachment_of(self.room_id, self.replied_to)
        return None


def _describe(need: Any) -> str:
    who = WHO.get(need, WHO[Need.STAFF])
    return (f"For {who}. If you work for several shops, add --shop <slug>; with one shop "
            "you can leave it out.")


async def authorize(ctx: ShopContext, command: Command, values: dict[str, Any]
                    ) -> dict[str, Any]:
    """Pick the shop (the only one, or --shop) and refuse early when the role cannot."""
    p = ctx.prefix
    ctx.shops = await ctx.commerce.my_shops()
    roles = {s["slug"]: s["role"] for s in ctx.shops}
    slug = values.get("shop")
    if not slug:
        if not roles:
            raise CommandError(
                "You do not work for any shop. Open one with "
                f"{p}shop apply <slug> <name…>, or ask a shop's owner to add you "
                f"({p}staff add).")
        if len(roles) > 1:
            example = f"{p}{command.path} … --shop {next(iter(roles))}"
            raise CommandError(f"You work for several shops ({', '.join(roles)}); say which "
                               f"one with --shop, e.g. {example}")
        slug = next(iter(roles))
    role = roles.get(slug)
    if role is None:
        raise CommandError(f"You are not staff of the shop '{slug}', so you cannot use "
                           f"{p}{command.path} there."
                           + (f" Your shops: {', '.join(roles)}." if roles else ""))
    need = Need(command.permission)
    if role not in ALLOWED_ROLES[need]:
        if need == Need.OWNER:
            raise CommandError(f"Only an owner of '{slug}' can use {p}{command.path}; your "
                               "role there is " + role + ". Ask an owner.")
        raise CommandError(f"{p}{command.path} is for {WHO[need]} of '{slug}'; your role "
                           f"there is {role}. Ask an owner to change it ({p}staff add).")
    ctx.role = role
    return {**values, "shop": MerchantSlug(slug)}


registry: Registry[ShopContext] = Registry(
    prefix="!", bot_name="me", authorize=authorize, describe_permission=_describe)

SHOP_OPTION = option("shop", parser=replies.parse_slug, metavar="slug",
                     help="which of your shops")
YES_OPTION = option("yes", flag=True, help="do it without asking first")
