"""The core's value rules (mercato/values.py): one money parser, one plain-text check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.values import InvalidValue, parse_money, plain_text

# -- prices ----------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "price"), [
    ("0", "0.00"), ("0.00", "0.00"), ("19", "19.00"), ("19.9", "19.90"), ("19.90", "19.90"),
    (" 7 ", "7.00"), ("007.5", "7.50"), ("1000000000", "1000000000.00")])
def test_good_prices_become_two_decimals(typed: str, price: str) -> None:
    assert parse_money("price", typed) == price
    assert parse_money("price", typed, decimal_comma=True) == price


def test_a_decimal_comma_only_where_it_is_allowed() -> None:
    assert parse_money("price", "19,90", decimal_comma=True) == "19.90"
    assert parse_money("price", "19,9", decimal_comma=True) == "19.90"
    with pytest.raises(InvalidValue, match="write it with a decimal point, like 19.90"):
        parse_money("price", "19,90")


@pytest.mark.parametrize(("typed", "reason"), [
    ("-0", "'-0' is not a price: prices cannot be negative"),
    ("-0.00", "'-0.00' is not a price: prices cannot be negative"),
    ("-1", "prices cannot be negative"),
    ("+5", "write it without a sign"),
    ("5_0", "no spaces, '_' or exponent"),
    ("1e3", "no spaces, '_' or exponent"),
    ("1E3", "no spaces, '_' or exponent"),
    ("١٩.٩٠", "write it with the digits 0-9"),
    ("１９", "write it with the digits 0-9"),
    ("19.999", "more than two decimals"),
    ("1,000.00", "thousands separator"),
    ("1 000", "thousands separator"), ("1 0", "no spaces"),
    ("NaN", "is not a price"), ("Infinity", "is not a price"), ("inf", "is not a price"),
    (".5", "is not a price"), ("5.", "is not a price"), ("0x10", "is not a price"),
    ("19.90 EUR", "is not a price"), ("€19", "is not a price"),
    ("1000000000.01", "is over the largest price, 1000000000.00"),
    ("", "is empty"),
])
def test_bad_prices_are_refused_saying_how_to_write_one(typed: str, reason: str) -> None:
    for comma in (False, True):
        with pytest.raises(InvalidValue) as refused:
            parse_money("price", typed, decimal_comma=comma)
        assert refused.value.field == "price"
        assert refused.value.message.startswith("price: ")
        assert reason in refused.value.reason


@pytest.mark.parametrize("value", [19.9, 19, 0, True, None, ["19.90"], {"amount": "19.90"}])
def test_only_strings_are_prices(value: object) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_money("original_price", value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert refused.value.message == ('original_price: must be a string like "19.90", not a '
                                         "number: prices are never JSON numbers")


@given(st.text(max_size=16))
def test_a_price_is_always_plain_digits_or_refused(typed: str) -> None:
    for comma in (False, True):
        try:
            price = parse_money("price", typed, decimal_comma=comma)
        except InvalidValue:
            continue
        whole, cents = price.split(".")
        assert whole.isascii() and whole.isdigit() and len(cents) == 2 and cents.isdigit()
        assert not price.startswith("-")


# -- plain text ------------------------------------------------------------------------

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: joined by ZWJ
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize("text", [
    "Use code <SAVE10>", "a < b and c > d", "ready <today>", "<b>bold</b> is just text",
    f"Family pack {FAMILY}", f"Go {ENGLAND}!", "می\u200cخواهم",  # Persian: ZWNJ
    "❤\ufe0f and ☕\ufe0e", "שלום\u200f!", "line one\nline\ttwo", "Crème brûlée 日本語",
])
def test_plain_text_keeps_brackets_emoji_sequences_and_scripts(text: str) -> None:
    assert plain_text("title", text, 200) == text


@pytest.mark.parametrize(("text", "code"), [
    ("Shop\u202egnp.exe", "U+202E"),  # right-to-left override
    ("a\u202ab", "U+202A"), ("a\u2066b\u2069", "U+2066"), ("a\u2068b", "U+2068"),
    ("Bell\x07ring", "U+0007"), ("nul\x00", "U+0000"), ("esc\x1b[31m", "U+001B"),
    ("c1\x85c1", "U+0085"), ("del\x7f", "U+007F"), ("cr\rlf", "U+000D"),
    ("zero\u200bwidth", "U+200B"), ("bom\ufeff", "U+FEFF"), ("lone\ud800", "U+D800"),
    ("hidden\U000e0041\U000e0042", "U+E0041"),  # tag characters outside a flag
])
def test_plain_text_refuses_invisible_control_characters(text: str, code: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        plain_text("title", text, 200)
    assert refused.value.message == (f"title: contains invisible control characters ({code}); "
                                     "remove them")


@pytest.mark.parametrize(("value", "kind"), [(5, "a number"), (True, "true or false"),
                                             (["x"], "a list"), ({"a": 1}, "an object")])
def test_plain_text_is_a_string(value: object, kind: str) -> None:
    with pytest.raises(InvalidValue, match=f"^description: must be text, not {kind}$"):
        plain_text("description", value, 200)


def test_plain_text_is_trimmed_normalised_and_limited() -> None:
    assert plain_text("name", "  Cafe\u0301 ", 10) == "Café"
    assert plain_text("name", None, 10) == ""
    with pytest.raises(InvalidValue, match="name: is required"):
        plain_text("name", " ", 10, required=True)
    with pytest.raises(InvalidValue, match="name: is 11 characters long; the limit is 10"):
        plain_text("name", "x" * 11, 10)
