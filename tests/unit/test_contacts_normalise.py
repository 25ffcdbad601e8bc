"""Phone numbers to E.164, emails to lower case, and the spec's hashes of both."""

from __future__ import annotations

import pytest

from bridges.contacts.hashing import IdentifierHasher, lookup_hash
from bridges.contacts.importers import Medium
from bridges.contacts.importers.model import mask_phone, safe_label
from bridges.contacts.normalise import (
    InvalidIdentifier,
    msisdn_address,
    normalise_email,
    normalise_phone,
    parse_region,
)


@pytest.mark.parametrize("raw, region, e164", [
    ("+47 412 34 567", None, "+4741234567"),
    ("41234567", "NO", "+4741234567"),
    ("0047 412 34 567", "NO", "+4741234567"),
    ("(202) 555-0143", "US", "+12025550143"),
    ("+1 (202) 555-0143", "NO", "+12025550143"),  # an explicit country wins over the region
    ("tel:+1-418-656-9254;ext=102", None, "+14186569254"),
    ("TEL:+47-412-34-567", None, "+4741234567"),
    ("+86 138 0013 8000", None, "+8613800138000"),
    ("010-12345678", "CN", "+861012345678"),
    ("\u00a0+49 30 1234567\u00a0", None, "+49301234567"),
])
def test_phones_become_e164(raw: str, region: str | None, e164: str) -> None:
    assert normalise_phone(raw, region) == e164


@pytest.mark.parametrize("raw, region, reason", [
    ("41234567", None, "no country code"),
    ("12", "NO", "not a valid phone number"),
    ("+1 555 555 5555", None, "not a valid phone number"),
    ("=cmd|' /C calc'!A0", "NO", "not a phone number"),
    ("", "NO", "empty"),
    ("call me", "NO", "no phone number"),
    ("+47" + "1" * 80, None, "too long"),
])
def test_bad_phones_say_why_without_repeating_them(raw: str, region: str | None,
                                                    reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        normalise_phone(raw, region)
    assert reason in str(refused.value)
    digits = "".join(c for c in raw if c.isdigit())
    assert not digits or digits not in str(refused.value)


@pytest.mark.parametrize("raw, email", [
    ("  Ola.Nordmann@Example.NO ", "ola.nordmann@example.no"),
    ("mailto:KARI@example.no", "kari@example.no"),
    ("<per@example.no>", "per@example.no"),
])
def test_emails_are_trimmed_and_lower_cased(raw: str, email: str) -> None:
    assert normalise_email(raw) == email


@pytest.mark.parametrize("raw", ["", "ola", "ola@", "@example.no", "ola@@example.no",
                                 "ola @example.no", "ola@example", "a" * 300 + "@x.no"])
def test_bad_emails(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalise_email(raw)


def test_regions() -> None:
    assert parse_region(" no ") == "NO"
    for bad in ("XX", "Norway", "1", ""):
        with pytest.raises(InvalidIdentifier, match="country code"):
            parse_region(bad)


def test_labels_and_masks_never_repeat_a_formula_or_a_number() -> None:
    assert safe_label("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert safe_label("+47 Ola") == "'+47 Ola"
    assert safe_label("Ola\r\n\tNordmann\x00") == "Ola Nordmann"
    assert len(safe_label("x" * 500)) == 60
    assert mask_phone("+47 412 34 567") == "ending …67"
    assert mask_phone("12") == ""


def test_labels_keep_emoji_sequences_and_joiners_but_not_bidi_overrides() -> None:
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # 👨‍👩‍👧, one glyph
    assert safe_label(f"{family} Nordmann") == f"{family} Nordmann"
    assert safe_label("\u2764\ufe0f Kari") == "\u2764\ufe0f Kari"  # ❤️: a variation selector
    assert safe_label("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")  # می‌خواهم: a ZWNJ
    assert safe_label("Ola\u202eevil\u2066x\u200b\u2060y") == "Ola evil x y"


# -- the identity service's hashing (Matrix spec, identity service v2 /lookup) -----------

def test_lookup_hash_matches_the_spec_examples() -> None:
    # The examples of the spec (and of matrix-js-sdk's tests), pepper "matrixrocks".
    assert lookup_hash("alice@example.com", "email", "matrixrocks") == \
        "4kenr7N9drpCJ4AfalmlGQVsOn3o2RHjkADUpXJWZUc"
    assert lookup_hash("18005552067", "msisdn", "matrixrocks") == \
        "nlo35_T5fzSGZzJApqu8lgIudJvmOQtDaHtr-I4rU7I"


def test_phones_are_hashed_as_msisdn_digits() -> None:
    hasher = IdentifierHasher("a-server-secret-of-some-length", "matrixrocks")
    assert msisdn_address("+18005552067") == "18005552067"
    assert hasher.lookup_hash(Medium.PHONE, "+18005552067") == \
        "nlo35_T5fzSGZzJApqu8lgIudJvmOQtDaHtr-I4rU7I"
    assert hasher.lookup_hash(Medium.EMAIL, "alice@example.com") == \
        "4kenr7N9drpCJ4AfalmlGQVsOn3o2RHjkADUpXJWZUc"


def test_stored_digests_are_keyed() -> None:
    one = IdentifierHasher("a-server-secret-of-some-length", "matrixrocks")
    other = IdentifierHasher("another-secret-of-some-length", "matrixrocks")
    digest = one.digest(Medium.PHONE, "+4741234567")
    # What a client's hashed lookup turns into equals what an opt-in stored.
    assert one.stored(one.lookup_hash(Medium.PHONE, "+4741234567")) == digest
    assert other.digest(Medium.PHONE, "+4741234567") != digest
    assert len(digest) == 64 and "4741234567" not in digest
