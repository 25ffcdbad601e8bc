"""The console's rules without a server: the composer's form as the campaign API's body and
times typed in the shop's timezone, the catalog's bulk changes (a percentage rounded to the
cent, never a negative or vanished price), and the dashboard's chart columns."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from multidict import MultiDict

from appservices.commerce.catalog.products import Product
from appservices.commerce.web.console_campaign_rules import (
    draft_body,
    input_time,
    local_time,
    shop_timezone,
    shown_time,
)
from appservices.commerce.web.console_catalog import (
    bulk_changes,
    form_quantity,
    percent_price,
    row_changes,
)
from appservices.commerce.web.console_dashboard import chart_data, chosen_days
from mercato.values import InvalidValue

PARIS = ZoneInfo("Europe/Paris")


def product(sku: str, price: str) -> Product:
    return Product(merchant_slug="tea", sku=sku, title=sku.title(), description="",
                   price=price, currency="EUR", original_price=None, image_mxc="",
                   image_info={}, url="", stock="in_stock", tags=[], created_at=0,
                   updated_at=0, quantity=None)


# -- the campaign composer -------------------------------------------------------------------

def test_the_shop_timezone_comes_from_its_opening_hours_else_utc() -> None:
    assert shop_timezone('{"timezone": "Asia/Tokyo", "days": {}}').key == "Asia/Tokyo"
    for hours in ("", "{}", "not json", '{"timezone": "Mars/Olympus"}', '{"timezone": 3}',
                  "[1, 2]"):
        assert shop_timezone(hours).key == "UTC", hours


def test_a_time_typed_in_the_shop_zone_is_sent_with_its_offset() -> None:
    assert local_time("at", "2026-12-01T09:00", PARIS) == "2026-12-01T09:00:00+01:00"
    assert local_time("at", "2026-07-01T09:00", PARIS) == "2026-07-01T09:00:00+02:00"
    assert local_time("at", "", PARIS) == ""  # empty is now
    with pytest.raises(InvalidValue) as refused:
        local_time("at", "next tuesday", PARIS)
    assert refused.value.message == "at: give a date and time such as 2026-12-01 09:00"


def test_times_are_shown_in_the_shop_zone() -> None:
    ms = 1_796_115_600_000  # 2026-12-01 09:00 UTC
    assert shown_time(ms, PARIS) == "2026-12-01 10:00 (Europe/Paris)"
    assert shown_time(None, PARIS) == "" and shown_time(0, PARIS) == ""
    assert input_time(ms, PARIS) == "2026-12-01T10:00"
    # What the input shows is what local_time reads back as the same instant.
    assert local_time("at", input_time(ms, PARIS), PARIS) == "2026-12-01T10:00:00+01:00"


def test_each_composer_kind_makes_its_api_body() -> None:
    form = {"title": " Teapot ", "text": "Cast iron", "link": "", "price": "30",
            "currency": "EUR", "discount": "20%", "ends": "Sunday", "stock": "5",
            "percent_off": "10", "expires": "2026-12-24T18:00"}
    assert draft_body({**form, "kind": "product"}, PARIS) == {
        "kind": "product", "silent": False,
        "fields": {"title": "Teapot", "text": "Cast iron", "price": "30", "currency": "EUR"}}
    assert draft_body({**form, "kind": "sale"}, PARIS)["fields"] == {
        "title": "Teapot", "text": "Cast iron", "discount": "20%", "ends": "Sunday"}
    assert draft_body({**form, "kind": "image"}, PARIS) == {
        "kind": "text", "silent": False, "fields": {"title": "Teapot", "text": "Cast iron"}}
    assert draft_body({**form, "kind": "silent"}, PARIS)["silent"] is True
    coupon = draft_body({**form, "kind": "coupon"}, PARIS)
    assert coupon["coupon"] == {"stock": 5, "percent_off": 10,
                                "expires_at": "2026-12-24T18:00:00+01:00"}
    # What is not a number stays as typed, for the API to refuse with its own sentence.
    assert draft_body({**form, "kind": "coupon", "stock": "lots", "percent_off": "",
                       "expires": ""}, PARIS)["coupon"] == {"stock": "lots",
                                                            "expires_at": None}


def test_an_unknown_kind_is_refused_with_the_choices() -> None:
    for kind in ("", "poll", None):
        with pytest.raises(InvalidValue) as refused:
            draft_body({"kind": kind, "title": "x"}, PARIS)
        assert refused.value.message == ("kind: choose one of: Product, Sale, Coupon drop, "
                                         "Text, Image, Silent notice")


# -- the catalog -----------------------------------------------------------------------------

def test_a_row_form_is_the_patch_body() -> None:
    form = MultiDict({"title": "  Mug ", "price": "12.5", "quantity": "3"})
    assert row_changes(form) == {"title": "Mug", "price": "12.5", "quantity": 3}
    assert form_quantity("") is None  # not counted
    assert form_quantity("-2") == "-2"  # the API refuses it by name


@pytest.mark.parametrize(("price", "percent", "expected"), [
    ("10.00", "-10", "9.00"),
    ("19.99", "-15", "16.99"),  # 16.9915
    ("0.05", "-50", "0.03"),  # 0.025: half up, to the cent
    ("9.99", "33.333", "13.32"),
    ("100.00", "1000", "1100.00"),
    ("0.00", "5", "0.00"),  # a free product stays free
])
def test_a_percentage_is_rounded_to_the_cent(price: str, percent: str, expected: str) -> None:
    assert percent_price(price, Decimal(percent)) == expected


def test_a_percentage_leaving_no_price_or_a_negative_one_is_refused() -> None:
    for price, percent in (("0.01", "-60"), ("5.00", "-100"), ("5.00", "-150")):
        with pytest.raises(InvalidValue) as refused:
            percent_price(price, Decimal(percent))
        assert refused.value.message == (f"value: changing {price} by {percent}% leaves no "
                                         "price; give a smaller reduction")


def test_bulk_changes_give_each_product_its_body() -> None:
    chosen = [product("mug", "12.00"), product("pot", "30.00")]
    assert bulk_changes(chosen, "quantity", "7") == [("mug", {"quantity": 7}),
                                                     ("pot", {"quantity": 7})]
    assert bulk_changes(chosen, "price", "9.90") == [("mug", {"price": "9.90"}),
                                                     ("pot", {"price": "9.90"})]
    assert bulk_changes(chosen, "percent", "-12,5%") == [("mug", {"price": "10.50"}),
                                                         ("pot", {"price": "26.25"})]
    assert bulk_changes([], "percent", "5") == []


@pytest.mark.parametrize(("change", "value", "message"), [
    ("quantity", "-1", "value: give the units in stock as a whole number, such as 12"),
    ("quantity", "", "value: give the units in stock as a whole number, such as 12"),
    ("percent", "ten", "value: give the change as a percentage, such as -10 for ten percent "
                       "off or 5 for five percent more"),
    ("percent", "NaN", "value: give a percentage above -100 and at most 1000"),
    ("percent", "-100", "value: give a percentage above -100 and at most 1000"),
    ("percent", "1000.5", "value: give a percentage above -100 and at most 1000"),
    ("rename", "x", "change: choose one of: Set units in stock to, Set price to, "
                    "Change price by percent"),
])
def test_a_bulk_value_that_is_no_number_is_refused(change: str, value: str,
                                                   message: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        bulk_changes([product("mug", "12.00")], change, value)
    assert refused.value.message == message


def test_one_product_whose_percentage_leaves_no_price_refuses_the_whole_change() -> None:
    with pytest.raises(InvalidValue):
        bulk_changes([product("mug", "12.00"), product("pin", "0.01")], "percent", "-90")


# -- the dashboard ---------------------------------------------------------------------------

def _campaign(cid: int, title: str | None, **figures: int) -> dict[str, Any]:
    return {"id": cid, "kind": "sale", "title": title, "reach": 0, "views": 0,
            "reactions": 0, "claims": 0, "orders": 0, **figures}


def test_chart_data_is_columns_of_numbers() -> None:
    numbers = {"followers_by_day": [{"day": "2026-12-01", "followers": 3},
                                    {"day": "2026-12-02", "followers": 5}],
               "campaigns": [_campaign(1, "Spring", reach=5, views=4),
                             _campaign(2, None, reactions=2, orders=1)]}
    assert chart_data(numbers) == {
        "followers": {"days": ["2026-12-01", "2026-12-02"], "counts": [3, 5]},
        "campaigns": {"labels": ["#1 Spring", "#2 sale"],
                      "names": ["reach", "views", "reactions", "claims", "orders"],
                      "series": {"reach": [5, 0], "views": [4, 0], "reactions": [0, 2],
                                 "claims": [0, 0], "orders": [0, 1]}}}


def test_empty_stats_draw_empty_charts() -> None:
    assert chart_data({"followers_by_day": [], "campaigns": []}) == {
        "followers": {"days": [], "counts": []},
        "campaigns": {"labels": [], "names": ["reach", "views", "reactions", "claims",
                                              "orders"],
                      "series": {"reach": [], "views": [], "reactions": [], "claims": [],
                                 "orders": []}}}


def test_the_period_is_one_of_the_offered_ones() -> None:
    assert [chosen_days(v) for v in ("7", "90", "30", None, "", "365", "-7", "x")] == [
        7, 90, 30, 30, 30, 30, 30, 30]
