"""Flash sale: a shop's busiest hour — a coupon drop and a sale to F followers, claimed and
ordered at once, against a plain DM round trip in the same network and run.

Set-up (not timed): one approved shop whose channel F followers join (1,000 quick,
10,000 full); a sale product stocked with half of what will be ordered; every claimer and
buyer (40 % of the followers) in a DM they opened with the shop's account, and a pair of
users in a plain DM (the reference); every one of them has a long-poll /sync running.

Measured:
- the reference: a plain DM from one user to another until the receiver's /sync has it,
  one at a time, before the sale (and during it, for context);
- the shop posts a coupon drop (stock F/10) and a sale post at once; each post until
  sampled followers' /sync has it;
- as soon as the post is in a follower's timeline, 30 % of the followers react 🎟️ to it
  (a client's reaction, sent to Synapse: commerce claims the code from the reaction) and
  10 % place an order of the sale product through the commerce API, as the shop bot does
  for `order` (`POST /me/orders` on the buyer's behalf), CLAIM_CONCURRENCY requests of
  each in flight; claim until the personal code (or the "sold out" note) is in the
  claimer's DM; orders per second and each order card until the buyer's /sync has it.

Checked (`flash_audit`, pure, and the order burst's `audit`): codes issued == stock, no
follower with two codes, every claimer told exactly once, nothing oversold, one card per
accepted order, every plain DM received exactly once. Any problem fails the run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.common import bench_network, register_many
from bench.flash_plan import FlashLedger, flash_audit
from bench.order_plan import NONE, BuyerPlan, percentiles
from bench.orders import (
    Api,
    Arrivals,
    BenchmarkFailed,
    Buyer,
    _claims,
    _coupon,
    _ledger,
    _open_dms,
    _open_shop,
    _outcomes,
    _place_all,
    _pool,
    _start_watches,
    shop_joined,
)
from mercato.logging import get_logger

log = get_logger(__name__)
CONCURRENCY = 50
SAMPLED = 10
REFERENCE_SAMPLES = 20
SALE_SKU = "flash-01"
COUPON = "Flash drop"
API_COUPON = "Flash drop, by command"
FOLLOWERS = {True: 1000, False: 10_000}  # quick, full
GOALS = {"claim_p95_ratio": 5.0, "card_p95_ratio": 5.0}


class FlashArrivals(Arrivals):
    """The order burst's arrivals, plus counts: code DMs, refusals and markers per user."""

    def __init__(self) -> None:
        super().__init__()
        self.code_dms: Counter[str] = Counter()
        self.refusals: dict[str, list[float]] = {}
        self.markers: dict[str, list[tuple[str, str, float]]] = {}  # marker → seen
        self.post_events: dict[str, str] = {}  # marker → event ID in the channel

    def note(self, buyer: str, room_id: str, event: dict[str, Any], at: float) -> None:
        super().note(buyer, room_id, event, at)
        body = str((event.get("content") or {}).get("body", ""))
        if body.startswith(f"🎟️ Your code for \"{COUPON}\""):
            self.code_dms[buyer] += 1
        elif body.startswith("Sorry: "):
            self.refusals.setdefault(buyer, []).append(at)
        for marker in _markers(body):
            self.markers.setdefault(marker, []).append((buyer, room_id, at))
            self.post_events.setdefault(marker, str(event.get("event_id", "")))


def _markers(body: str) -> list[str]:
    return [part.split("]")[0] for part in body.split("[flash:")[1:]]


