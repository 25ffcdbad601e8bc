"""The commerce API's authorisation matrix (issue 11, Security): every route × every caller.

The expected answer of each cell is computed, not written by hand: from the route's
`Spec.auth`, the action its handler checks (`POLICY` below, read off the handler code)
and `roles.PERMISSIONS`. A route added to `ROUTES` without an entry in `POLICY` fails
`test_every_route_is_classified`, so it must be classified before it ships.

Each cell is one request against the session network, with a body that fails validation
*after* authorisation (or names something that does not exist), so an allowed caller
gets 400/404/409 and nothing changes; a refused caller gets 401/403. After every cell,
the commerce database must be as it was (audit log, keys, staff, shops, products, …).

Callers: anonymous, a garbage token, a revoked key, a buyer (service token acting as a
plain user), each staff role of shop A via the service token *and* via an API key of
that role, the owner of shop B, and the operator.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

import appservices.commerce.api  # noqa: F401  (registers every route in ROUTES)
from appservices.commerce.auth import ACTING_USER_HEADER
from appservices.commerce.http import ROUTES
from appservices.commerce.shops.roles import Action, Role, role_can
from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import Answer, CommerceApi, new_user
from tests.integration.conftest import network, shop_certificate  # noqa: F401

ROLES = tuple(r.value for r in Role)
NO_SUCH_ID = "999999999"
NO_SUCH_ORDER = "ZZZZZZ"
NO_SUCH_USER = "@nobody-authz:localhost"

# -- who may call what: one entry per route, read off its handler -----------------------------
#
# kind:
#   public       no token needed (anonymous allowed; a bad token is still 401)
#   user         a Matrix user through the service token; API keys and the operator get
#                400 "Authorization: …" (the handler refuses the principal kind)
#   apply        POST /shops: a user, or the operator naming an owner; API keys get 403
#   own_key      GET /merchant: only a shop API key, for its own shop (action READ_SHOP)
#   operator     merchants.require_operator
#   staff        merchants.require(…, action): the operator, or staff whose role may
#   shop_bot     only the shop bot's own Matrix user (through the service token); any other
#                user is 403, API keys and the operator 400 "Authorization: …"
#
# Each entry also says how to call it harmlessly: path values and a body that an allowed
# caller gets refused for *after* the authorisation check.


@dataclass(frozen=True)
class Policy:
    kind: str
    action: Action | None = None
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    data: bytes | None = None
    content_type: str | None = None
    query: str = ""


BAD_REASON = {"reason": "not plain text\u202e"}  # a right-to-left override

POLICY: dict[tuple[str, str], Policy] = {
    ("GET", "/shops"): Policy("public"),
    ("POST", "/shops"): Policy("apply"),  # body filled in with shop A's taken slug
    ("GET", "/shops/{slug}"): Policy("public"),
    ("PATCH", "/shops/{slug}"): Policy("staff", Action.EDIT_SHOP, body={"no_such_field": 1}),
    ("GET", "/merchant"): Policy("own_key", Action.READ_SHOP),
    ("GET", "/me/shops"): Policy("user"),
    ("POST", "/shops/{slug}/approve"): Policy("operator", body=BAD_REASON),
    ("POST", "/shops/{slug}/reject"): Policy("operator", body=BAD_REASON),
    ("POST", "/shops/{slug}/suspend"): Policy("operator", body=BAD_REASON),
    ("POST", "/shops/{slug}/reinstate"): Policy("operator", body=BAD_REASON),
    # Shop A has no website: verifying it is refused after the operator check.
    ("POST", "/shops/{slug}/verify"): Policy("operator", body={}),
    ("POST", "/shops/{slug}/domain-proof"): Policy("staff", Action.EDIT_SHOP, body={}),
    ("POST", "/shops/{slug}/domain-proof/check"): Policy("staff", Action.EDIT_SHOP, body={}),
    ("GET", "/shops/{slug}/staff"): Policy("staff", Action.READ_SHOP),
    ("POST", "/shops/{slug}/staff"): Policy("staff", Action.MANAGE_STAFF,
                                            body={"user_id": "not a user", "role": "owner"}),
    ("DELETE", "/shops/{slug}/staff/{user_id}"): Policy(
        "staff", Action.MANAGE_STAFF, params={"user_id": NO_SUCH_USER}),
    ("GET", "/shops/{slug}/keys"): Policy("staff", Action.MANAGE_KEYS),
    ("POST", "/shops/{slug}/keys"): Policy("staff", Action.MANAGE_KEYS, body={"role": "owner"}),
    ("DELETE", "/shops/{slug}/keys/{key_id}"): Policy("staff", Action.MANAGE_KEYS,
                                                      params={"key_id": "nokey"}),
    ("GET", "/shops/{slug}/audit"): Policy("staff", Action.READ_AUDIT),
    ("POST", "/shops/{slug}/media"): Policy("staff", Action.RUN_CAMPAIGNS,
                                            data=b"not an image",
                                            content_type="application/octet-stream"),
    ("POST", "/shops/{slug}/campaigns"): Policy("staff", Action.RUN_CAMPAIGNS, body={}),
    ("GET", "/shops/{slug}/campaigns"): Policy("staff", Action.READ_STATS),
    ("GET", "/shops/{slug}/campaigns/{campaign_id}"): Policy(
        "staff", Action.READ_STATS, params={"campaign_id": NO_SUCH_ID}),
    ("POST", "/shops/{slug}/campaigns/{campaign_id}/preview"): Policy(
        "staff", Action.RUN_CAMPAIGNS, params={"campaign_id": NO_SUCH_ID}, body={}),
    ("POST", "/shops/{slug}/campaigns/{campaign_id}/schedule"): Policy(
        "staff", Action.RUN_CAMPAIGNS, params={"campaign_id": NO_SUCH_ID}, body={}),
    ("POST", "/shops/{slug}/campaigns/{campaign_id}/cancel"): Policy(
        "staff", Action.RUN_CAMPAIGNS, params={"campaign_id": NO_SUCH_ID}, body={}),
    ("POST", "/shops/{slug}/campaigns/{campaign_id}/retract"): Policy(
        "staff", Action.RUN_CAMPAIGNS, params={"campaign_id": NO_SUCH_ID}, body={}),
    ("POST", "/coupons/{coupon_id}/claim"): Policy("user", params={"coupon_id": NO_SUCH_ID},
                                                   body={}),
    ("GET", "/me/coupons"): Policy("user"),
    ("GET", "/shops/{slug}/coupons"): Policy("staff", Action.READ_SHOP),
    # Redeeming at the till (owner, editor, support): a well-formed code no shop has.
    ("POST", "/shops/{slug}/coupons/redeem"): Policy("staff", Action.REDEEM_COUPONS,
                                                     body={"code": "NOSUCHCODE"}),
    ("GET", "/shops/{slug}/stats"): Policy("staff", Action.READ_STATS),
    ("PUT", "/shops/{slug}/quota"): Policy("operator", body={"posts_per_day": -1}),
    ("POST", "/shops/{slug}/products/import"): Policy("staff", Action.EDIT_CATALOG, body={}),
    ("GET", "/shops/{slug}/channels"): Policy("public"),
    ("POST", "/shops/{slug}/channels"): Policy("staff", Action.EDIT_SHOP,
                                               body={"suffix": "NOT VALID"}),
    ("POST", "/reports"): Policy("user", body={}),
    ("GET", "/reports"): Policy("operator"),
    ("GET", "/shops/{slug}/products"): Policy("public"),
    ("POST", "/shops/{slug}/products"): Policy("staff", Action.EDIT_CATALOG, body={}),
    ("GET", "/shops/{slug}/products/{sku}"): Policy("public"),
    ("PATCH", "/shops/{slug}/products/{sku}"): Policy("staff", Action.EDIT_CATALOG,
                                                      body={"no_such_field": 1}),
    ("DELETE", "/shops/{slug}/products/{sku}"): Policy("staff", Action.EDIT_CATALOG,
                                                       params={"sku": "no-such-sku"}),
    ("GET", "/shops/{slug}/products/{sku}/card"): Policy("public"),
    ("POST", "/shops/{slug}/products/{sku}/share"): Policy("staff", Action.EDIT_CATALOG,
                                                           body={"room_id": "nowhere"}),
    ("POST", "/shops/{slug}/products/{sku}/alert"): Policy("user", params={"sku": "no-such-sku"},
                                                           body={}),
    ("DELETE", "/shops/{slug}/products/{sku}/alert"): Policy("user"),
    ("GET", "/me/alerts"): Policy("user"),
    # The menu and the follow reward: a menu link that is not a list, a reward without a
    # title; shop A has no follow reward to stop.
    ("GET", "/shops/{slug}/menu"): Policy("staff", Action.READ_SHOP),
    ("PUT", "/shops/{slug}/menu"): Policy("staff", Action.EDIT_SHOP, body={"links": "none"}),
    ("GET", "/shops/{slug}/follow-reward"): Policy("staff", Action.READ_STATS),
    ("PUT", "/shops/{slug}/follow-reward"): Policy("staff", Action.RUN_CAMPAIGNS, body={}),
    ("DELETE", "/shops/{slug}/follow-reward"): Policy("staff", Action.RUN_CAMPAIGNS),
    # Shop A has no webhook: reading, removing, rotating and resending find none.
    ("PUT", "/shops/{slug}/webhook"): Policy("staff", Action.MANAGE_WEBHOOKS,
                                             body={"url": "http://not-https.example"}),
    ("GET", "/shops/{slug}/webhook"): Policy("staff", Action.MANAGE_WEBHOOKS),
    ("DELETE", "/shops/{slug}/webhook"): Policy("staff", Action.MANAGE_WEBHOOKS),
    ("POST", "/shops/{slug}/webhook/secret"): Policy("staff", Action.MANAGE_WEBHOOKS, body={}),
    ("GET", "/shops/{slug}/webhook/deliveries"): Policy("staff", Action.MANAGE_WEBHOOKS),
    ("POST", "/shops/{slug}/webhook/deliveries/{event_id}/resend"): Policy(
        "staff", Action.MANAGE_WEBHOOKS, params={"event_id": "evt_nosuch"}, body={}),
    # Orders: shop A has none; an order ID that exists nowhere, a body refused after the check.
    ("GET", "/shops/{slug}/orders/settings"): Policy("staff", Action.MANAGE_ORDERS),
    ("PUT", "/shops/{slug}/orders/settings"): Policy("staff", Action.EDIT_SHOP,
                                                     body={"delivery": []}),
    ("GET", "/shops/{slug}/orders"): Policy("staff", Action.MANAGE_ORDERS),
    ("GET", "/shops/{slug}/orders/{order_id}"): Policy(
        "staff", Action.MANAGE_ORDERS, params={"order_id": NO_SUCH_ORDER}),
    ("POST", "/shops/{slug}/orders/{order_id}/status"): Policy(
        "staff", Action.MANAGE_ORDERS, params={"order_id": NO_SUCH_ORDER}, body={}),
    ("GET", "/shops/{slug}/checkout"): Policy("public"),
    ("GET", "/me/cart/{slug}"): Policy("user"),
    ("GET", "/me/carts"): Policy("user"),
    ("POST", "/me/cart/{slug}/items"): Policy("user", body={"sku": "no-such-sku"}),
    ("PUT", "/me/cart/{slug}/items/{sku}"): Policy("user", params={"sku": "no-such-sku"},
                                                    body={"quantity": 1}),
    ("DELETE", "/me/cart/{slug}/items/{sku}"): Policy("user", params={"sku": "no-such-sku"}),
    ("POST", "/me/orders"): Policy("user", body={}),
    ("GET", "/me/orders"): Policy("user"),
    ("GET", "/me/orders/{order_id}"): Policy("user", params={"order_id": NO_SUCH_ORDER}),
    ("POST", "/me/orders/{order_id}/cancel"): Policy("user", params={"order_id": NO_SUCH_ORDER},
                                                     body={}),
    ("POST", "/me/orders/{order_id}/forget"): Policy("user", params={"order_id": NO_SUCH_ORDER},
                                                     body={}),
    # A sign-in link has no harmless form: an allowed user gets one (an unused token that
    # expires in 10 minutes; no table of SNAPSHOT holds it).
    ("POST", "/me/web-login"): Policy("user", body={}),
    # The Circle. Opting in has no harmless form either: each allowed user opts in (a room
    # and a Space of their own), and the DELETE that the matrix runs next opts them out.
    ("GET", "/me/circle"): Policy("user"),
    ("POST", "/me/circle"): Policy("user"),
    ("DELETE", "/me/circle"): Policy("user"),
    ("POST", "/me/circle/recommendations"): Policy("user", body={}),
    ("POST", "/me/circle/friends"): Policy("user", body={"user_id": "not a user"}),
    ("DELETE", "/me/circle/friends/{user_id}"): Policy("user", params={"user_id": "not-a-user"}),
    ("GET", "/me/circle/feed"): Policy("user"),
    ("PUT", "/me/circle/digest"): Policy("user", body={"enabled": "yes"}),
    ("POST", "/me/circle/digest/next"): Policy("user", body={}),
    ("GET", "/circle/digest-subscribers"): Policy("shop_bot"),
}

# Query-string variants that change who may call a route.
VARIANTS: dict[str, tuple[tuple[str, str], Policy]] = {
    "GET /shops?status=pending": (("GET", "/shops"), Policy("operator", query="?status=pending")),
}

# What Spec.auth promises for each kind of policy.
SPEC_AUTH = {"public": {"none"}, "user": {"any"}, "apply": {"any"}, "own_key": {"staff"},
             "operator": {"operator"}, "staff": {"staff"}, "shop_bot": {"any"}}

# -- callers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    name: str
    kind: str  # anonymous | invalid | user | api_key | operator
    role_in_a: str | None = None  # the caller's role in shop A


CALLERS = (
    Caller("anonymous", "anonymous"),
    Caller("garbage_token", "invalid"),
    Caller("revoked_key", "invalid"),
    Caller("buyer", "user"),
    *(Caller(f"staff_{r}", "user", r) for r in ROLES),
    *(Caller(f"key_{r}", "api_key", r) for r in ROLES),
    Caller("owner_of_b", "user"),
    Caller("operator", "operator"),
)

ALLOW, REFUSE, WRONG_KIND = "allow", "refuse", "wrong_kind"


def expected(policy: Policy, caller: Caller) -> str:
    """What a cell should answer: allowed, refused (401/403), or 400 for the wrong kind."""
    if caller.kind == "invalid":
        return REFUSE  # an unknown or revoked token is 401 even where no token is needed
    if policy.kind == "public":
        return ALLOW
    if caller.kind == "anonymous":
        return REFUSE
    if policy.kind == "user":
        return ALLOW if caller.kind == "user" else WRONG_KIND
    if policy.kind == "shop_bot":  # no caller of the matrix is the shop bot itself
        return REFUSE if caller.kind == "user" else WRONG_KIND
    if policy.kind == "apply":
        return ALLOW if caller.kind in ("user", "operator") else REFUSE
    if policy.kind == "operator":
        return ALLOW if caller.kind == "operator" else REFUSE
    assert policy.action is not None
    if policy.kind == "own_key":
        if caller.kind != "api_key":
            return WRONG_KIND
        return ALLOW if role_can(caller.role_in_a or "", policy.action) else REFUSE
    assert policy.kind == "staff", policy.kind
    if caller.kind == "operator":
        return ALLOW
    return ALLOW if caller.role_in_a and role_can(caller.role_in_a, policy.action) else REFUSE


def _cases() -> list[tuple[str, tuple[str, str], Policy]]:
    cases = [(f"{m} {p}", (m, p), POLICY[(m, p)]) for m, p, _, _ in ROUTES if (m, p) in POLICY]
    cases += [(name, key, policy) for name, (key, policy) in VARIANTS.items()]
    return cases


CELLS = [pytest.param(route, key, policy, caller, id=f"{route} | {caller.name}")
         for route, key, policy in _cases() for caller in CALLERS]


# -- the world the matrix runs in --------------------------------------------------------------

@dataclass
class World:
    api: CommerceApi
    shop_a: str
    shop_b: str
    owner_a: str
    owner_b: str
    buyer: str
    staff: dict[str, str]  # role → user ID in shop A
    keys: dict[str, str]  # role → API key of shop A
    revoked_key: str
    sku: str

    def headers(self, caller: Caller) -> dict[str, str]:
        if caller.name == "anonymous":
            return {}
        if caller.name == "garbage_token":
            return {"Authorization": "Bearer mk_garbage_" + uuid.uuid4().hex}
        if caller.name == "revoked_key":
            return self.api.key(self.revoked_key)
        if caller.name == "operator":
            return self.api.operator()
        if caller.kind == "api_key":
            return self.api.key(self.keys[caller.role_in_a or ""])
        user = {"buyer": self.buyer, "owner_of_b": self.owner_b}.get(caller.name) or \
            self.staff[caller.role_in_a or ""]
        return self.api.acting_as(user)


@pytest.fixture(scope="module")
async def world(network: RunningNetwork) -> AsyncIterator[World]:  # noqa: F811
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        api = CommerceApi(network, http)
        users = {name: (await new_user(network, http, f"authz-{name}")).user_id
                 for name in ("owner-a", "editor", "support", "analyst", "owner-b", "buyer")}
        # Shop A has no website: verify and domain proof are then refused after the check.
        shop_a = f"authz-a-{uuid.uuid4().hex[:8]}"
        await api.apply(users["owner-a"], shop_a, f"Authz A {shop_a[-8:]}")
        await api.approve(shop_a)
        for role in ("editor", "support", "analyst"):
            added = await api.add_staff(shop_a, api.operator(), users[role], role)
            assert added.status == 201, added
        keys = {}
        for role in ROLES:
            made = await api.post(f"/shops/{shop_a}/keys", api.operator(),
                                  {"label": f"authz {role}", "role": role})
            assert made.status == 201, made
            keys[role] = made.body["key"]
        revoked = await api.post(f"/shops/{shop_a}/keys", api.operator(),
                                 {"label": "authz revoked", "role": "owner"})
        assert revoked.status == 201, revoked
        gone = await api.delete(f"/shops/{shop_a}/keys/{revoked.body['key_id']}",
                                api.operator())
        assert gone.status == 200, gone
        sku = "authz-sku"
        made = await api.post(f"/shops/{shop_a}/products", api.key(keys["owner"]), {
            "sku": sku, "title": "Authz mug", "price": "9.00", "currency": "EUR"})
        assert made.status == 201, made
        shop_b = f"authz-b-{uuid.uuid4().hex[:8]}"
        await api.apply(users["owner-b"], shop_b, f"Authz B {shop_b[-8:]}")
        await api.approve(shop_b)
        yield World(api, shop_a, shop_b, users["owner-a"], users["owner-b"], users["buyer"],
                    {"owner": users["owner-a"], "editor": users["editor"],
                     "support": users["support"], "analyst": users["analyst"]},
                    keys, revoked.body["key"], sku)


# Tables whose rows a refused (or harmless) call must leave exactly as they were.
SNAPSHOT = {
    "audit_log": "SELECT COUNT(*) FROM audit_log",
    "merchant": "SELECT * FROM merchant ORDER BY slug",
    "staff": "SELECT * FROM staff ORDER BY 1, 2",
    "api_key": "SELECT * FROM api_key ORDER BY key_hash",
    "product": "SELECT * FROM product ORDER BY 1, 2",
    "price_alert": "SELECT COUNT(*) FROM price_alert",
    "campaign": "SELECT COUNT(*) FROM campaign",
    "coupon_code": "SELECT COUNT(*) FROM coupon_code",
    "channel": "SELECT COUNT(*) FROM channel",
    "card": "SELECT COUNT(*) FROM card",
    "card_edit": "SELECT COUNT(*) FROM card_edit",
    "report": "SELECT COUNT(*) FROM report",
    "webhook_endpoint": "SELECT * FROM webhook_endpoint ORDER BY id",
    "webhook_delivery": "SELECT * FROM webhook_delivery ORDER BY id",
    "coupon": "SELECT COUNT(*) FROM coupon",
    "follow_reward": "SELECT * FROM follow_reward ORDER BY 1",
    "shop_menu": "SELECT * FROM shop_menu ORDER BY 1",
    "order_settings": "SELECT * FROM order_settings ORDER BY 1",
    "orders": "SELECT COUNT(*) FROM orders",
    "cart_item": "SELECT COUNT(*) FROM cart_item",
    "circle_recommendation": "SELECT COUNT(*) FROM circle_recommendation",
}


def snapshot(running: RunningNetwork) -> dict[str, list[tuple[Any, ...]]]:
    return {table: running.rows("commerce", sql) for table, sql in SNAPSHOT.items()}


async def call(world: World, key: tuple[str, str], policy: Policy, caller: Caller) -> Answer:
    method, template = key
    values = {"slug": world.shop_a, "sku": world.sku, **policy.params}
    path = template.format(**values) + policy.query
    body = policy.body
    if key == ("POST", "/shops"):  # a valid application for a slug that is taken
        body = {"slug": world.shop_a, "name": "Authz taken", "owner": world.owner_a}
    headers = {**world.headers(caller)}
    if policy.content_type:
        headers["Content-Type"] = policy.content_type
    return await world.api.call(method, path, headers, json=body, data=policy.data)


# -- the tests ---------------------------------------------------------------------------------

def test_every_route_is_classified() -> None:
    """A new route must get a POLICY entry (and a harmless way to call it) before it ships."""
    routes = {(m, p) for m, p, _, _ in ROUTES}
    missing = sorted(routes - set(POLICY))
    stale = sorted(set(POLICY) - routes)
    assert not missing, f"classify these routes in POLICY: {missing}"
    assert not stale, f"POLICY names routes that no longer exist: {stale}"


def test_policies_agree_with_the_openapi_auth() -> None:
    """POLICY and Spec.auth tell the same story (the OpenAPI document shows Spec.auth)."""
    wrong = [(m, p, spec.auth, POLICY[(m, p)].kind) for m, p, _, spec in ROUTES
             if (m, p) in POLICY and spec.auth not in SPEC_AUTH[POLICY[(m, p)].kind]]
    assert not wrong, wrong
    for (m, p), policy in POLICY.items():
        assert (policy.action is not None) == (policy.kind in ("staff", "own_key")), (m, p)


def test_the_matrix_covers_every_route_and_caller() -> None:
    assert len(CELLS) == (len(ROUTES) + len(VARIANTS)) * len(CALLERS)
    outcomes = {expected(policy, caller) for _, _, policy in _cases() for caller in CALLERS}
    assert outcomes == {ALLOW, REFUSE, WRONG_KIND}


@pytest.mark.parametrize(("route", "key", "policy", "caller"), CELLS)
async def test_cell(world: World, network: RunningNetwork,  # noqa: F811
                    route: str, key: tuple[str, str], policy: Policy, caller: Caller) -> None:
    want = expected(policy, caller)
    before = snapshot(network)
    answer = await call(world, key, policy, caller)
    after = snapshot(network)
    cell = f"{route} as {caller.name}: expected {want}, got {answer.status} {answer.body}"
    assert answer.status < 500, cell
    if want == REFUSE:
        assert answer.status in (401, 403), cell
        if caller.kind in ("anonymous", "invalid"):
            assert answer.status == 401, cell
    elif want == WRONG_KIND:
        assert answer.status == 400 and answer.errcode == "MERCATO_INVALID", cell
        assert answer.error.startswith("Authorization:"), cell
    else:
        assert answer.status not in (401, 403), cell
        assert not (answer.status == 400 and answer.error.startswith("Authorization:")), cell
    changed = [table for table in SNAPSHOT if before[table] != after[table]]
    assert not changed, f"{cell}; changed: {changed}"


async def test_service_token_without_acting_user_is_refused(world: World) -> None:
    token = world.api.network.config.commerce.service_token
    answer = await world.api.get(f"/shops/{world.shop_a}/staff",
                                 {"Authorization": f"Bearer {token}"})
    assert answer.status == 400 and answer.errcode == "M_MISSING_PARAM", answer
    answer = await world.api.get(f"/shops/{world.shop_a}/staff",
                                 {"Authorization": f"Bearer {token}",
                                  ACTING_USER_HEADER: "not-a-user"})
    assert answer.status == 400, answer


async def test_a_key_of_shop_a_cannot_reach_shop_b(world: World) -> None:
    """The owner key of A is refused on B for each staff route (A's slug swapped for B's)."""
    for (method, template), policy in POLICY.items():
        if policy.kind != "staff" or "{slug}" not in template:
            continue
        path = template.format(**{"slug": world.shop_b, "sku": world.sku, **policy.params})
        answer = await world.api.call(method, path, world.api.key(world.keys["owner"]),
                                      json=policy.body, data=policy.data)
        assert answer.status == 403, (method, path, answer)


async def test_the_shop_bot_lists_digest_subscribers(world: World,
                                                     network: RunningNetwork  # noqa: F811
                                                     ) -> None:
    """The one caller the matrix lacks: the shop bot, acting as itself, may list them."""
    config = network.config
    bot = config.user_id(config.shopbot.localpart)
    answer = await world.api.get("/circle/digest-subscribers", world.api.acting_as(bot))
    assert answer.status == 200, answer
    assert isinstance(answer.body["users"], list), answer


async def test_apply_checks_the_caller_before_the_body(world: World) -> None:
    answer = await world.api.post("/shops", world.api.key(world.keys["owner"]), {"slug": "!"})
    assert answer.status == 403, answer


async def test_the_snapshot_sees_a_change(world: World, network: RunningNetwork  # noqa: F811
                                          ) -> None:
    """The 'nothing changed' check is not vacuous: a real change shows in the snapshot."""
    before = snapshot(network)
    made = await world.api.post(f"/shops/{world.shop_a}/keys", world.api.operator(),
                                {"label": "authz canary", "role": "analyst"})
    assert made.status == 201, made
    assert snapshot(network) != before
    gone = await world.api.delete(f"/shops/{world.shop_a}/keys/{made.body['key_id']}",
                                  world.api.operator())
    assert gone.status == 200, gone
