"""Merchant accounts: the shop lifecycle and verification (staff and keys: staff.py).

The HTTP API and the bot call these functions; Matrix side effects go through the
`ShopMatrix` port, so this module knows nothing of routes or events. Every change
is written with its audit entry in one database transaction, after the Matrix
side (which is idempotent) succeeded: a failure changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from appservices.commerce import links
from appservices.commerce.errors import CommerceError, Conflict, Forbidden, InvalidInput, NotFound
from appservices.commerce.shops import rules as shop_rules
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action, Role, role_can
from mercato.db import Database, transaction
from mercato.logging import get_logger
from mercato.types import MerchantSlug, RoomID, UserID
from mercato.values import plain_text

log = get_logger(__name__)

MATRIX_USER_ID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.:\[\]-]+$")


class ShopMatrix(Protocol):
    """What the lifecycle needs from Matrix (implemented by the commerce appservice)."""

    mercato_hosts: tuple[str, ...]  # where shop texts may link besides a verified site

    def shop_mxid(self, slug: str) -> UserID: ...

    async def provision_shop(self, merchant: store.Merchant) -> RoomID:
        """Create the shop user, its channel and staff room; returns the staff room ID."""

    async def publish_shop_state(self, merchant: store.Merchant) -> None:
        """Show status and verification in the profile and in every room of the shop."""

    async def invite_staff(self, merchant: store.Merchant, user_id: str) -> str:
        """Invite to the staff room unless already invited or joined; returns what
        happened ("sent", "already_member", "after_approval"), raises StaffInviteFailed."""

    async def remove_staff(self, merchant: store.Merchant, user_id: str) -> None:
        """Take the user out of the staff room (nothing to do if they never got in)."""


class StaffInviteFailed(Exception):
    """The homeserver could not invite a user to a staff room."""

    def __init__(self, reason: str, *, user_unknown: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_unknown = user_unknown  # a user of this server that does not exist


@dataclass(frozen=True)
class StaffChange:
    member: store.StaffMember
    staff_room_invite: str  # "sent" | "already_member" | "after_approval" | "failed"
    warning: str = ""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator, a Matrix user (via the bot), or a shop's API key."""

    kind: str  # "operator" | "user" | "api_key"
    user_id: str = ""
    key_slug: str = ""
    key_role: str = ""
    key_id: str = ""

    @property
    def actor(self) -> str:
        if self.kind == "operator":
            return f"operator{':' + self.user_id if self.user_id else ''}"
        if self.kind == "api_key":
            return f"api_key:{self.key_id}"
        return self.user_id

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


async def get_shop(db: Database, slug: str) -> store.Merchant:
    merchant = await store.get_merchant(db, MerchantSlug(slug))
    if merchant is None:
        raise NotFound(f"There is no shop '{slug}'.")
    return merchant


async def role_of(db: Database, principal: Principal, slug: str) -> str | None:
    if principal.kind == "api_key":
        return principal.key_role if principal.key_slug == slug else None
    if principal.kind == "user":
        return await store.staff_role(db, slug, principal.user_id)
    return None


async def require(db: Database, principal: Principal, slug: str,
                  action: Action) -> store.Merchant:
    """The shop, if the principal may do `action` to it; else a clear refusal."""
    merchant = await get_shop(db, slug)
    if principal.is_operator:
        return merchant
    role = await role_of(db, principal, slug)
    if role is None:
        # Same answer whether or not the shop exists would leak less, but shops are public.
        raise Forbidden(f"You are not staff of the shop '{slug}'.")
    if not role_can(role, action):
        what = action.value.replace("_", " ")
        raise Forbidden(f"Your role in '{slug}' is {role}, which may not {what}.")
    return merchant


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("Only the operator of this Mercato server may do this.")


def validate_user_id(value: Any, field: str = "user_id") -> str:
    if not isinstance(value, str) or not MATRIX_USER_ID.match(value) or len(value) > 255:
        raise InvalidInput(field, "must be a Matrix user ID such as @alice:example.org")
    return value


# -- lifecycle -------------------------------------------------------------------------

