"""The flash sale benchmark's checks find every broken promise in crafted data.

`flash_audit` decides whether a run of bench/flash_sale.py fails; if it passed data
with too many codes, a follower with two, a doubled DM or an oversold product, the
benchmark would report a broken sale as a good one.
"""

from __future__ import annotations

from collections import Counter

from bench.flash_plan import FlashLedger, flash_audit
from bench.order_plan import Ledger

CLAIMERS = {"@a:x", "@b:x", "@c:x"}


def _orders(**changes: object) -> Ledger:
    ledger = Ledger(initial={"flash-01": 2}, remaining={"flash-01": 0},
                    sold={"flash-01": 2}, orders={"o1", "o2"}, accepted={"o1", "o2"},
                    order_codes=[], codes={}, cards=Counter({"o1": 1, "o2": 1}))
    for name, value in changes.items():
        setattr(ledger, name, value)
    return ledger


def _good(**changes: object) -> FlashLedger:
    ledger = FlashLedger(
        stock=2, claimers=set(CLAIMERS), issued=[("C1", "@a:x"), ("C2", "@b:x")],
        code_dms=Counter({"@a:x": 1, "@b:x": 1}), refusal_dms=Counter({"@c:x": 1}),
        markers_sent={"dm1", "dm2"}, markers_seen=Counter({"dm1": 1, "dm2": 1}),
        orders=_orders())
    for name, value in changes.items():
        setattr(ledger, name, value)
    return ledger


def test_a_sale_that_kept_every_promise_passes() -> None:
    assert flash_audit(_good()) == []


def test_more_codes_than_stock_fail() -> None:
    problems = flash_audit(_good(issued=[("C1", "@a:x"), ("C2", "@b:x"), ("C3", "@c:x")],
                                 code_dms=Counter({"@a:x": 1, "@b:x": 1, "@c:x": 1}),
                                 refusal_dms=Counter()))
    assert problems == ["3 codes issued for a stock of 2"]


def test_fewer_codes_than_stock_fail() -> None:
    problems = flash_audit(_good(issued=[("C1", "@a:x")], code_dms=Counter({"@a:x": 1}),
                                 refusal_dms=Counter({"@b:x": 1, "@c:x": 1})))
    assert problems == ["1 codes issued for a stock of 2"]


def test_a_follower_with_two_codes_fails() -> None:
    problems = flash_audit(_good(issued=[("C1", "@a:x"), ("C2", "@a:x")],
                                 code_dms=Counter({"@a:x": 1}),
                                 refusal_dms=Counter({"@b:x": 1, "@c:x": 1})))
    assert "@a:x holds 2 codes" in problems


def test_a_code_for_someone_who_never_claimed_fails() -> None:
    problems = flash_audit(_good(issued=[("C1", "@a:x"), ("C2", "@z:x")],
                                 code_dms=Counter({"@a:x": 1, "@z:x": 1}),
                                 refusal_dms=Counter({"@b:x": 1, "@c:x": 1})))
    assert "@z:x got a code without claiming" in problems


def test_a_code_dm_doubled_or_lost_fails() -> None:
    assert flash_audit(_good(code_dms=Counter({"@a:x": 2, "@b:x": 1}))) == [
        "@a:x holds a code and got 2 code DMs, 0 refusals"]
    assert flash_audit(_good(code_dms=Counter({"@a:x": 1}))) == [
        "@b:x holds a code and got 0 code DMs, 0 refusals"]


def test_a_claimer_told_nothing_or_twice_fails() -> None:
    assert flash_audit(_good(refusal_dms=Counter())) == [
        "@c:x holds no code and got 0 code DMs, 0 refusals"]
    assert flash_audit(_good(refusal_dms=Counter({"@c:x": 2}))) == [
        "@c:x holds no code and got 0 code DMs, 2 refusals"]


def test_a_plain_dm_lost_doubled_or_unknown_fails() -> None:
    assert flash_audit(_good(markers_seen=Counter({"dm1": 1}))) == [
        "plain DM dm2 received 0 times"]
    assert flash_audit(_good(markers_seen=Counter({"dm1": 1, "dm2": 2}))) == [
        "plain DM dm2 received 2 times"]
    assert flash_audit(_good(markers_seen=Counter({"dm1": 1, "dm2": 1, "dm9": 1}))) == [
        "plain DM dm9 received but never sent"]


def test_an_oversold_product_or_a_doubled_card_fails() -> None:
    oversold = flash_audit(_good(orders=_orders(sold={"flash-01": 3},
                                                remaining={"flash-01": 0})))
    assert "flash-01 oversold: 3 sold of 2" in oversold
    assert flash_audit(_good(orders=_orders(cards=Counter({"o1": 2, "o2": 1})))) == [
        "order o1 got 2 cards"]
    assert flash_audit(_good(orders=_orders(cards=Counter({"o1": 1})))) == [
        "order o2 got 0 cards"]
