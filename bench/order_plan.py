"""The order burst's plan and its checks, pure: who orders what, the stock, and `audit`.

`audit` reads what a burst left (stock, orders, spent codes, the cards the buyers' /sync
received) and names every broken promise: a product sold beyond its stock, a code spent
twice or on another buyer's order, an accepted order without exactly one card, a card
for a refused order. bench/orders.py fails the benchmark on any; tests feed it crafted
data so that the checks themselves cannot pass silently.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PRODUCTS = 20
SCARCE = 5  # the first five products get half of what is asked for
# What each buyer does with a coupon code at checkout.
NONE, OWN, OTHERS, TWICE = "none", "own", "another buyer's", "own, twice at once"


@dataclass(frozen=True)
class BuyerPlan:
    index: int
    items: tuple[tuple[str, int], ...]
    coupon: str  # NONE, OWN, OTHERS, TWICE
    victim: int | None = None  # whose code an OTHERS buyer tries


def sku(n: int) -> str:
    return f"burst-{n:02d}"


def plan_orders(buyers: int, seed: int = 17) -> list[BuyerPlan]:
    """One or two lines per order (1-3 of each), and what each buyer does with a code:
    half none, 30 % their own, 10 % another's (a buyer who spends their own), 10 % their
    own on two orders sent at once."""
    rng = random.Random(seed)
    kinds = [NONE] * 50 + [OWN] * 30 + [OTHERS] * 10 + [TWICE] * 10
    plans = []
    for n in range(buyers):
        lines = rng.sample(range(PRODUCTS), rng.choice((1, 1, 2)))
        items = tuple((sku(p), rng.randint(1, 3)) for p in sorted(lines))
        plans.append(BuyerPlan(n, items, kinds[n % len(kinds)]))
    spenders = [p.index for p in plans if p.coupon == OWN] or [0]
    return [BuyerPlan(p.index, p.items, p.coupon, rng.choice(spenders))
            if p.coupon == OTHERS else p for p in plans]


def demand(plans: list[BuyerPlan]) -> Counter[str]:
    wanted: Counter[str] = Counter()
    for plan in plans:
        for name, quantity in plan.items:
            wanted[name] += quantity * (2 if plan.coupon == TWICE else 1)
    return wanted


def initial_stock(plans: list[BuyerPlan]) -> dict[str, int]:
    """The scarce products: half of what is asked; the others: more than enough."""
    wanted = demand(plans)
    return {sku(n): max(1, wanted[sku(n)] // 2) if n < SCARCE else wanted[sku(n)] + 10
            for n in range(PRODUCTS)}


@dataclass
class Ledger:
    """What the burst left, read back from the commerce database and the buyers' /sync."""

    initial: dict[str, int]  # sku → stock before the burst
    remaining: dict[str, int]  # sku → stock now
    sold: dict[str, int]  # sku → units in the shop's orders
    orders: set[str]  # order IDs in the database
    accepted: set[str]  # order IDs the API answered 201 with
    order_codes: list[tuple[str, str, str]]  # (order ID, buyer, code) of orders with a code
    codes: dict[str, tuple[str, str | None]]  # spent code → (its owner, its order ID)
    cards: Counter[str] = field(default_factory=Counter)  # order ID → cards in buyers' /sync


def audit(ledger: Ledger) -> list[str]:
    """Every broken promise, in words; empty when the burst kept them all."""
    problems = []
    for name, stock in sorted(ledger.initial.items()):
        sold, left = ledger.sold.get(name, 0), ledger.remaining.get(name)
        if sold > stock:
            problems.append(f"{name} oversold: {sold} sold of {stock}")
        if left is None or sold + left != stock:
            problems.append(f"{name}: {sold} sold + {left} left != {stock} in stock")
    problems += [f"{name} sold but never stocked" for name in sorted(ledger.sold)
                 if name not in ledger.initial]
    spent = Counter(code for _, _, code in ledger.order_codes)
    problems += [f"code {code} spent on {n} orders" for code, n in sorted(spent.items())
                 if n > 1]
    for order_id, buyer, code in ledger.order_codes:
        owner, recorded = ledger.codes.get(code, (None, None))
        if owner != buyer:
            problems.append(f"order {order_id} of {buyer} spent {code}, which is {owner}'s")
        if recorded != order_id:
            problems.append(f"order {order_id} spent {code}, recorded on order {recorded}")
    problems += [f"code {code} marked spent on {order_id}, which does not carry it"
                 for code, (_, order_id) in sorted(ledger.codes.items())
                 if order_id is not None and spent[code] == 0]
    problems += [f"order {o} accepted but not in the database"
                 for o in sorted(ledger.accepted - ledger.orders)]
    problems += [f"order {o} in the database but refused to its buyer"
                 for o in sorted(ledger.orders - ledger.accepted)]
    for order_id in sorted(ledger.accepted | set(ledger.cards)):
        count = ledger.cards.get(order_id, 0)
        if order_id not in ledger.accepted:
            problems.append(f"a card for order {order_id}, which was refused")
        elif count != 1:
            problems.append(f"order {order_id} got {count} cards")
    return problems


def percentiles(samples: list[float]) -> dict[str, Any]:
    if len(samples) < 2:
        return {"samples": len(samples)}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1),
            "samples": len(samples)}


