"""The contacts bot's commands, declared once; `help` and usage errors are generated.

Replies never repeat a phone number or an address: the bot's own messages come back
to it through the homeserver, and the bridge keeps no identifier in clear.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bridges.contacts import summary, verification
from bridges.contacts.db import store
from bridges.contacts.discovery import Discovery, QuotaExceeded
from bridges.contacts.importers import Medium
from bridges.contacts.importers.model import mask_email, mask_phone
from bridges.contacts.links import import_url, invite_url, matrix_to
from bridges.contacts.normalise import (
    InvalidIdentifier,
    normalise_email,
    normalise_phone,
    parse_region,
)
from bridges.contacts.verification import CodeSender
from mercato.commands import (
    ArgumentError,
    CommandError,
    Context,
    Registry,
    Reply,
    argument,
    matrix_user_id,
    one_of,
)
from mercato.db import Database


@dataclass
class ContactsContext(Context):
    """Who asked, and what the commands work with."""

    db: Database | None = None
    discovery: Discovery | None = None
    default_region: str = ""
    # Where browsers reach the bridge's pages (links.bridge_public_url).
    public_url: str = "http://localhost:8091"
    # Invites the sender's opt-in converted: the handler tells their inviters.
    converted: list[store.Invite] = field(default_factory=list)
    # Set by a command whose text held a phone number or address, so it can be scrubbed.
    held_identifier: bool = False
    # How opt-ins are verified: the homeserver's verified third-party IDs of a user, and
    # the bridge's own codes. Without them, an identifier cannot be verified here.
    homeserver_verified: Callable[[str], Awaitable[set[tuple[Medium, str]]]] | None = None
    codes: CodeSender | None = None
    # Opens chats between the sender and these people (Matrix ID → room), each added to
    # the sender's Contacts space; without it, `dm` answers with links.
    open_chats: Callable[[list[str]], Awaitable[dict[str, str]]] | None = None
    server_name: str = "localhost"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("no database in the command context")
        return self.db

    @property
    def finder(self) -> Discovery:
        if self.discovery is None:
            raise RuntimeError("no discovery in the command context")
        return self.discovery


registry: Registry[ContactsContext] = Registry(prefix="!", bot_name="the contacts bot")


async def user_region(db: Database, user_id: str) -> str | None:
    return await db.fetchval("SELECT default_region FROM bridge_user WHERE user_id=$1", user_id)


async def set_user_region(db: Database, user_id: str, region: str | None) -> None:
    await db.execute(
        "INSERT INTO bridge_user (user_id, default_region) VALUES ($1, $2)"
        " ON CONFLICT (user_id) DO UPDATE SET default_region=excluded.default_region",
        user_id, region)


async def region_for(ctx: ContactsContext) -> str | None:
    return await user_region(ctx.database, ctx.sender) or ctx.default_region or None


# -- being found --------------------------------------------------------------------------

findable = registry.group("findable", default="status",
                          help="let people who have your phone number or email find you here")


async def _opt_in(ctx: ContactsContext, medium: Medium, value: str, what: str) -> str:
    """Findable at once if the homeserver verified it; else a code to verify it."""
    owner = await ctx.finder.owner(medium, value)
    if owner is not None and owner != ctx.sender:
        raise CommandError(f"Another account has already verified {what}, so I did not add "
                           "it. If it is yours, ask the operator of this server.")
    if owner == ctx.sender:
        return f"You could already be found by {what}." + await _converted(
            ctx, medium, ctx.finder.hasher.digest(medium, value))
    if ctx.homeserver_verified and (medium, value) in await ctx.homeserver_verified(ctx.sender):
        outcome = await ctx.finder.opt_in(ctx.sender, medium, value)
        return _verified_reply(outcome, what, "your homeserver account lists it as verified") \
            + await _converted(ctx, medium, ctx.finder.hasher.digest(medium, value))
    if ctx.codes is None or not ctx.codes.can_send(medium):
        raise CommandError(verification.not_configured(medium))
    try:
        code = await ctx.finder.new_code(ctx.sender, medium, value)
    except QuotaExceeded:
        raise CommandError("I have sent as many codes today as a day allows (to you, or to "
                           "that number or address); try again tomorrow.") from None
    try:
        await ctx.codes.send(medium, value, code)
    except verification.SendFailed as e:
        await ctx.finder.forget_code(ctx.sender, medium, value)
        raise CommandError(f"I could not send you a code: {e}. Nothing was kept; try again "
                           "in a while.") from None
    by = "an SMS" if medium is Medium.PHONE else "an email"
    minutes = verification.CODE_TTL_MS // 60_000
    return (f"I sent {by} with a {verification.CODE_DIGITS}-digit code to {what}. Type "
            f"`verify` and the code (for example `verify 123456`) within {minutes} minutes; "
            "until then no one can find you by it.")


def _verified_reply(outcome: str, what: str, how: str) -> str:
    if outcome == "taken":
        raise CommandError(f"Another account has already verified {what}, so I did not add "
                           "it. If it is yours, ask the operator of this server.")
    if outcome == "already":
        return f"You could already be found by {what}."
    return (f"Done: {how}, and people who have {what} in their contacts can now find you "
            "here. Type `findable off` to stop.")


@findable.command("phone", help="be found by your phone number", direct_only=True,
                  examples=("findable phone +4741234567",))
@argument("number", rest=True, help="your number, best written with +country code")
async def findable_phone(ctx: ContactsContext, number: str) -> str:
    ctx.held_identifier = True
    try:
        e164 = normalise_phone(number, await region_for(ctx))
    except InvalidIdentifier as e:
        raise CommandError(f"I cannot use that number: {e}.") from None
    return await _opt_in(ctx, Medium.PHONE, e164, f"your number ({mask_phone(e164)})")


@findable.command("email", help="be found by your email address", direct_only=True,
                  examples=("findable email me@example.org",))
@argument("address", help="your email address")
async def findable_email(ctx: ContactsContext, address: str) -> str:
    ctx.held_identifier = True
    try:
        email = normalise_email(address)
    except InvalidIdentifier as e:
        raise CommandError(f"I cannot use that address: {e}.") from None
    return await _opt_in(ctx, Medium.EMAIL, email, f"your address ({mask_email(email)})")


def _code(value: str) -> str:
    code = "".join(ch for ch in value if ch not in " -")
    if not (code.isascii() and code.isdigit() and len(code) == verification.CODE_DIGITS):
        raise ArgumentError(f"the code has {verification.CODE_DIGITS} digits, such as 123456")
    return code


@registry.command("verify", help="confirm your phone number or email with the code I sent",
                  direct_only=True, examples=("verify 123456",))
@argument("code", parser=_code, rest=True, help="the code from the SMS or email")
async def verify(ctx: ContactsContext, code: str) -> str:
    verified = await ctx.finder.check_code(ctx.sender, code)
    if verified is None:
        left = await ctx.finder.tries_left(ctx.sender)
        if left:
            raise CommandError(f"That code is not right. You can try {left} more time(s), or "
                               "type `findable phone …` or `findable email …` again for a "
                               "new code.")
        raise CommandError("I have no code waiting for that (it expired, or was tried too "
                           "often). Type `findable phone …` or `findable email …` for a new "
                           "one.")
    what = "your number" if verified.medium is Medium.PHONE else "your address"
    return _verified_reply(verified.outcome, what, f"{what} is verified") + \
        await _converted(ctx, verified.medium, verified.digest)


async def _converted(ctx: ContactsContext, medium: Medium, digest: str) -> str:
    """Convert the invites of an identifier the sender is now findable by."""
    ctx.converted = await ctx.finder.convert_invites_of(ctx.sender, medium, digest)
    inviters = list(dict.fromkeys(invite.inviter for invite in ctx.converted))
    if not inviters:
        return ""
    links = "\n".join(f"• {who} — {matrix_to(who)}" for who in inviters)
    return (f"\n\nYou were invited here by:\n{links}\nI told them you joined and opened a "
            "chat between you: look for the invitation (or tap a link and choose “Message”).")


@findable.command("off", help="stop being findable (by everything, or by phone or email)",
                  examples=("findable off", "findable off phone"))
@argument("what", parser=one_of("all", "phone", "email"), required=False)
async def findable_off(ctx: ContactsContext, what: str | None) -> str:
    medium = {"phone": Medium.PHONE, "email": Medium.EMAIL}.get(what or "all")
    removed = await ctx.finder.opt_out(ctx.sender, medium)
    if not removed:
        return "You were not findable by " + ("anything" if medium is None else what or "") + "."
    return f"Done: I forgot {removed} of your keyed identifiers. No one can find you by them."


@findable.command("status", help="what people can find you by")
async def findable_status(ctx: ContactsContext) -> str:
    counts = await ctx.finder.status(ctx.sender)
    unverified = sum((await store.findable_counts(ctx.database, ctx.sender,
                                                  verified=False)).values())
    waiting = ("" if not unverified else
               f" {unverified} identifier(s) you opted in with before I verified them "
               "cannot be found until you verify them: type `findable phone …` or "
               "`findable email …` again.")
    if not counts:
        return ("No one can find you by a phone number or email. To change that, type "
                "`findable phone +4741234567` or `findable email me@example.org`." + waiting)
    parts = []
    if counts.get(Medium.PHONE.value):
        parts.append(f"{counts[Medium.PHONE.value]} phone number(s)")
    if counts.get(Medium.EMAIL.value):
        parts.append(f"{counts[Medium.EMAIL.value]} email address(es)")
    return (f"People who have them in their contacts can find you by {' and '.join(parts)} "
            "(I keep only keyed hashes, so I cannot show them). Type `findable off` to stop."
            + waiting)


# -- region -------------------------------------------------------------------------------

def _region(value: str) -> str:
    if value.strip().lower() in ("none", "off", "-"):
        return ""
    try:
        return parse_region(value)
    except InvalidIdentifier as e:
        raise ArgumentError(str(e)) from None


@registry.command("region", help="the country of numbers written without +country code",
                  examples=("region NO", "region off"))
@argument("code", parser=_region, required=False, help="two letters such as NO, DE or US")
async def region(ctx: ContactsContext, code: str | None) -> str:
    if code is None:
        current = await region_for(ctx)
        return (f"Numbers without +country code are read as {current} numbers."
                if current else "You have not set a region: numbers need their +country code. "
                "Type `region NO` (your country's code) to set one.")
    await set_user_region(ctx.database, ctx.sender, code or None)
    return (f"Numbers without +country code are now read as {code} numbers." if code
            else "Region cleared: numbers need their +country code.")


# -- results ------------------------------------------------------------------------------

def _who(value: str) -> str:
    return "all" if value.strip().lower() == "all" else matrix_user_id(value)


@registry.command("dm", help="open chats with the people your last import found",
                  examples=("dm all", "dm @ola:example.org"))
@argument("who", parser=_who, help="all, or a Matrix ID from the list")
async def dm(ctx: ContactsContext, who: str) -> Reply:
    found = await store.latest_summary(ctx.database, ctx.sender, ctx.room_id)
    if found is None:
        raise CommandError("Send me a contacts file (.vcf or .csv) first; then I can tell you "
                           "who of them is here.")
    if who != "all" and who not in found.matches:
        raise CommandError(f"{who} was not among the people your last import found.")
    people = found.matches if who == "all" else [who]
    if ctx.open_chats is None:
        return summary.chat_links(people)
    return summary.opened_chats(await ctx.open_chats(people), len(people), ctx.server_name)


IMPORT_TOKEN_TTL_MS = 3600 * 1000


@registry.command("import", help="how to find your contacts here, and a private import page")
async def import_help(ctx: ContactsContext) -> str:
    if not ctx.direct or ctx.db is None:
        return IMPORT_HELP
    # A short-lived identity-service token for the in-browser page, stored as its SHA-256.
    token = secrets.token_urlsafe(32)
    await store.add_token(ctx.database, hashlib.sha256(token.encode()).hexdigest(),
                          ctx.sender, expires_at=store.now_ms() + IMPORT_TOKEN_TTL_MS)
    return (f"{IMPORT_HELP}\n\nOr, so that your contacts never leave your device, open "
            f"{import_url(ctx.public_url, token)} (valid for an hour, for you alone: do not "
            "share it). The page reads the file in your browser and sends me only hashes.")


# -- invites ------------------------------------------------------------------------------

INVITES_PER_DAY = 50


def _invitee(value: str, region: str | None) -> tuple[Medium, str]:
    value = value.strip()
    try:
        if "@" in value:
            return Medium.EMAIL, normalise_email(value)
        return Medium.PHONE, normalise_phone(value, region)
    except InvalidIdentifier as e:
        raise CommandError(f"I cannot use that: {e}. Type `invite` alone for a link that "
                           "names no one.") from None


@registry.command("invite", help="a personal invite link for someone who is not here yet",
                  direct_only=True,
                  examples=("invite", "invite +4712345678", "invite kari@example.org"))
@argument("who", rest=True, required=False,
          help="their phone number or email: I tell you when they join and opt in with it")
async def invite(ctx: ContactsContext, who: str | None) -> str:
    db = ctx.database
    since = store.now_ms() - 24 * 3600 * 1000
    if await store.invites_since(db, ctx.sender, since) >= INVITES_PER_DAY:
        raise CommandError(f"You have made {INVITES_PER_DAY} invite links today, the most a "
                           "day allows. Links you made still work.")
    medium: Medium | None = None
    digest: str | None = None
    if who and who.strip():
        ctx.held_identifier = True
        medium, value = _invitee(who, await region_for(ctx))
        digest = ctx.finder.hasher.digest(medium, value)
        owner = await store.findable_owner(db, digest)
        if owner is not None:
            try:
                await ctx.finder.charge(ctx.sender, 1)  # it answers like a lookup
            except QuotaExceeded:
                raise CommandError("You have looked up as many numbers and addresses today "
                                   "as a day allows; try again tomorrow.") from None
            if owner == ctx.sender:
                raise CommandError("That is yours: people can already find you by it.")
            return (f"They are already here: {owner} — {matrix_to(owner)}. Tap the link and "
                    "choose “Message” to start a chat.")
    code = secrets.token_urlsafe(9)
    await store.add_invite(db, code, ctx.sender, ctx.room_id, digest,
                           medium.value if medium else None)
    link = invite_url(ctx.public_url, code)
    if medium is None:
        after = ("This link names no one, so I cannot tell you who joined with it; type "
                 "`invite +47…` or `invite name@example.org` for one that can.")
    else:
        word, what = ("phone", "number") if medium is Medium.PHONE else ("email", "address")
        after = (f"When they join and type `findable {word}` with that {what}, I "
                 "tell you and give you both a link to start a chat. I keep only a keyed "
                 f"hash of the {what}.")
    return (f"Your invite link: {link}\nSend it to them however you like (it shows a QR "
            f"code too). It says you invited them and how to join. {after}")


IMPORT_HELP = (
    "Send me your contacts as a file in this chat: a vCard (.vcf, from your phone or mail "
    "app) or a CSV (Google Contacts, Outlook, or one with the columns name,phone,email). "
    "I tell you who of them is on Mercato — only people who chose to be found — and what I "
    "could not read. I keep nothing of the file: not the numbers, not the names. Numbers "
    "without +country code are read with your region (type `region NO`).")

