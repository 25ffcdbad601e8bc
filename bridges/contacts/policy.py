"""When an upload or lookup is enumeration, and quota arithmetic. Pure.

A real address book — even a big one of ~5,000 people with a phone and an email
each — stays under `max_identifiers` and its numbers are scattered. Enumeration asks
for many identifiers, or for runs of consecutive numbers (+4741234500, …01, …02).
Neither check needs to keep or log a number: they see counts and integers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bridges.contacts.config import ContactsConfig

DAY_SECONDS = 24 * 3600
# Numbers closer than this to the previous one (sorted) extend a run.
RUN_GAP = 10
# The longest run a real book plausibly holds (an office's extensions) …
MAX_RUN = 25
# … and how much of a book may sit in runs of RUN_MIN or more, once it has MIN_NUMBERS.
RUN_MIN = 5
MAX_RUN_SHARE = 0.2
MIN_NUMBERS = 50


@dataclass(frozen=True)
class Limits:
    max_contacts: int
    max_identifiers: int
    per_user_per_day: int
    per_ip_per_day: int
    max_upload_bytes: int

    per_remote_server_per_day: int = 100_000
    local_server: str = ""  # users of any other homeserver also share its quota

    @classmethod
    def of(cls, config: ContactsConfig, local_server: str = "") -> Limits:
        return cls(max_contacts=config.max_contacts_per_import,
                   max_identifiers=config.max_identifiers_per_import,
                   per_user_per_day=config.lookups_per_user_per_day,
                   per_ip_per_day=config.lookups_per_ip_per_day,
                   max_upload_bytes=config.max_upload_bytes,
                   per_remote_server_per_day=config.lookups_per_remote_server_per_day,
                   local_server=local_server)


def too_many(count: int, limits: Limits) -> str | None:
    """Why a request of `count` identifiers is refused, or None."""
    if count > limits.max_identifiers:
        return (f"{count:,} phone numbers and addresses at once looks like enumeration; "
                f"the limit is {limits.max_identifiers:,}")
    return None


def sequential_runs(numbers: Iterable[int]) -> tuple[int, int]:
    """(longest run, how many numbers sit in runs of RUN_MIN or more) of close numbers."""
    ordered = sorted(set(numbers))
    longest = in_runs = 0
    run = 1
    for previous, current in zip(ordered, ordered[1:], strict=False):
        if current - previous <= RUN_GAP:
            run += 1
            continue
        longest, in_runs = max(longest, run), in_runs + (run if run >= RUN_MIN else 0)
        run = 1
    if ordered:
        longest, in_runs = max(longest, run), in_runs + (run if run >= RUN_MIN else 0)
    return longest, in_runs


def looks_like_number_sweep(numbers: list[int]) -> str | None:
    """Why a set of phone numbers (E.164 digits as integers) looks generated, or None."""
    longest, in_runs = sequential_runs(numbers)
    if longest >= MAX_RUN:
        return f"it holds a run of {longest} consecutive phone numbers"
    if len(numbers) >= MIN_NUMBERS and in_runs > MAX_RUN_SHARE * len(numbers):
        return f"{in_runs} of its {len(numbers)} phone numbers are consecutive runs"
    return None


def window_start(now: float, window: int = DAY_SECONDS) -> int:
    return int(now // window) * window


def retry_after(now: float, window: int = DAY_SECONDS) -> int:
    """Seconds until the current window ends."""
    return max(1, window_start(now, window) + window - int(now))
