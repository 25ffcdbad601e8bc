"""Fault injection for the reliability tests: crash or stall a process at a named point.

`MERCATO_FAULTS="outbox.after_send=3"` makes the 3rd pass through the point
`outbox.after_send` end the process at once (like SIGKILL: no cleanup).
`MERCATO_FAULTS="inbox.slow_handle=2:65"` makes the 2nd pass through a pause point
wait 65 s there (a handler that runs long). Unset in normal operation, where a
point costs one dictionary lookup.
"""

from __future__ import annotations

import asyncio
import os

_hits: dict[str, int] = {}


def _planned() -> dict[str, tuple[int, float | None]]:
    plan = {}
    for item in os.environ.get("MERCATO_FAULTS", "").split(","):
        name, _, when = item.strip().partition("=")
        count, _, seconds = when.partition(":")
        if name:
            plan[name] = (int(count or "1"), float(seconds) if seconds else None)
    return plan


_PLAN = _planned()


def _due(name: str) -> float | None:
    """The planned pause (0.0 for a crash) when this pass is the planned one, else None."""
    if name not in _PLAN:
        return None
    _hits[name] = _hits.get(name, 0) + 1
    count, seconds = _PLAN[name]
    if _hits[name] != count:
        return None
    return seconds or 0.0


def fault_point(name: str, detail: str | None = None) -> None:
    """A crash point; `detail` narrows it: `inbox.after_handle[m.reaction]=1` counts only
    the passes with that detail (where concurrent passes would make a count ambiguous)."""
    if _due(name) is not None or (detail and _due(f"{name}[{detail}]") is not None):
        os._exit(137)


async def fault_pause(name: str) -> None:
    seconds = _due(name)
    if seconds:
        await asyncio.sleep(seconds)
