"""Shop rules (sans I/O): websites, slugs, names, opening hours and keyword replies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from appservices.commerce.errors import InvalidInput
from appservices.commerce.shops.operations import domain_proof_url
from appservices.commerce.shops.rules import (
    impersonation_of,
    is_open,
    keyword_reply,
    validate_keyword_replies,
    validate_name,
    validate_opening_hours,
    validate_slug,
    validate_website,
)


@pytest.mark.parametrize(("given", "kept"), [
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
    ("https://Shop.Example:8443/Store/", "https://shop.example:8443/Store"),
    ("https://shop.example:443/", "https://shop.example"),
    ("shop.example", "https://shop.example"),
    ("https://shop.example/path?q=1#top", "https://shop.example/path"),
])
def test_website_keeps_its_port(given: str, kept: str) -> None:
    assert validate_website(given) == kept


def test_domain_proof_is_fetched_from_the_port_the_website_names() -> None:
    assert domain_proof_url(validate_website("https://127.0.0.1:8443/shop")) == \
        "https://127.0.0.1:8443/.well-known/mercato-verification"
    assert domain_proof_url(validate_website("https://shop.example/")) == \
        "https://shop.example/.well-known/mercato-verification"


@pytest.mark.parametrize("bad", ["https://shop.example:0", "https://shop.example:65536",
                                 "https://shop.example:http", "http://shop.example",
                                 "https://localhost", "https://a:b@shop.example"])
def test_bad_websites_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_website(bad)
    assert refused.value.field == "website"


@pytest.mark.parametrize("slug", ["ab", "a1", "green-grocer", "a" * 32])
def test_slugs_of_2_to_32_characters(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize("slug", ["a", "a" * 33, "-ab", "ab-", "Ab", "a_b", "admin"])
def test_bad_slugs_are_refused(slug: str) -> None:
    with pytest.raises(InvalidInput):
        validate_slug(slug)


def test_opening_hours_in_the_shops_timezone() -> None:
    hours = validate_opening_hours({"timezone": "Europe/Paris", "mon": ["09:00-12:00"],
                                    "sat": ["22:00-24:00"]})
    # Monday 2026-11-23 08:30 UTC is 09:30 in Paris.
    assert is_open(hours, datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    assert not is_open(hours, datetime(2026, 11, 23, 11, 0, tzinfo=UTC))  # 12:00 Paris
    assert not is_open(hours, datetime(2026, 11, 24, 8, 30, tzinfo=UTC))  # Tuesday
    assert is_open(hours, datetime(2026, 11, 28, 22, 59, tzinfo=UTC))  # Sat 23:59 Paris
    assert is_open("", datetime(2026, 11, 24, 3, 0, tzinfo=UTC)), "no hours: always open"
    assert not is_open(validate_opening_hours({"timezone": "UTC"}),
                       datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


def test_keyword_replies_match_whole_words_or_phrases() -> None:
    replies = validate_keyword_replies([{"keyword": "Delivery", "reply": "2 days"},
                                        {"keyword": "gift card", "reply": "In store"}])
    assert keyword_reply(replies, "Any DELIVERY to Lyon?") == "2 days"
    assert keyword_reply(replies, "deliveryman") is None
    assert keyword_reply(replies, "A Gift Card please") == "In store"
    assert keyword_reply(replies, "hello") is None


def test_look_alike_names() -> None:
    verified = {"green": "Green Grocer"}
    for name in ("GREEN GR0CER", "Gréen Grocer Official", "green-grocer", "The Green Grocer"):
        assert impersonation_of(name, verified) == "green", name
    assert impersonation_of("Blue Grocer", verified) is None


@pytest.mark.parametrize("name", ["Shop ✓", "✔ Shop", "Shop ✅", "Caf√"])
def test_names_cannot_carry_a_check_mark(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_name(name)
    assert "check marks" in str(refused.value)
