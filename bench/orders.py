"""Order burst: N buyers order from one shop at once, against a plain DM in the same run.

Set-up (not timed): one approved shop with 20 products, five of them with less stock
than the buyers will ask for; N buyers, each in a DM they opened with the shop's
account (the room where its order card arrives), joined by both.

Measured, with every buyer's own long-poll /sync watching its DM:
- the reference, a plain DM from the shop through the same outbox: every buyer claims a
  coupon (`POST /coupons/{id}/claim`, CONCURRENCY requests in flight) and the shop's
  account sends the code by DM; latency from the claim request's start until the buyer's
  /sync has the DM. Measured before the orders (those codes are then spent at checkout)
  and again after them, with a second coupon;
- the burst: every buyer places one order (`POST /me/orders`, CONCURRENCY in flight), some
  with their code, some with another buyer's code, some twice at once with their own;
  orders per second (accepted orders / seconds from the first request to the last answer)
  and the order card's latency from the request's start until the buyer's /sync has it.

Checked afterwards, from the commerce database and what the buyers' /sync received
(`audit`, a pure function): no product sold beyond its stock, sold + left == stock, no
code spent on two orders or on another buyer's order, every accepted order's card
arrived exactly once and no card for an order that was refused. Any problem fails the
benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.common import bench_network, register_many
from bench.order_plan import (
    NONE,
    OTHERS,
    OWN,
    PRODUCTS,
    SCARCE,
    TWICE,
    BuyerPlan,
    Ledger,
    audit,
    demand,
    initial_stock,
    percentiles,
    plan_orders,
    sku,
)

CONCURRENCY = 50
CALM_SAMPLES = 20  # unloaded card and DM latencies, one at a time
QUIET = 60.0  # seconds without a new arrival after which the rest count as missing
GOALS = {"card_p50_ratio": 3.0, "orders_per_s_postgres": 50.0}
SYNC_FILTER = json.dumps({
    "room": {"timeline": {"limit": 100}, "state": {"lazy_load_members": True},
             "ephemeral": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}},
    "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]},
})


class BenchmarkFailed(RuntimeError):
    """The burst broke a promise (stock, codes, cards): the benchmark must not pass."""


# -- the network side --------------------------------------------------------------------------

@dataclass
class Buyer:
    index: int
    user_id: str
    token: str
    dm: str = ""


class Arrivals:
    """What the buyers' /sync loops saw: order cards and coupon-code DMs, with times."""

    def __init__(self) -> None:
        self.cards: dict[str, list[tuple[str, str, float]]] = {}  # order → (buyer, room, at)
        self.codes: dict[tuple[str, str], float] = {}  # (buyer, coupon title) → at
        self.changed = asyncio.Event()

    def note(self, buyer: str, room_id: str, event: dict[str, Any], at: float) -> None:
        content = event.get("content") or {}
        order = content.get("org.mercato.order")
        if isinstance(order, dict) and "m.relates_to" not in content:
            self.cards.setdefault(str(order.get("id")), []).append((buyer, room_id, at))
        body = str(content.get("body", ""))
        if body.startswith("🎟️ Your code for \""):
            self.codes.setdefault((buyer, body.split('"')[1]), at)
        self.changed.set()

    async def settle(self, count: Any, expected: int) -> int:
        """Wait until `count()` reaches `expected`, or QUIET seconds pass without news."""
        last, since = -1, time.monotonic()
        while (seen := count()) < expected:
            if seen != last:
                last, since = seen, time.monotonic()
            elif time.monotonic() - since > QUIET:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)
        return int(count())


async def _watch(http: aiohttp.ClientSession, hs: str, buyer: Buyer, since: str,
                 arrivals: Arrivals) -> None:
    headers = {"Authorization": f"Bearer {buyer.token}"}
    while True:
        try:
            async with http.get(f"{hs}/_matrix/client/v3/sync", headers=headers, params={
                    "since": since, "timeout": "30000", "filter": SYNC_FILTER}) as resp:
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError):
            await asyncio.sleep(0.5)  # a dropped long-poll: ask again from the same point
            continue
        now = time.monotonic()
        since = data.get("next_batch", since)
        for room_id, room in data.get("rooms", {}).get("join", {}).items():
            for event in room.get("timeline", {}).get("events", []):
                arrivals.note(buyer.user_id, room_id, event, now)


