"""What a component hooks into the outbox for each kind of message it sends.

The outbox (outbox.py) sends any message the same way; what a message means to the
component is the component's. So for each `kind` the component may say how to build the
content at send time (`on_build`: a campaign post renders its shop and coupon of now; or
`Hold`, not now, not counted as a try, while the shop is suspended; or `Drop`, nothing
left to send), and what to write down when a message is sent (`on_sent`), when a try
fails (`on_failed`, with a `Failure`) and when it is given up (`on_parked`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mercato.matrix.outbox import Outgoing


@dataclass(frozen=True)
class Hold:
    """A build hook's answer: not now; tried again after `ms`, not counted as a try."""

    why: str
    ms: int = 60_000


@dataclass(frozen=True)
class Drop:
    """A build hook's answer: nothing left to send; the message is dropped (`dropped`)."""

    why: str


@dataclass(frozen=True)
class Failure:
    """A failed try, as an `on_failed` hook sees it."""

    attempts: int
    error: str
    parked: bool  # it was the last try: the message is given up


SentHook = Callable[["Outgoing", str], Awaitable[None]]
BuildHook = Callable[["Outgoing"], Awaitable["dict[str, Any] | Hold | Drop"]]
FailedHook = Callable[["Outgoing", Failure], Awaitable[None]]
ParkedHook = Callable[["Outgoing", str], Awaitable[None]]


@dataclass
class KindHooks:
    """The hooks registered for each kind; the outbox calls them."""

    sent: dict[str, SentHook] = field(default_factory=dict)
    build: dict[str, BuildHook] = field(default_factory=dict)
    failed: dict[str, FailedHook] = field(default_factory=dict)
    parked: dict[str, ParkedHook] = field(default_factory=dict)

    def on_sent(self, kind: str, hook: SentHook) -> None:
        """Call `hook(message, event_id)` when a message of `kind` is sent. It runs before
        the message is marked sent, so it runs again (with the same event ID, adopted) if
        the process stops in between: it must be idempotent."""
        self.sent[kind] = hook

    def on_build(self, kind: str, hook: BuildHook) -> None:
        """Call `hook(message)` before each try of a message of `kind`: the content to send
        (the stored one is not changed), or `Hold` or `Drop`."""
        self.build[kind] = hook

    def on_failed(self, kind: str, hook: FailedHook) -> None:
        """Call `hook(message, failure)` after each failed try of a message of `kind`, the
        last one too (`failure.parked`)."""
        self.failed[kind] = hook

    def on_parked(self, kind: str, hook: ParkedHook) -> None:
        """Call `hook(message, error)` when a message of `kind` is given up."""
        self.parked[kind] = hook
