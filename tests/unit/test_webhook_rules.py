"""Webhook rules without a server: the signature a receiver checks, the endpoint settings a
shop may send, and when a failed delivery is tried again or given up."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from appservices.commerce.webhooks import rules
from appservices.commerce.webhooks.events import event_body, new_event_id
from appservices.commerce.webhooks.signing import BadSignature, signature_header, verify
from mercato.types import MerchantSlug

SECRET = "whsec_test-secret"
BODY = b'{"id":"evt_1","type":"order.placed"}'
NOW = 1_800_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = signature_header(SECRET, NOW, BODY)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_a_receiver_accepts_what_was_signed_with_its_secret() -> None:
    assert verify(SECRET, signature_header(SECRET, NOW, BODY), BODY, now=NOW + 10) == NOW


@pytest.mark.parametrize("header, body, now, why", [
    (signature_header("whsec_other", NOW, BODY), BODY, NOW, "no v1 signature matches"),
    (signature_header(SECRET, NOW, BODY), BODY + b" ", NOW, "no v1 signature matches"),
    (signature_header(SECRET, NOW, BODY), BODY, NOW + 301, "more than 300 s"),
    (signature_header(SECRET, NOW, BODY), BODY, NOW - 301, "more than 300 s"),
    ("v1=abc", BODY, NOW, "no t=<timestamp>"),
    (f"t={NOW}", BODY, NOW, "no v1=<signature>"),
    ("", BODY, NOW, "no t=<timestamp>"),
])
def test_a_receiver_refuses_a_forged_altered_or_old_delivery(header: str, body: bytes,
                                                             now: int, why: str) -> None:
    with pytest.raises(BadSignature, match=why):
        verify(SECRET, header, body, now=now)


def test_any_of_several_v1_signatures_may_match() -> None:
    good = signature_header(SECRET, NOW, BODY).split(",")[1]
    assert verify(SECRET, f"t={NOW},v1=00ff,{good}", BODY, now=NOW) == NOW


def test_the_body_names_the_event_the_shop_and_its_data() -> None:
    event_id = new_event_id()
    body = json.loads(event_body(event_id, MerchantSlug("corner"), "order.paid",
                                 1_800_000_000_123, {"order_id": "o1", "total": "9.50"}))
    assert body == {"id": event_id, "type": "order.paid", "created": 1_800_000_000,
                    "shop": "corner", "data": {"order_id": "o1", "total": "9.50"}}
    assert event_id.startswith("evt_") and event_id != new_event_id()


def test_retries_back_off_from_ten_seconds_to_hourly() -> None:
    delays = [rules.BACKOFF.delay_ms(n) // 1000 for n in range(1, 13)]
    assert delays == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]


def test_a_failure_parks_the_delivery_only_a_day_after_it_was_queued() -> None:
    assert not rules.BACKOFF.parks(30, age_ms=rules.DAY_MS - 1)
    assert rules.BACKOFF.parks(1, age_ms=rules.DAY_MS)
    # Tried as the schedule says, a delivery gets about 33 tries in its day.
    age, attempts = 0, 0
    while True:
        attempts += 1
        if rules.BACKOFF.parks(attempts, age):
            break
        age += rules.BACKOFF.delay_ms(attempts)
    assert 30 <= attempts <= 36


def test_an_endpoint_is_one_clean_https_address() -> None:
    assert rules.endpoint_url(" https://Shop.Example/hooks ") == "https://shop.example/hooks"
    for bad, why in [("http://shop.example/hooks", "https://"),
                     ("", "is required"), (None, "is required"),
                     ("https://user@shop.example/", "user name"),
                     ("https://shop.example/a b", "cannot be part of it")]:
        with pytest.raises(rules.InvalidWebhook, match=why) as refused:
            rules.endpoint_url(bad)
        assert refused.value.status == 422 and refused.value.field == "url"


def test_event_types_are_a_list_or_all() -> None:
    assert rules.event_types(None) is None
    assert rules.event_types(["order.paid", "order.placed", "order.paid"]) == [
        "order.paid", "order.placed"]
    for bad in ([], "order.paid", ["Order Paid"], [3], ["order."]):
        with pytest.raises(rules.InvalidWebhook, match="events"):
            rules.event_types(bad)


def test_a_secret_is_new_each_time_and_says_what_it_is() -> None:
    first, second = rules.new_secret(), rules.new_secret()
    assert first.startswith("whsec_") and len(first) > 40 and first != second
