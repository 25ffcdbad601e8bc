"""The order burst's checks (bench/order_plan.py) on crafted data: each broken promise is
named, so the benchmark cannot pass while selling beyond stock, spending a code twice or
losing a card."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.order_plan import (
    OTHERS,
    OWN,
    PRODUCTS,
    SCARCE,
    TWICE,
    Ledger,
    audit,
    demand,
    initial_stock,
    plan_orders,
    sku,
)

ANN, BOB = "@ann:localhost", "@bob:localhost"


def kept(**changes: Any) -> Ledger:
    """A burst that kept every promise: 5 lamps, 3 sold in two orders, Ann's code spent."""
    ledger = Ledger(
        initial={"lamp": 5, "mug": 2}, remaining={"lamp": 2, "mug": 2}, sold={"lamp": 3},
        orders={"A1", "B2"}, accepted={"A1", "B2"},
        order_codes=[("A1", ANN, "ANNCODE")], codes={"ANNCODE": (ANN, "A1")},
        cards=Counter({"A1": 1, "B2": 1}))
    for name, value in changes.items():
        setattr(ledger, name, value)
    return ledger


def test_a_burst_that_kept_its_promises_has_no_problem() -> None:
    assert audit(kept()) == []


def test_selling_beyond_the_stock_is_named() -> None:
    problems = audit(kept(sold={"lamp": 6}, remaining={"lamp": -1, "mug": 2}))
    assert "lamp oversold: 6 sold of 5" in problems


def test_stock_that_does_not_add_up_is_named() -> None:
    # Nothing oversold, but a unit vanished: sold + left must be what was stocked.
    assert audit(kept(remaining={"lamp": 1, "mug": 2})) == [
        "lamp: 3 sold + 1 left != 5 in stock"]
    assert audit(kept(remaining={"lamp": 2})) == ["mug: 0 sold + None left != 2 in stock"]
    assert audit(kept(sold={"lamp": 3, "ghost": 1})) == ["ghost sold but never stocked"]


def test_a_code_spent_on_two_orders_is_named() -> None:
    problems = audit(kept(order_codes=[("A1", ANN, "ANNCODE"), ("B2", ANN, "ANNCODE")]))
    assert "code ANNCODE spent on 2 orders" in problems
    assert "order B2 spent ANNCODE, recorded on order A1" in problems


def test_another_buyers_code_is_named() -> None:
    problems = audit(kept(order_codes=[("A1", ANN, "ANNCODE"), ("B2", BOB, "BOBCODE")],
                          codes={"ANNCODE": (ANN, "A1"), "BOBCODE": (ANN, "B2")}))
    assert problems == [f"order B2 of {BOB} spent BOBCODE, which is {ANN}'s"]


def test_a_code_marked_spent_without_its_order_is_named() -> None:
    problems = audit(kept(codes={"ANNCODE": (ANN, "A1"), "LOST": (BOB, "B2")}))
    assert problems == ["code LOST marked spent on B2, which does not carry it"]


def test_cards_missing_doubled_or_for_refused_orders_are_named() -> None:
    assert audit(kept(cards=Counter({"A1": 1}))) == ["order B2 got 0 cards"]
    assert audit(kept(cards=Counter({"A1": 2, "B2": 1}))) == ["order A1 got 2 cards"]
    assert audit(kept(cards=Counter({"A1": 1, "B2": 1, "C3": 1}))) == [
        "a card for order C3, which was refused"]


def test_orders_the_api_and_the_database_disagree_on_are_named() -> None:
    assert audit(kept(orders={"A1"})) == ["order B2 accepted but not in the database"]
    assert audit(kept(orders={"A1", "B2", "C3"})) == [
        "order C3 in the database but refused to its buyer"]


def test_the_plan_sells_out_some_products_and_tries_every_coupon_trick() -> None:
    plans = plan_orders(100)
    assert plan_orders(100) == plans  # the same burst in every run
    stock, wanted = initial_stock(plans), demand(plans)
    assert len(stock) == PRODUCTS
    scarce = [sku(n) for n in range(SCARCE)]
    assert all(stock[s] < wanted[s] for s in scarce if wanted[s] > 1)
    assert all(stock[s] > wanted[s] for s in stock if s not in scarce)
    kinds = Counter(p.coupon for p in plans)
    assert kinds[OWN] == 30 and kinds[OTHERS] == 10 and kinds[TWICE] == 10
    spenders = {p.index for p in plans if p.coupon == OWN}
    assert all(p.victim in spenders for p in plans if p.coupon == OTHERS)
    assert all(1 <= q <= 3 for p in plans for _, q in p.items)