async def apply(db: Database, matrix: ShopMatrix, principal: Principal,
                body: Any) -> store.Merchant:
    """A Matrix user applies for a shop; it waits for the operator as 'pending'."""
    # Who may apply is checked before what they sent: a shop key learns nothing more.
    if principal.kind == "user":
        owner = principal.user_id
    elif principal.is_operator:
        owner = validate_user_id(body.get("owner") if isinstance(body, dict) else None,
                                 "owner")
    else:
        raise Forbidden("Apply as a Matrix user (through the shop bot), or as the operator "
                        "naming an 'owner'.")
    application = shop_rules.validate_application(body)
    verified = {m.slug: m.name for m in await store.list_merchants(db) if m.verified}
    imitated = shop_rules.impersonation_of(application.name, verified)
    flag = (f"name looks like the verified shop '{imitated}'" if imitated else "")
    merchant = store.Merchant(
        slug=application.slug, name=application.name, description=application.description,
        website=application.website, mxid=matrix.shop_mxid(application.slug),
        owner_mxid=UserID(owner), status="pending", created_at=store.now_ms(),
        avatar_url=application.avatar_url, flagged_reason=flag)
    links.check_links(shop_texts(merchant), links.policy_for(merchant, matrix.mercato_hosts))
    async with transaction(db) as conn:
        if await store.get_merchant(conn, application.slug):
            raise Conflict(f"The shop name '{application.slug}' is taken; choose another slug.",
                           errcode="MERCATO_SLUG_TAKEN")
        await store.insert_merchant(conn, merchant)
        await store.put_staff(conn, merchant.slug, owner, Role.OWNER, principal.actor)
        await store.audit(conn, merchant.slug, principal.actor, "applied",
                          name=merchant.name, website=merchant.website, owner=owner)
        if flag:
            await store.audit(conn, merchant.slug, "mercato", "flagged", reason=flag)
    log.info("merchant.applied", slug=merchant.slug, owner=owner, flagged=bool(flag))
    return merchant


_TRANSITIONS = {
    "approve": ({"pending", "rejected"}, "approved"),
    "reject": ({"pending"}, "rejected"),
    "suspend": ({"approved"}, "suspended"),
    "reinstate": ({"suspended"}, "approved"),
}


async def change_status(db: Database, matrix: ShopMatrix, principal: Principal, slug: str,
                        decision: str, reason: str = "") -> store.Merchant:
    require_operator(principal)
    if decision not in _TRANSITIONS:
        raise InvalidInput("decision", f"use one of: {', '.join(_TRANSITIONS)}")
    reason = shop_rules.validate_message("reason", reason)
    merchant = await get_shop(db, slug)
    allowed_from, target = _TRANSITIONS[decision]
    if merchant.status not in allowed_from:
        raise Conflict(f"Cannot {decision} the shop '{slug}': it is {merchant.status}.",
                       errcode="MERCATO_WRONG_STATUS")
    staff_room_id = merchant.staff_room_id
    if decision == "approve":
        staff_room_id = await matrix.provision_shop(merchant)
    updated = _replace(merchant, status=target, status_reason=reason,
                       staff_room_id=staff_room_id)
    if target in ("approved", "suspended"):
        await matrix.publish_shop_state(updated)
    async with transaction(db) as conn:
        await store.update_merchant(conn, slug, status=target, status_reason=reason,
                                    staff_room_id=staff_room_id)
        await store.audit(conn, slug, principal.actor, decision, reason=reason)
    log.info("merchant.status", slug=slug, status=target, by=principal.actor)
    return await get_shop(db, slug)


async def verify(db: Database, matrix: ShopMatrix, principal: Principal, slug: str,
                 *, method: str = "operator") -> store.Merchant:
    """Mark an approved shop verified: who verified it, when, for which website."""
    merchant = await get_shop(db, slug)
    if merchant.status != "approved":
        raise Conflict(f"Only an approved shop can be verified; '{slug}' is {merchant.status}.",
                       errcode="MERCATO_WRONG_STATUS")
    if not merchant.website:
        raise InvalidInput("website", "set the shop's website before verifying it")
    verified_by = "operator" if method == "operator" else f"domain proof ({merchant.website})"
    changes = {"verified_at": store.now_ms(), "verified_by": verified_by,
               "verified_website": merchant.website, "verification_method": method}
    await matrix.publish_shop_state(_replace(merchant, **changes))
    async with transaction(db) as conn:
        await store.update_merchant(conn, slug, **changes)
        await store.audit(conn, slug, principal.actor, "verified", method=method,
                          website=merchant.website)
    return await get_shop(db, slug)


async def start_domain_proof(db: Database, principal: Principal, slug: str) -> dict[str, str]:
    merchant = await require(db, principal, slug, Action.EDIT_SHOP)
    if not merchant.website:
        raise InvalidInput("website", "set the shop's website first")
    token = merchant.domain_token or f"mercato-verify-{secrets.token_urlsafe(24)}"
    async with transaction(db) as conn:
        await store.update_merchant(conn, slug, domain_token=token)
        await store.audit(conn, slug, principal.actor, "domain_proof_started")
    return {"token": token, "url": domain_proof_url(merchant.website)}


def domain_proof_url(website: str) -> str:
    host = website.removeprefix("https://").split("/", 1)[0]
    return f"https://{host}/.well-known/mercato-verification"


