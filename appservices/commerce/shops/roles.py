"""Who may do what in a shop. Pure data and one function; checked by every API call."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"  # products and campaigns
    SUPPORT = "support"  # customer service
    ANALYST = "analyst"  # reads stats


class Action(StrEnum):
    READ_SHOP = "read_shop"
    EDIT_SHOP = "edit_shop"
    MANAGE_STAFF = "manage_staff"
    MANAGE_KEYS = "manage_keys"
    READ_AUDIT = "read_audit"
    EDIT_CATALOG = "edit_catalog"
    RUN_CAMPAIGNS = "run_campaigns"
    ANSWER_BUYERS = "answer_buyers"
    READ_STATS = "read_stats"
    MANAGE_ORDERS = "manage_orders"  # read orders (addresses too) and move them on
    MANAGE_WEBHOOKS = "manage_webhooks"  # the shop's back-end endpoint and its log
    REDEEM_COUPONS = "redeem_coupons"  # mark a buyer's code used at the till


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.EDITOR: frozenset({Action.READ_SHOP, Action.EDIT_CATALOG, Action.RUN_CAMPAIGNS,
                            Action.READ_STATS, Action.REDEEM_COUPONS}),
    Role.SUPPORT: frozenset({Action.READ_SHOP, Action.ANSWER_BUYERS, Action.MANAGE_ORDERS,
                             Action.REDEEM_COUPONS}),
    Role.ANALYST: frozenset({Action.READ_SHOP, Action.READ_STATS}),
}


def role_can(role: Role | str, action: Action) -> bool:
    try:
        return action in PERMISSIONS[Role(role)]
    except ValueError:
        return False


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role '{value}'; use one of: {allowed}") from None
