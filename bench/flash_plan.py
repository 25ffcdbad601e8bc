"""The flash sale's checks, pure: what a busy hour must not break, and `flash_audit`.

`flash_audit` reads what the sale left (the coupon's codes in the commerce database, the
DMs each claimer's and buyer's /sync received, counted by kind and by marker, and the
order burst's `Ledger`) and names every broken promise: more or fewer codes than the
stock, a follower with two codes, a code for someone who never claimed, a claimer told
twice or never, a product sold beyond its stock, an order card missing or doubled, a
plain DM lost or doubled. bench/flash_sale.py fails the run on any; tests feed it
crafted data so that the checks cannot pass silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.order_plan import Ledger, audit


@dataclass
class FlashLedger:
    """What the flash sale left, read back from the commerce database and the /syncs."""

    stock: int  # the coupon's codes
    claimers: set[str]  # followers who reacted 🎟️
    issued: list[tuple[str, str]]  # (code, user) rows of the coupon
    code_dms: Counter[str] = field(default_factory=Counter)  # user → "Your code" DMs
    refusal_dms: Counter[str] = field(default_factory=Counter)  # user → "Sorry" DMs
    markers_sent: set[str] = field(default_factory=set)  # plain DMs sent, by marker
    markers_seen: Counter[str] = field(default_factory=Counter)  # marker → receptions
    orders: Ledger | None = None


def flash_audit(ledger: FlashLedger) -> list[str]:
    """Every broken promise, in words; empty when the sale kept them all."""
    problems = []
    if len(ledger.issued) != ledger.stock:
        problems.append(f"{len(ledger.issued)} codes issued for a stock of {ledger.stock}")
    per_user = Counter(user for _, user in ledger.issued)
    problems += [f"{user} holds {n} codes" for user, n in sorted(per_user.items()) if n > 1]
    problems += [f"{user} got a code without claiming" for user in sorted(per_user)
                 if user not in ledger.claimers]
    for user in sorted(ledger.claimers | set(ledger.code_dms) | set(ledger.refusal_dms)):
        codes, refusals = ledger.code_dms.get(user, 0), ledger.refusal_dms.get(user, 0)
        if user in per_user and (codes, refusals) != (1, 0):
            problems.append(f"{user} holds a code and got {codes} code DMs, {refusals} "
                            "refusals")
        elif user not in per_user and (codes, refusals) != (0, 1):
            problems.append(f"{user} holds no code and got {codes} code DMs, {refusals} "
                            "refusals")
    for marker in sorted(ledger.markers_sent | set(ledger.markers_seen)):
        seen = ledger.markers_seen.get(marker, 0)
        if marker not in ledger.markers_sent:
            problems.append(f"plain DM {marker} received but never sent")
        elif seen != 1:
            problems.append(f"plain DM {marker} received {seen} times")
    if ledger.orders is not None:
        problems += audit(ledger.orders)
    return problems