class Api:
    """The commerce API as the shop's back-end (its key), the operator and buyers use it."""

    def __init__(self, http: aiohttp.ClientSession, network: Any) -> None:
        self.http, self.base = http, f"{network.commerce_url}/api/v1"
        self.config = network.config.commerce
        self.key = ""

    def as_buyer(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.service_token}",
                "X-Mercato-Acting-User": user_id}

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.key}"}

    async def call(self, method: str, path: str, headers: dict[str, str],
                   body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base}{path}", json=body,
                                     headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def must(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> Any:
        status, answer = await self.call(method, path, headers or self.bearer(), body)
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer


async def _open_shop(api: Api, owner: str, stock: dict[str, int]) -> str:
    slug = f"burst{int(time.time()) % 100000}"
    operator = api.bearer(api.config.operator_token)
    await api.must("POST", "/shops", {"slug": slug, "name": "Burst Outfitters",
                                      "website": f"https://{slug}.example", "owner": owner},
                   operator)
    await api.must("POST", f"/shops/{slug}/approve", headers=operator)
    await api.must("PUT", f"/shops/{slug}/quota", {"posts_per_day": 100}, operator)
    api.key = (await api.must("POST", f"/shops/{slug}/keys",
                              {"label": "back-end", "role": "owner"}, operator))["key"]
    for n, (name, quantity) in enumerate(stock.items()):
        await api.must("POST", f"/shops/{slug}/products", {
            "sku": name, "title": f"Trail sock, style {n + 1}", "price": f"{9 + n}.90",
            "currency": "EUR", "quantity": quantity})
    await api.must("PUT", f"/shops/{slug}/orders/settings", {
        "payment_methods": {"on_delivery": {},
                            "bank_transfer": {"details": "IBAN DE89 3704 0044 0532 0130 00"}},
        "delivery": ["shipping", "pickup"]})
    return slug


async def _coupon(api: Api, slug: str, title: str, stock: int) -> int:
    """A coupon campaign, sent (claims need it sent), 10 % off at checkout."""
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    campaign = await api.must("POST", f"/shops/{slug}/campaigns", {
        "kind": "coupon", "fields": {"title": title},
        "coupon": {"stock": stock, "expires_at": expires, "percent_off": 10}})
    await api.must("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule")
    for _ in range(600):
        state = (await api.must("GET", f"/shops/{slug}/campaigns/{campaign['id']}"))["state"]
        if state in ("sending", "sent"):
            return int(campaign["coupon_id"])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the coupon campaign {title!r} was never sent")


async def _open_dms(http: aiohttp.ClientSession, hs: str, buyers: list[Buyer],
                    shop: str) -> None:
    """Each buyer opens a DM with the shop's account, which joins it (the support desk)."""
    limit = asyncio.Semaphore(16)

    async def one(buyer: Buyer) -> None:
        headers = {"Authorization": f"Bearer {buyer.token}"}
        async with limit:
            async with http.post(f"{hs}/_matrix/client/v3/createRoom", headers=headers, json={
                    "invite": [shop], "is_direct": True,
                    "preset": "trusted_private_chat"}) as resp:
                buyer.dm = (await resp.json())["room_id"]
            for _ in range(600):
                if await shop_joined(http, hs, buyer, shop):
                    return
                await asyncio.sleep(0.2)
            raise RuntimeError(f"{shop} never joined the DM of {buyer.user_id}")

    await asyncio.gather(*(one(b) for b in buyers))


async def shop_joined(http: aiohttp.ClientSession, hs: str, buyer: Buyer, shop: str) -> bool:
    """The shop's membership event in the buyer's DM, as commerce reads it. Not
    /joined_members: on the scale profile the main process answers that from a members
    cache that, for a few of hundreds of DMs joined at once, kept the room without the shop
    for good while the database and the generic worker had the join (bench/notes.md)."""
    if not buyer.dm:
        return False
    async with http.get(f"{hs}/_matrix/client/v3/rooms/{quote(buyer.dm)}/state/"
                        f"m.room.member/{quote(shop)}",
                        headers={"Authorization": f"Bearer {buyer.token}"}) as resp:
        return resp.status == 200 and (await resp.json()).get("membership") == "join"


async def _pool(jobs: list[Any], concurrency: int) -> float:
    """Run the coroutine factories, `concurrency` in flight; seconds from first to last."""
    queue = list(reversed(jobs))
    start = time.monotonic()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - start


async def _claims(api: Api, buyers: list[Buyer], coupon_id: int, title: str,
                  arrivals: Arrivals) -> dict[str, Any]:
    """The reference: every buyer claims the coupon; the code comes by DM from the shop."""
    started: dict[str, float] = {}
    failed: list[str] = []

    def job(buyer: Buyer) -> Any:
        async def claim() -> None:
            started[buyer.user_id] = time.monotonic()
            status, answer = await api.call("POST", f"/coupons/{coupon_id}/claim",
                                            api.as_buyer(buyer.user_id))
            if status != 200:
                failed.append(f"{status} {answer}")
        return claim

    seconds = await _pool([job(b) for b in buyers], CONCURRENCY)
    await arrivals.settle(lambda: sum((b.user_id, title) in arrivals.codes for b in buyers),
                          len(buyers))
    latencies = [arrivals.codes[(b.user_id, title)] - started[b.user_id] for b in buyers
                 if (b.user_id, title) in arrivals.codes]
    return {"claims": len(buyers), "refused": len(failed), "errors": failed[:5],
            "seconds": round(seconds, 2),
            "per_s": round((len(buyers) - len(failed)) / seconds, 1),
            "missing_dms": len(buyers) - len(latencies), "latencies": latencies}


@dataclass
class Attempt:
    buyer: Buyer
    coupon: str
    started: float = 0.0
    status: int = 0
    order_id: str = ""
    errcode: str = ""
    error: str = ""


def _order_body(slug: str, plan: BuyerPlan, code: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shop": slug, "items": [{"sku": s, "quantity": q} for s, q in plan.items],
        "payment": "on_delivery" if plan.index % 2 else "bank_transfer",
        "delivery": {"kind": "shipping", "address": f"Hafenstraße {plan.index + 1}, 20457 "
                     "Hamburg", "phone": f"+49 40 555{plan.index:05d}"}}
    if code:
        body["coupon"] = code
    return body


async def _place_all(api: Api, slug: str, buyers: list[Buyer], plans: list[BuyerPlan],
                     codes: dict[str, str]) -> tuple[list[Attempt], float]:
    """Every buyer's order (two for TWICE buyers, next to each other in the queue)."""
    attempts: list[Attempt] = []
    jobs = []

    def job(attempt: Attempt, body: dict[str, Any]) -> Any:
        async def place() -> None:
            attempt.started = time.monotonic()
            attempt.status, answer = await api.call(
                "POST", "/me/orders", api.as_buyer(attempt.buyer.user_id), body)
            if attempt.status == 201:
                attempt.order_id = answer["id"]
            else:
                answer = answer if isinstance(answer, dict) else {}
                attempt.errcode = str(answer.get("errcode", ""))
                attempt.error = str(answer.get("error", answer))
        return place

    for buyer, plan in zip(buyers, plans, strict=True):
        code = {NONE: None, OWN: codes.get(buyer.user_id), TWICE: codes.get(buyer.user_id),
                OTHERS: codes.get(buyers[plan.victim or 0].user_id)}[plan.coupon]
        for _ in range(2 if plan.coupon == TWICE else 1):
            attempts.append(Attempt(buyer, plan.coupon))
            jobs.append(job(attempts[-1], _order_body(slug, plan, code)))
    seconds = await _pool(jobs, CONCURRENCY)
    return attempts, seconds


def _ledger(network: Any, slug: str, stock: dict[str, int], accepted: set[str],
            arrivals: Arrivals, dms: dict[str, str]) -> Ledger:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return network.rows("commerce", sql, slug)

    cards: Counter[str] = Counter()
    for order_id, seen in arrivals.cards.items():
        # A card counts where it belongs: in its buyer's DM with the shop.
        cards[order_id] += sum(1 for buyer, room, _ in seen if dms.get(buyer) == room)
    return Ledger(
        initial=stock,
        remaining={s: q for s, q in rows("SELECT sku, quantity FROM product "
                                         "WHERE merchant_slug=?")},
        sold={s: int(q) for s, q in rows(
            "SELECT i.sku, SUM(i.quantity) FROM order_item i JOIN orders o ON o.id=i.order_id"
            " WHERE o.merchant_slug=? AND o.status NOT IN ('cancelled', 'declined')"
            " GROUP BY i.sku")},
        orders={o for (o,) in rows("SELECT id FROM orders WHERE merchant_slug=?")},
        accepted=accepted,
        order_codes=[(o, b, c) for o, b, c in rows(
            "SELECT id, buyer_id, coupon_code FROM orders WHERE merchant_slug=? AND "
            "coupon_code IS NOT NULL")],
        codes={c: (u, o) for c, u, o in rows(
            "SELECT code, user_id, order_id FROM coupon_code WHERE merchant_slug=? AND "
            "redeemed_at IS NOT NULL")},
        cards=cards)


def _outcomes(attempts: list[Attempt]) -> dict[str, dict[str, int]]:
    """Per coupon use: how many attempts were accepted, sold out, refused for the code."""
    table: dict[str, dict[str, int]] = {}
    for a in attempts:
        what = ("accepted" if a.status == 201 else "sold out" if a.errcode == "MERCATO_SOLD_OUT"
                else "code refused" if "coupon" in a.error else f"HTTP {a.status}")
        row = table.setdefault(a.coupon, {})
        row[what] = row.get(what, 0) + 1
    return table


async def _one_at_a_time(api: Api, slug: str, buyers: list[Buyer], left: dict[str, int],
                         arrivals: Arrivals) -> dict[str, list[float]]:
    """Unloaded: each buyer in turn claims a code and orders one unit, each waiting for
    its DM or card before the next request; which goes first alternates."""
    title = "Autumn drop"
    coupon_id = await _coupon(api, slug, title, len(buyers))
    times: dict[str, list[float]] = {"card": [], "dm": []}

    async def claim(buyer: Buyer) -> None:
        start = time.monotonic()
        await api.must("POST", f"/coupons/{coupon_id}/claim",
                       headers=api.as_buyer(buyer.user_id))
        if await arrivals.settle(lambda: (buyer.user_id, title) in arrivals.codes, 1):
            times["dm"].append(arrivals.codes[(buyer.user_id, title)] - start)

    async def order(buyer: Buyer) -> None:
        sku = max(left, key=lambda s: left[s])  # one unit of what most is left of
        left[sku] -= 1
        start = time.monotonic()
        placed = await api.must("POST", "/me/orders", _order_body(
            slug, BuyerPlan(buyer.index, ((sku, 1),), NONE), None), api.as_buyer(buyer.user_id))
        if await arrivals.settle(lambda: placed["id"] in arrivals.cards, 1):
            times["card"].append(arrivals.cards[placed["id"]][0][2] - start)

    for n, buyer in enumerate(buyers):
        steps = (claim, order) if n % 2 else (order, claim)
        for step in steps:
            await step(buyer)
    return times


async def _run(network: Any, buyers_wanted: int, *,
               before_burst: Callable[[], None] = lambda: None,
               ) -> tuple[dict[str, Any], list[str]]:
    config, hs = network.config, network.hs_url
    plans = plan_orders(buyers_wanted)
    stock = initial_stock(plans)
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        api = Api(http, network)
        set_up = time.monotonic()
        tokens = await register_many(http, hs, config.synapse.registration_shared_secret,
                                     "ob", buyers_wanted + 1)
        owner, *names = tokens
        buyers = [Buyer(n, f"@{name}:{config.server_name}", tokens[name])
                  for n, name in enumerate(names)]
        slug = await _open_shop(api, f"@{owner}:{config.server_name}", stock)
        await _open_dms(http, hs, buyers, f"@shop_{slug}:{config.server_name}")
        arrivals = Arrivals()
        watches = await _start_watches(http, hs, buyers, arrivals)
        set_up = time.monotonic() - set_up
        try:
            first = await _claims(api, buyers, await _coupon(api, slug, "Spring drop", len(
                buyers)), "Spring drop", arrivals)
            codes = {u: c for u, c in network.rows(
                "commerce", "SELECT user_id, code FROM coupon_code WHERE merchant_slug=?",
                slug)}
            before_burst()  # bench.profile starts sampling here
            attempts, seconds = await _place_all(api, slug, buyers, plans, codes)
            accepted = {a.order_id: a for a in attempts if a.status == 201}
            await arrivals.settle(lambda: sum(o in arrivals.cards for o in accepted),
                                  len(accepted))
            after = await _claims(api, buyers, await _coupon(api, slug, "Summer drop", len(
                buyers)), "Summer drop", arrivals)
            await asyncio.sleep(2.0)  # a card sent twice would arrive by now
            ledger = _ledger(network, slug, stock, set(accepted), arrivals,
                             {b.user_id: b.dm for b in buyers})
            calm = await _one_at_a_time(
                api, slug, [b for b, p in zip(buyers, plans, strict=True)
                            if p.coupon == NONE][:CALM_SAMPLES],
                dict(ledger.remaining), arrivals)
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
    problems = audit(ledger)
    problems += [f"order by {a.buyer.user_id} failed: HTTP {a.status} {a.error}"
                 for a in attempts if a.status >= 500 or a.status == 0]
    card_latency = [arrivals.cards[o][0][2] - a.started for o, a in accepted.items()
                    if o in arrivals.cards]
    dm_latency = first.pop("latencies") + after.pop("latencies")
    orders_per_s = round(len(accepted) / seconds, 1)
    result = {
        "name": "order burst", "buyers": len(buyers), "products": PRODUCTS,
        "concurrency": CONCURRENCY, "attempts": len(attempts), "accepted": len(accepted),
        "seconds": round(seconds, 2), "orders_per_s": orders_per_s,
        "outcomes": _outcomes(attempts),
        "stock": {"initial_units": sum(stock.values()), "demand_units": sum(
            demand(plans).values()), "sold_units": sum(ledger.sold.values()),
            "products_sold_out": sum(1 for q in ledger.remaining.values() if q == 0),
            "scarce_products": SCARCE,
            "scarce_stock_units": sum(stock[sku(n)] for n in range(SCARCE)),
            "scarce_demand_units": sum(demand(plans)[sku(n)] for n in range(SCARCE))},
        "codes_spent": len(ledger.order_codes),
        **_compare("", card_latency, dm_latency),
        **_compare("calm_", calm["card"], calm["dm"]),
        "cards_missing": sum(1 for o in accepted if ledger.cards.get(o, 0) == 0),
        "reference_claims": {"before": first, "after": after},
        "orders_per_s_vs_claims_per_s": round(
            orders_per_s / statistics.mean([first["per_s"], after["per_s"]]), 3),
        "checks": {"oversold": sum(1 for p in problems if "oversold" in p),
                   "codes_spent_twice": sum(1 for p in problems if p.startswith("code ") and
                                            " spent on " in p),
                   "problems": problems[:50]},
        "setup_seconds": round(set_up, 1),
        "samples_ms": {name: [round(x * 1000, 1) for x in samples] for name, samples in (
            ("card", card_latency), ("dm", dm_latency), ("calm_card", calm["card"]),
            ("calm_dm", calm["dm"]))},
    }
    return result, problems


def _compare(prefix: str, cards: list[float], dms: list[float]) -> dict[str, Any]:
    card, dm = percentiles(cards), percentiles(dms)
    ratios = {f"{prefix}card_{p}_ratio": round(card[f"{p}_ms"] / dm[f"{p}_ms"], 2)
              if f"{p}_ms" in card and f"{p}_ms" in dm else None for p in ("p50", "p95")}
    return {f"{prefix}card_latency": card, f"{prefix}dm_latency": dm, **ratios}


async def _start_watches(http: aiohttp.ClientSession, hs: str, buyers: list[Buyer],
                         arrivals: Arrivals) -> list[asyncio.Task[None]]:
    """Every buyer's /sync loop, from now on."""
    limit = asyncio.Semaphore(16)

    async def since(buyer: Buyer) -> str:
        async with limit, http.get(f"{hs}/_matrix/client/v3/sync", params={
                "timeout": "0", "filter": SYNC_FILTER},
                headers={"Authorization": f"Bearer {buyer.token}"}) as resp:
            return str((await resp.json())["next_batch"])

    sinces = await asyncio.gather(*(since(b) for b in buyers))
    return [asyncio.create_task(_watch(http, hs, b, s, arrivals))
            for b, s in zip(buyers, sinces, strict=True)]


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    with bench_network(workdir, database) as network:
        result, problems = asyncio.run(_run(network, 100 if quick else 1000))
    goals = {f"card p50 <= 3x DM p50{when}": result[f"{prefix}card_p50_ratio"] is not None
             and result[f"{prefix}card_p50_ratio"] <= GOALS["card_p50_ratio"]
             for prefix, when in (("", " (burst)"), ("calm_", " (one at a time)"))}
    if database == "postgres":
        goals["orders/s >= 50"] = result["orders_per_s"] >= GOALS["orders_per_s_postgres"]
    result.update(database=database, goals=goals)
    if problems:
        print(json.dumps({k: v for k, v in result.items() if k != "samples_ms"}, indent=2))
        raise BenchmarkFailed(f"the order burst broke {len(problems)} promise(s): "
                              + "; ".join(problems[:10]))
    return result


def _goal(r: dict[str, Any], word: str) -> str:
    picked = {k: v for k, v in r["goals"].items() if word in k}
    return ", ".join(f"{k}: {'yes' if v else '**NO**'}" for k, v in picked.items()) or "—"


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The benchmark page's lines for one result (bench/__main__.py)."""
    card, dm, claims = r["card_latency"], r["dm_latency"], r["reference_claims"]
    calm, calm_dm, s = r["calm_card_latency"], r["calm_dm_latency"], r["stock"]
    checks = r["checks"]
    return [
        (f"order burst: {r['buyers']:,} buyers, {r['attempts']:,} orders placed "
         f"{r['concurrency']} at a time across {r['products']} products; order card until "
         "the buyer's /sync has it",
         f"card p50 {card.get('p50_ms')} ms, p95 {card.get('p95_ms')} ms "
         f"({card['samples']} cards)",
         f"coupon code DM from the shop (claim, same outbox), same buyers, same burst: p50 "
         f"{dm.get('p50_ms')} ms, p95 {dm.get('p95_ms')} ms ({dm['samples']} DMs)",
         f"p50 {r['card_p50_ratio']}×, p95 {r['card_p95_ratio']}×", _goal(r, "(burst)")),
        ("order card one at a time (each buyer's next request when its card or DM arrived; "
         "the same buyers, after the burst)",
         f"card p50 {calm.get('p50_ms')} ms, p95 {calm.get('p95_ms')} ms "
         f"({calm['samples']} cards)",
         f"coupon code DM, interleaved: p50 {calm_dm.get('p50_ms')} ms, p95 "
         f"{calm_dm.get('p95_ms')} ms ({calm_dm['samples']} DMs)",
         f"p50 {r['calm_card_p50_ratio']}×, p95 {r['calm_card_p95_ratio']}×",
         _goal(r, "one at a time")),
        (f"order burst throughput ({r['accepted']:,} accepted; {s['products_sold_out']} "
         f"products sold out, the {s['scarce_products']} scarce ones stocked "
         f"{s['scarce_stock_units']:,} units for {s['scarce_demand_units']:,} asked; "
         f"{r['codes_spent']} codes spent; checked: {checks['oversold']} oversold, "
         f"{checks['codes_spent_twice']} codes spent twice, {r['cards_missing']} cards "
         "missing)",
         f"{r['orders_per_s']} orders/s ({r['seconds']} s)",
         f"coupon claims, same buyers and concurrency: {claims['before']['per_s']} and "
         f"{claims['after']['per_s']} claims/s (before, after)",
         f"{r['orders_per_s_vs_claims_per_s']}", _goal(r, "orders/s")),
    ]
