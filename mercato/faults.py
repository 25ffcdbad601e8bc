"""Fault injection for the reliability tests: crash a process at a named point.

`MERCATO_FAULTS="outbox.after_send=3"` makes the 3rd pass through the point
`outbox.after_send` end the process at once (like SIGKILL: no cleanup). Unset in
normal operation, where `fault_point` costs one dictionary lookup.
"""

from __future__ import annotations

import os

_hits: dict[str, int] = {}


def _planned() -> dict[str, int]:
    plan = {}
    for item in os.environ.get("MERCATO_FAULTS", "").split(","):
        name, _, count = item.strip().partition("=")
        if name:
            plan[name] = int(count or "1")
    return plan


_PLAN = _planned()


def fault_point(name: str) -> None:
    if name not in _PLAN:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == _PLAN[name]:
        os._exit(137)