async def _send(http: aiohttp.ClientSession, hs: str, token: str, room_id: str,
                event_type: str, content: dict[str, Any]) -> None:
    async with http.put(f"{hs}/_matrix/client/v3/rooms/{quote(room_id)}/send/{event_type}/"
                        f"f{uuid.uuid4().hex}", json=content,
                        headers={"Authorization": f"Bearer {token}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"send {event_type}: {resp.status} {await resp.text()}")


async def _channel(api: Api, slug: str) -> str:
    for _ in range(300):
        channels = (await api.must("GET", f"/shops/{slug}/channels"))["channels"]
        if channels:
            return str(channels[0]["room_id"])
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the shop {slug} never got a channel")


async def _follow(http: aiohttp.ClientSession, hs: str, channel: str,
                  tokens: list[str]) -> None:
    async def join(token: str) -> None:
        async with http.post(f"{hs}/_matrix/client/v3/join/{quote(channel)}", json={},
                             headers={"Authorization": f"Bearer {token}"}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"join: {resp.status} {await resp.text()}")

    await _pool([lambda t=t: join(t) for t in tokens], 16)


async def _open_shop_dms(http: aiohttp.ClientSession, hs: str, people: list[Buyer],
                         shop: str) -> None:
    """The order burst's DMs with the shop; on the scale profile the shop's joins can lag
    minutes behind the invites (set-up, not the measure): wait up to ten minutes more."""
    try:
        await _open_dms(http, hs, people, shop)
        return
    except RuntimeError as e:
        log.warning("flash.dms_slow", error=str(e))
    waiting, deadline = list(people), time.monotonic() + 600
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{shop} did not join {len(waiting)} buyers' DMs")
        await asyncio.sleep(2.0)
        waiting = [p for p in waiting if not await shop_joined(http, hs, p, shop)]


async def _plain_dm(http: aiohttp.ClientSession, hs: str, sender: Buyer,
                    receiver: Buyer) -> str:
    """A DM between two people: one invites, the other joins."""
    async with http.post(f"{hs}/_matrix/client/v3/createRoom", json={
            "invite": [receiver.user_id], "is_direct": True, "preset": "trusted_private_chat"},
            headers={"Authorization": f"Bearer {sender.token}"}) as resp:
        room_id = str((await resp.json())["room_id"])
    async with http.post(f"{hs}/_matrix/client/v3/join/{quote(room_id)}", json={},
                         headers={"Authorization": f"Bearer {receiver.token}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"join the plain DM: {resp.status} {await resp.text()}")
    return room_id


class Reference:
    """Plain DMs from one user to another, each until the receiver's /sync has it."""

    def __init__(self, http: aiohttp.ClientSession, hs: str, sender: Buyer, receiver: Buyer,
                 arrivals: FlashArrivals) -> None:
        self.http, self.hs, self.arrivals = http, hs, arrivals
        self.sender, self.receiver = sender, receiver
        self.sent: set[str] = set()

    async def one(self) -> float:
        marker = f"dm{uuid.uuid4().hex[:10]}"
        self.sent.add(marker)
        start = time.monotonic()
        await _send(self.http, self.hs, self.sender.token, self.sender.dm, "m.room.message",
                    {"msgtype": "m.text", "body": f"see you at 6 [flash:{marker}]"})
        await self.arrivals.settle(lambda: marker in self.arrivals.markers, 1)
        return self.arrivals.markers[marker][0][2] - start if marker in \
            self.arrivals.markers else float("nan")

    async def until(self, done: asyncio.Event) -> list[float]:
        samples = []
        while not done.is_set():
            samples.append(await self.one())
            await asyncio.sleep(0.5)
        return samples


async def _post(api: Api, slug: str, kind: str, fields: dict[str, Any],
                coupon: dict[str, Any] | None = None) -> tuple[float, dict[str, Any]]:
    body: dict[str, Any] = {"kind": kind, "fields": fields}
    if coupon:
        body["coupon"] = coupon
    campaign = await api.must("POST", f"/shops/{slug}/campaigns", body)
    start = time.monotonic()
    await api.must("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule")
    return start, campaign


async def _visible(arrivals: FlashArrivals, marker: str, sampled: set[str],
                   start: float) -> list[float]:
    await arrivals.settle(lambda: len({b for b, _, _ in arrivals.markers.get(marker, [])}
                                      & sampled), len(sampled))
    return [at - start for b, _, at in arrivals.markers.get(marker, []) if b in sampled]


async def _sale(network: Any, followers: int) -> tuple[dict[str, Any], list[str]]:
    config, hs = network.config, network.hs_url
    n_claim, n_order = followers * 3 // 10, followers // 10
    stock = {SALE_SKU: max(1, n_order // 2)}
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        api = Api(http, network)
        set_up = time.monotonic()
        tokens = await register_many(http, hs, config.synapse.registration_shared_secret,
                                     "fs", followers + 3, concurrency=16)
        owner, *names = tokens
        people = [Buyer(n, f"@{name}:{config.server_name}", tokens[name])
                  for n, name in enumerate(names)]
        slug = await _open_shop(api, f"@{owner}:{config.server_name}", stock)
        channel = await _channel(api, slug)
        await _follow(http, hs, channel, [p.token for p in people[:followers]])
        claimers, buyers = people[:n_claim], people[n_claim:n_claim + n_order]
        sender, receiver = people[followers], people[followers + 1]
        await _open_shop_dms(http, hs, claimers + buyers, f"@shop_{slug}:{config.server_name}")
        sender.dm = receiver.dm = await _plain_dm(http, hs, sender, receiver)
        arrivals = FlashArrivals()
        watches = await _start_watches(http, hs, claimers + buyers + [receiver], arrivals)
        reference = Reference(http, hs, sender, receiver, arrivals)
        set_up = time.monotonic() - set_up
        try:
            idle = [await reference.one() for _ in range(REFERENCE_SAMPLES)]
            result, accepted, attempts = await _burst(
                api, slug, arrivals, reference, claimers, buyers, max(1, followers // 10), stock)
            await asyncio.sleep(2.0)  # a message sent twice would arrive by now
            order_ledger = _ledger(network, slug, stock, set(accepted), arrivals,
                                   {b.user_id: b.dm for b in buyers})
            issued = network.rows("commerce", "SELECT c.code, c.user_id FROM coupon_code c "
                                  "JOIN coupon k ON k.id = c.coupon_id WHERE k.title = ? "
                                  "AND c.merchant_slug = ?", COUPON, slug)
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
    ledger = FlashLedger(
        stock=result["coupon_stock"], claimers={c.user_id for c in claimers},
        issued=[(str(c), str(u)) for c, u in issued], code_dms=arrivals.code_dms,
        refusal_dms=Counter({u: len(v) for u, v in arrivals.refusals.items()}),
        markers_sent=reference.sent,
        markers_seen=Counter({m: len(v) for m, v in arrivals.markers.items()
                              if m.startswith("dm")}),
        orders=order_ledger)
    problems = flash_audit(ledger)
    problems += [f"order by {a.buyer.user_id} failed: HTTP {a.status} {a.error}"
                 for a in attempts if a.status >= 500 or a.status == 0]
    dm = percentiles(idle)
    result.update(
        followers=followers, claimers=n_claim, buyers=n_order, concurrency=CONCURRENCY,
        dm_latency=dm, setup_seconds=round(set_up, 1),
        codes_issued=len(issued), sold_units=sum(order_ledger.sold.values()),
        checks={"problems": problems[:50], "codes_issued": len(issued),
                "followers_with_two_codes": sum(1 for n in Counter(
                    u for _, u in issued).values() if n > 1),
                "oversold": sum(1 for p in problems if "oversold" in p),
                "messages_lost_or_doubled": sum(1 for p in problems if "DM" in p or "card"
                                                in p)})
    for name in ("claim", "card"):
        mine = result[f"{name}_latency"]
        for p in ("p50", "p95"):
            result[f"{name}_{p}_ratio"] = (round(mine[f"{p}_ms"] / dm[f"{p}_ms"], 2)
                                           if f"{p}_ms" in mine and f"{p}_ms" in dm else None)
    result["samples_ms"]["dm_idle"] = [round(x * 1000, 1) for x in idle]
    return result, problems


async def _burst(api: Api, slug: str, arrivals: FlashArrivals, reference: Reference,
                 claimers: list[Buyer], buyers: list[Buyer], coupon_stock: int,
                 stock: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """Both posts at once; claims and orders as soon as the coupon post is visible."""
    coupon_marker, sale_marker = f"post{uuid.uuid4().hex[:8]}", f"post{uuid.uuid4().hex[:8]}"
    sampled = {c.user_id for c in claimers[:SAMPLED]}
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    coupon_start, _ = await _post(api, slug, "coupon", {
        "title": COUPON, "text": f"First come, first served [flash:{coupon_marker}]"},
        {"stock": coupon_stock, "expires_at": expires, "percent_off": 10})
    sale_start, _ = await _post(api, slug, "sale", {
        "title": "Trail sock sale", "discount": "30 % off",
        "text": f"Only a few left [flash:{sale_marker}]"})
    await arrivals.settle(lambda: coupon_marker in arrivals.post_events, 1)
    post_event = arrivals.post_events[coupon_marker]
    channel = next(room for b, room, _ in arrivals.markers[coupon_marker])
    started: dict[str, float] = {}

    def claim(c: Buyer) -> Any:
        async def react() -> None:
            started[c.user_id] = time.monotonic()
            await _send(api.http, reference.hs, c.token, channel, "m.reaction", {
                "m.relates_to": {"rel_type": "m.annotation", "event_id": post_event,
                                 "key": "🎟️"}})
        return react

    done = asyncio.Event()
    during = asyncio.create_task(reference.until(done))
    plans = [BuyerPlan(b.index, ((SALE_SKU, 1),), NONE) for b in buyers]
    claim_seconds, (attempts, order_seconds) = await asyncio.gather(
        _pool([claim(c) for c in claimers], CONCURRENCY),
        _place_all(api, slug, buyers, plans, {}))
    accepted = {a.order_id: a for a in attempts if a.status == 201}
    await arrivals.settle(lambda: sum(1 for c in claimers if arrivals.code_dms[c.user_id]
                                      or c.user_id in arrivals.refusals), len(claimers))
    await arrivals.settle(lambda: sum(o in arrivals.cards for o in accepted), len(accepted))
    done.set()
    dm_during = await during
    # The same claimers claim a second drop through the API, as the shop bot's `claim`
    # does: no event in the channel, only the code's DM.
    by_api = await _claims(api, claimers, await _coupon(api, slug, API_COUPON, len(claimers)),
                           API_COUPON, arrivals)
    api_latency = by_api.pop("latencies")
    coupon_seen = await _visible(arrivals, coupon_marker, sampled, coupon_start)
    sale_seen = await _visible(arrivals, sale_marker, sampled, sale_start)
    claim_latency = [arrivals.codes[(c.user_id, COUPON)] - started[c.user_id]
                     for c in claimers if (c.user_id, COUPON) in arrivals.codes]
    refusal_latency = [arrivals.refusals[c.user_id][0] - started[c.user_id]
                       for c in claimers if c.user_id in arrivals.refusals]
    answered = [arrivals.codes.get((c.user_id, COUPON)) or arrivals.refusals[c.user_id][0]
                for c in claimers if (c.user_id, COUPON) in arrivals.codes
                or c.user_id in arrivals.refusals]
    handled_seconds = max(answered, default=0.0) - min(started.values(), default=0.0)
    card_latency = [arrivals.cards[o][0][2] - a.started for o, a in accepted.items()
                    if o in arrivals.cards]
    return {
        "name": "flash sale", "coupon_stock": coupon_stock, "sale_stock": stock[SALE_SKU],
        "post_visible": {"coupon": percentiles(coupon_seen), "sale": percentiles(sale_seen)},
        "claim_seconds": round(claim_seconds, 2),
        "reactions_per_s": round(len(claimers) / claim_seconds, 1),
        "claims_per_s": round(len(answered) / handled_seconds, 1) if answered else 0.0,
        "claim_latency": percentiles(claim_latency),
        "refusal_latency": percentiles(refusal_latency),
        "api_claims": {**by_api, "latency": percentiles(api_latency)},
        "orders_seconds": round(order_seconds, 2), "attempts": len(attempts),
        "accepted": len(accepted), "orders_per_s": round(len(attempts) / order_seconds, 1),
        "outcomes": _outcomes(attempts), "card_latency": percentiles(card_latency),
        "dm_during_latency": percentiles([x for x in dm_during if x == x]),
        "samples_ms": {name: [round(x * 1000, 1) for x in s] for name, s in (
            ("claim", claim_latency), ("api_claim", api_latency), ("card", card_latency),
            ("coupon_post", coupon_seen),
            ("dm_during", dm_during))},
    }, accepted, attempts


def run(workdir: Path, quick: bool, database: str = "sqlite",
        profile: str = "single") -> dict[str, Any]:
    with bench_network(workdir, database, profile=profile) as network:
        result, problems = asyncio.run(_sale(network, FOLLOWERS[quick]))
    result.update(database=database, profile=profile, goals={
        f"claim p95 <= {GOALS['claim_p95_ratio']:g}x DM p95": result["claim_p95_ratio"]
        is not None and result["claim_p95_ratio"] <= GOALS["claim_p95_ratio"],
        f"card p95 <= {GOALS['card_p95_ratio']:g}x DM p95": result["card_p95_ratio"]
        is not None and result["card_p95_ratio"] <= GOALS["card_p95_ratio"]})
    if problems:
        print(json.dumps({k: v for k, v in result.items() if k != "samples_ms"}, indent=2))
        raise BenchmarkFailed(f"the flash sale broke {len(problems)} promise(s): "
                              + "; ".join(problems[:10]))
    return result


def run_scale(workdir: Path, quick: bool) -> dict[str, Any]:
    """The scale profile (Synapse workers, PostgreSQL, Redis)."""
    return run(workdir, quick, "postgres", profile="scale")


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The benchmark page's lines for one result (bench/__main__.py)."""
    where = "scale profile" if r.get("profile") == "scale" else "single profile"
    dm, claim, card, seen = r["dm_latency"], r["claim_latency"], r["card_latency"], \
        r["post_visible"]["coupon"]
    c = r["checks"]
    api = r.get("api_claims", {}).get("latency", {})
    ref = f"plain DM between two users, same network: p50 {dm.get('p50_ms')} ms, p95 " \
          f"{dm.get('p95_ms')} ms"
    goals = {k: v for k, v in r["goals"].items()}
    lines = [
        (f"flash sale ({where}), {r['followers']:,} followers: coupon post until sampled "
         "followers' /sync has it", f"p50 {seen.get('p50_ms')} ms, p95 {seen.get('p95_ms')} "
         "ms", ref, "—", "—"),
        (f"flash sale ({where}): {r['claimers']:,} claims by 🎟️ reaction, {r['concurrency']} "
         f"in flight, until the code (stock {r['coupon_stock']:,}) or the sold-out note is "
         "in the claimer's DM",
         f"code p50 {claim.get('p50_ms')} ms, p95 {claim.get('p95_ms')} ms; "
         f"{r['claims_per_s']} claims answered/s; Synapse accepted the reactions at "
         f"{r.get('reactions_per_s')}/s", ref,
         f"p50 {r['claim_p50_ratio']}×, p95 {r['claim_p95_ratio']}×",
         ", ".join(f"{k}: {'yes' if v else '**NO**'}" for k, v in goals.items()
                   if k.startswith("claim"))),
    ]
    if "api_claims" in r:
        lines.append((
            f"flash sale ({where}), for comparison: the same {r['claimers']:,} claim a second "
         "drop through the API, as the shop bot's `claim` command does (no event in the "
         "channel), until the code is in their DM",
         f"code p50 {api.get('p50_ms')} ms, p95 {api.get('p95_ms')} ms; "
         f"{r['api_claims']['per_s']} claims/s", ref,
         f"p95 {round(api['p95_ms'] / dm['p95_ms'], 2) if 'p95_ms' in api else None}×", "—"))
    lines.append(
        (f"flash sale ({where}): {r['buyers']:,} orders of a product stocked "
         f"{r['sale_stock']:,} (API as the shop bot calls it), card until the buyer's /sync; "
         f"checked: {c['codes_issued']} codes for a stock of {r['coupon_stock']}, "
         f"{c['followers_with_two_codes']} followers with two codes, {c['oversold']} "
         f"oversold, {c['messages_lost_or_doubled']} messages lost or doubled",
         f"{r['orders_per_s']} orders/s ({r['accepted']} accepted); card p50 "
         f"{card.get('p50_ms')} ms, p95 {card.get('p95_ms')} ms", ref,
         f"p50 {r['card_p50_ratio']}×, p95 {r['card_p95_ratio']}×",
         ", ".join(f"{k}: {'yes' if v else '**NO**'}" for k, v in goals.items()
                   if k.startswith("card"))))
    return lines
