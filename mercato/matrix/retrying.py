"""What the inbox and the outbox share: when a failed item is tried again, and when never.

Both keep work in a table, record each try before it starts (so a try cut short by a
crash counts too), back off after a failure and park an item after its last try, so
one poisoned event or one room that refuses every message cannot block its queue
forever. The numbers differ (an event is handled in seconds; a homeserver may be down
for minutes), the arithmetic is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

Item = TypeVar("Item")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Backoff:
    """Tries and waits: after the n-th failed try wait `first_ms` · 2^(n-1), at most `cap_ms`;
    the `max_attempts`-th failure parks the item, and so does one when the item has been
    tried for `give_up_after_ms` or longer, if set (a webhook is tried for a day)."""

    max_attempts: int
    first_ms: int = 1000
    cap_ms: int = 60_000
    give_up_after_ms: int | None = None

    def delay_ms(self, attempts: int) -> int:
        return min(self.cap_ms, self.first_ms * 2 ** max(0, attempts - 1))

    def parks(self, attempts: int, age_ms: int = 0) -> bool:
        """Whether the `attempts`-th failure, `age_ms` after the first try, parks the item."""
        if self.give_up_after_ms is not None and age_ms >= self.give_up_after_ms:
            return True
        return attempts >= self.max_attempts

    def next_try_at(self, attempts: int, now: int | None = None) -> int:
        return (now_ms() if now is None else now) + self.delay_ms(attempts)


def by_queue(items: Iterable[Item], queue: Callable[[Item], str]) -> dict[str, list[Item]]:
    """Items grouped by their queue (a room), each group in the order given."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(queue(item), []).append(item)
    return groups
