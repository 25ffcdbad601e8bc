"""The values people type, checked one way everywhere: prices and plain text. Pure.

The commerce API, the shop bot and catalog imports all take prices and shop-written
text; a value accepted in one place and refused in another (or silently changed, as
Python's `Decimal` turns "5_0" into 50 and "١٩" into 19) is a bug, so the rules
live here once. A refusal says which field, what was wrong and how to write it.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

MAX_PRICE = Decimal(10**9)
_PRICE_EXAMPLE = "19.90"
_MONEY = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
_MONEY_OR_COMMA = re.compile(r"[0-9]+(?:[.,][0-9]{1,2})?")
_TOO_MANY_DECIMALS = re.compile(r"[0-9]+[.,][0-9]{3,}")
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:[.,'\u00a0 ][0-9]{3})+(?:[.,][0-9]{1,2})?")
_SHOWN_CHARS = 24

# Invisible characters that text needs: joiners make emoji sequences (👨‍👩‍👧) and
# Persian words; the marks set the direction of a neutral character in Arabic or
# Hebrew text and, unlike overrides and isolates, cannot reverse what follows.
_NEEDED_FORMAT_CHARACTERS = frozenset("\u200c\u200d\u200e\u200f\u061c")
# Tag characters are allowed only as a subdivision flag (🏴󠁧󠁢󠁥󠁮󠁧󠁿): anywhere else they
# carry invisible ASCII.
_EMOJI_TAG_SEQUENCE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,32}\U000e007f")


class InvalidValue(Exception):
    """A value Mercato does not accept: `field` names it, `reason` says what to send."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        self.message = f"{field}: {reason}"
        super().__init__(self.message)


def json_kind(value: Any) -> str:
    """What a JSON value is, in words: "a number", "a list", …"""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "text" if isinstance(value, str) else type(value).__name__


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 1] + "…"


def _money_refusal(text: str, decimal_comma: bool) -> str:
    """Why `text` is not a price, in the words of the most likely mistake."""
    shown = _shown(text)
    like = f"like {_PRICE_EXAMPLE}" + (" or 19,90" if decimal_comma else "")
    if text.startswith("-"):
        return f"'{shown}' is not a price: prices cannot be negative; write it {like}"
    if text.startswith("+"):
        return f"'{shown}' is not a price; write it without a sign, {like}"
    if any(ch.isdigit() and not ch.isascii() for ch in text):
        return f"'{shown}' is not a price; write it with the digits 0-9, {like}"
    if _TOO_MANY_DECIMALS.fullmatch(text) or _THOUSANDS.fullmatch(text):
        return (f"'{shown}' has more than two decimals (or a thousands separator); write it "
                f"{like}, or 1000 for a thousand")
    if not decimal_comma and _MONEY_OR_COMMA.fullmatch(text):
        return f"'{shown}' is not a price; write it with a decimal point, {like}"
    separator = "decimal point or comma" if decimal_comma else "decimal point"
    return (f"'{shown}' is not a price; write it {like}: the digits 0-9 and at most one "
            f"{separator} (no spaces, '_' or exponent)")


def parse_money(field: str, value: Any, *, decimal_comma: bool = False) -> str:
    """A price as its decimal string with two decimals ("19.9" → "19.90"), never a float.

    Only ASCII digits with at most one decimal point and one or two decimals, from 0 to
    MAX_PRICE; `decimal_comma` also reads "19,90" (as typed in a spreadsheet or a chat).
    """
    if value is None or value == "":
        raise InvalidValue(field, f"is empty; write a price like {_PRICE_EXAMPLE}")
    if not isinstance(value, str):
        never = ": prices are never JSON numbers" if json_kind(value) == "a number" else ""
        raise InvalidValue(field, f'must be a string like "{_PRICE_EXAMPLE}", not '
                                  f"{json_kind(value)}{never}")
    text = value.strip()
    pattern = _MONEY_OR_COMMA if decimal_comma else _MONEY
    if not pattern.fullmatch(text):
        raise InvalidValue(field, _money_refusal(text, decimal_comma))
    price = Decimal(text.replace(",", "."))
    if price > MAX_PRICE:
        raise InvalidValue(field, f"'{_shown(text)}' is over the largest price, {MAX_PRICE:.2f}")
    return f"{price:.2f}"


def invisible_character(text: str) -> str | None:
    """The first control or invisible formatting character in `text` a reader could not
    see, if any: C0 and C1 controls but tab and line feed, bidi overrides and isolates,
    zero-width spaces, lone surrogates. Joiners, direction marks and flag tags pass."""
    for ch in _EMOJI_TAG_SEQUENCE.sub("", text):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in "\n\t") or category == "Cs" or (
                category == "Cf" and ch not in _NEEDED_FORMAT_CHARACTERS):
            return ch
    return None


def plain_text(field: str, value: Any, limit: int, *, required: bool = False) -> str:
    """Text as a person typed it: NFC, trimmed, at most `limit` characters, no invisible
    control characters. Angle brackets are ordinary text: what shows it escapes it."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidValue(field, f"must be text, not {json_kind(value)}")
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise InvalidValue(field, "is required")
    if len(text) > limit:
        raise InvalidValue(field, f"is {len(text)} characters long; the limit is {limit}")
    hidden = invisible_character(text)
    if hidden is not None:
        raise InvalidValue(field, f"contains invisible control characters (U+{ord(hidden):04X}"
                                  f"); remove them")
    return text


def text_list(field: str, value: Any, *, limit: int, item_limit: int, example: str) -> list[str]:
    """A JSON list of short texts (tags, …), each checked as plain text."""
    if not isinstance(value, list):
        raise InvalidValue(field, f"must be a list of text, like {example}, not "
                                  f"{json_kind(value)}")
    if len(value) > limit:
        raise InvalidValue(field, f"has {len(value)} entries; the limit is {limit}")
    return [plain_text(field, item, item_limit) for item in value]
