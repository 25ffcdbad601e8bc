"""Enumeration is told from real address books, and quota windows. Pure."""

from __future__ import annotations

import random

from bridges.contacts import policy
from bridges.contacts.policy import Limits

LIMITS = Limits(max_contacts=10_000, max_identifiers=10_000, per_user_per_day=25_000,
                per_ip_per_day=25_000, max_upload_bytes=20 * 2**20)


def test_a_big_real_address_book_passes() -> None:
    rng = random.Random(7)
    # 5,000 people, each with a mobile number (Norway: 8 digits from 4 or 9) and an email.
    numbers = [int(f"47{rng.choice('49')}{rng.randrange(10**7):07d}") for _ in range(5_000)]
    assert policy.too_many(len(numbers) * 2, LIMITS) is None
    assert policy.looks_like_number_sweep(numbers) is None


def test_an_office_with_extensions_passes() -> None:
    rng = random.Random(8)
    numbers = [int(f"4722{rng.randrange(10**6):06d}") for _ in range(300)]
    numbers += [4722123400 + i for i in range(12)]  # a switchboard's direct lines
    assert policy.looks_like_number_sweep(numbers) is None


def test_sequential_runs_are_a_sweep() -> None:
    assert "run of 200" in policy.looks_like_number_sweep(
        [4741234500 + i for i in range(200)])
    assert policy.looks_like_number_sweep([4741230000 + 3 * i for i in range(100)])
    # Many short runs spread out are a sweep too.
    numbers = [4740000000 + block * 10_000 + i for block in range(30) for i in range(6)]
    assert "consecutive runs" in policy.looks_like_number_sweep(numbers)


def test_too_many_identifiers() -> None:
    assert policy.too_many(10_000, LIMITS) is None
    assert "enumeration" in policy.too_many(10_001, LIMITS)


def test_quota_windows() -> None:
    day = policy.DAY_SECONDS
    assert policy.window_start(3 * day + 5) == 3 * day
    assert policy.retry_after(3 * day + 5) == day - 5
    assert policy.retry_after(4 * day - 0.5) == 1