async def update_shop(db: Database, matrix: ShopMatrix, principal: Principal, slug: str,
                      body: Any) -> store.Merchant:
    merchant = await require(db, principal, slug, Action.EDIT_SHOP)
    if not isinstance(body, dict) or not body:
        raise InvalidInput("body", "send a JSON object with the fields to change")
    validators = {
        "name": shop_rules.validate_name,
        "description": lambda v: plain_text("description", v, shop_rules.MAX_DESCRIPTION),
        "website": shop_rules.validate_website,
        "avatar_url": shop_rules.validate_avatar,
        "welcome_message": lambda v: shop_rules.validate_message("welcome_message", v),
        "away_message": lambda v: shop_rules.validate_message("away_message", v),
        "opening_hours": shop_rules.validate_opening_hours,
        "keyword_replies": shop_rules.validate_keyword_replies,
    }
    unknown = set(body) - set(validators)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], f"cannot be changed; changeable: "
                                               f"{', '.join(validators)}")
    changes: dict[str, Any] = {key: validators[key](value) for key, value in body.items()}
    flag = ""
    if "name" in changes and changes["name"] != merchant.name:
        verified = {m.slug: m.name for m in await store.list_merchants(db)
                    if m.verified and m.slug != slug}
        imitated = shop_rules.impersonation_of(changes["name"], verified)
        if imitated and merchant.status != "pending" and not principal.is_operator:
            # An open shop's name goes live at once, with no operator to review it.
            raise Conflict(f"The name '{changes['name']}' looks like the verified shop "
                           f"'{imitated}'; choose a name buyers cannot mistake.",
                           errcode="MERCATO_NAME_IMITATES")
        flag = f"name looks like the verified shop '{imitated}'" if imitated else ""
        changes["flagged_reason"] = flag  # the flag is about the current name
    if "website" in changes and changes["website"] != merchant.website:
        # A new website is not the one that was verified.
        changes.update(verified_at=None, verified_by=None, verified_website=None,
                       verification_method=None, domain_token=None)
    updated = _replace(merchant, **changes)
    if set(changes) & {"description", "welcome_message", "away_message", "keyword_replies",
                       "website"}:
        # All of them: a new website ends the verification their links may rely on.
        links.check_links(shop_texts(updated), links.policy_for(updated, matrix.mercato_hosts))
    if merchant.status in ("approved", "suspended") and (
            {"name", "avatar_url", "description", "website"} & set(changes)):
        await matrix.publish_shop_state(updated)
    async with transaction(db) as conn:
        await store.update_merchant(conn, slug, **changes)
        await store.audit(conn, slug, principal.actor, "updated", fields=sorted(changes))
        if flag:
            await store.audit(conn, slug, "mercato", "flagged", reason=flag)
    return await get_shop(db, slug)


def shop_texts(merchant: store.Merchant) -> list[str]:
    """What buyers read of a shop besides its name: its description and auto-replies."""
    replies = json.loads(merchant.keyword_replies or "[]")
    return [merchant.description, merchant.welcome_message, merchant.away_message,
            *(str(item.get("reply", "")) for item in replies)]


def _replace(merchant: store.Merchant, **changes: Any) -> store.Merchant:
    from dataclasses import replace

    return replace(merchant, **changes)


async def check_domain_proof(db: Database, matrix: ShopMatrix, principal: Principal, slug: str,
                             fetch: Any) -> store.Merchant:
    """Fetch https://<website>/.well-known/mercato-verification; verify if it holds the token.

    `fetch(url) -> str` does the HTTP request (injected, so this stays testable).
    """
    merchant = await get_shop(db, slug)
    if not principal.is_operator:
        merchant = await require(db, principal, slug, Action.EDIT_SHOP)
    if not merchant.domain_token or not merchant.website:
        raise Conflict("Start the domain proof first; it gives you the token to publish.",
                       errcode="MERCATO_NO_DOMAIN_PROOF")
    url = domain_proof_url(merchant.website)
    try:
        published = await fetch(url)
    except Exception as e:
        async with transaction(db) as conn:
            await store.audit(conn, slug, principal.actor, "domain_proof_failed", url=url,
                              reason="unreachable", error=str(e)[:300])
        raise CommerceError(f"Could not read {url}: {e}. Publish the token there over HTTPS "
                            "and try again.", errcode="MERCATO_DOMAIN_PROOF_UNREACHABLE",
                            status=422) from None
    if merchant.domain_token not in published.split():
        async with transaction(db) as conn:
            await store.audit(conn, slug, principal.actor, "domain_proof_failed", url=url,
                              reason="mismatch")
        raise CommerceError(f"{url} does not contain the token {merchant.domain_token}.",
                            errcode="MERCATO_DOMAIN_PROOF_MISMATCH", status=422)
    return await verify(db, matrix, principal, slug, method="domain")
