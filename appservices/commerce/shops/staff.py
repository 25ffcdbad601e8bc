"""Who acts for a shop: its staff (with their roles and the staff room's invites) and the
API keys its back-end uses. Every change is written with its audit entry in one
transaction, after the Matrix side (which is idempotent) succeeded.
"""

from __future__ import annotations

from typing import Any

from appservices.commerce.errors import Conflict, InvalidInput, NotFound
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import (
    Principal,
    ShopMatrix,
    StaffChange,
    StaffInviteFailed,
    require,
    validate_user_id,
)
from appservices.commerce.shops.roles import Action, Role, parse_role
from mercato.db import Database, transaction
from mercato.values import json_kind, plain_text


def _role_text(role: Any) -> str:
    if role is not None and not isinstance(role, str):
        raise InvalidInput("role", f"must be text such as \"editor\", not {json_kind(role)}")
    return role or ""



async def add_staff(db: Database, matrix: ShopMatrix, principal: Principal, slug: str,
                    user_id: Any, role: Any) -> StaffChange:
    merchant = await require(db, principal, slug, Action.MANAGE_STAFF)
    user_id = validate_user_id(user_id)
    try:
        parsed = parse_role(_role_text(role))
    except ValueError as e:
        raise InvalidInput("role", str(e)) from None
    current = await store.staff_role(db, slug, user_id)
    if current == Role.OWNER and parsed != Role.OWNER and await store.owner_count(db, slug) <= 1:
        raise Conflict("This is the shop's last owner; add another owner first.",
                       errcode="MERCATO_LAST_OWNER")
    # Staff of other servers are staff even while their server cannot be reached: roles
    # are Mercato's, and the invite is retried whenever the owner adds them again.
    warning = ""
    try:
        invite = await matrix.invite_staff(merchant, user_id)
    except StaffInviteFailed as e:
        if e.user_unknown:
            raise InvalidInput("user_id", f"there is no user {user_id} on this server; check "
                                          "the spelling") from None
        invite = "failed"
        warning = (f"{user_id} is {parsed.value} of '{slug}', but could not be invited to the "
                   f"staff room ({e.reason}). They can already use the shop bot; add them "
                   "again later to retry the invite.")
    async with transaction(db) as conn:
        if current != parsed:
            await store.put_staff(conn, slug, user_id, parsed, principal.actor)
            await store.audit(conn, slug, principal.actor,
                              "staff_added" if current is None else "staff_role_changed",
                              user_id=user_id, role=parsed.value)
        if invite == "failed":
            await store.audit(conn, slug, principal.actor, "staff_invite_failed",
                              user_id=user_id, reason=warning)
    member = next(s for s in await store.staff_of(db, slug) if s.user_id == user_id)
    return StaffChange(member, invite, warning)


async def remove_staff(db: Database, matrix: ShopMatrix, principal: Principal, slug: str,
                       user_id: str) -> None:
    merchant = await require(db, principal, slug, Action.MANAGE_STAFF)
    role = await store.staff_role(db, slug, user_id)
    if role is None:
        raise NotFound(f"{user_id} is not staff of '{slug}'.")
    if role == Role.OWNER and await store.owner_count(db, slug) <= 1:
        raise Conflict("This is the shop's last owner; add another owner first.",
                       errcode="MERCATO_LAST_OWNER")
    if merchant.staff_room_id:
        await matrix.remove_staff(merchant, user_id)
    async with transaction(db) as conn:
        await store.delete_staff(conn, slug, user_id)
        await store.audit(conn, slug, principal.actor, "staff_removed", user_id=user_id)


# -- API keys --------------------------------------------------------------------------

async def create_api_key(db: Database, principal: Principal, slug: str, label: Any,
                         role: Any = "editor") -> tuple[store.ApiKey, str]:
    await require(db, principal, slug, Action.MANAGE_KEYS)
    label = plain_text("label", label, 64, required=True)
    try:
        parsed = parse_role(_role_text(role) or "editor")
    except ValueError as e:
        raise InvalidInput("role", str(e)) from None
    key_id, key = store.new_api_key()
    async with transaction(db) as conn:
        await store.insert_api_key(conn, slug, key, key_id=key_id, label=label,
                                   role=parsed.value, created_by=principal.actor)
        await store.audit(conn, slug, principal.actor, "api_key_created", key_id=key_id,
                          label=label, role=parsed.value)
    created = next(k for k in await store.list_api_keys(db, slug) if k.key_id == key_id)
    return created, key


async def revoke_api_key(db: Database, principal: Principal, slug: str, key_id: str) -> None:
    await require(db, principal, slug, Action.MANAGE_KEYS)
    async with transaction(db) as conn:
        if not await store.revoke_api_key(conn, slug, key_id):
            raise NotFound(f"No active API key '{key_id}' in '{slug}'.")
        await store.audit(conn, slug, principal.actor, "api_key_revoked", key_id=key_id)
