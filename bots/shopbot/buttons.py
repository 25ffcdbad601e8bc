"""Questions the bot waits on: yes/no with reactions as buttons, and files it asked for. Pure.

When a command must be confirmed, the bot answers with a question, seeds the
reactions ✅ and ❌ on it (its text says what each does) and accepts a typed `yes`
or `no` as well. When a command needs a file, the next file the user sends in that
room completes it. Either way the bot remembers the command's text and runs it
again once answered: what waits is plain data, kept in a small file across
restarts, one entry per user and room, forgotten after a while.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

YES = "✅"
NO = "❌"
CHOICES = (YES, NO)
QUESTION_TTL_MS = 15 * 60 * 1000
MAX_WAITING = 500

_YES_WORDS = frozenset({"yes", "y", "ok", "okay", "sure", "confirm", YES, "👍", "✔"})
_NO_WORDS = frozenset({"no", "n", "nope", "cancel", "stop", NO, "👎", "✖"})


def legend(yes_does: str, no_does: str) -> str:
    """The line under a question that says what each button does."""
    return f"React {YES} to {yes_does} or {NO} to {no_does} — or type yes or no."


def _plain(text: str) -> str:
    # Clients add variation selectors to emoji (✔️); words may carry punctuation.
    return text.replace("\ufe0f", "").strip().strip(".!").lower()


def typed_answer(text: str) -> bool | None:
    """True for yes, False for no, None when the text is neither."""
    word = _plain(text)
    if word in _YES_WORDS:
        return True
    if word in _NO_WORDS:
        return False
    return None


def reaction_answer(key: str) -> bool | None:
    """The answer a reaction gives to a question: ✅ yes, ❌ no, anything else nothing."""
    word = _plain(key)
    if word in (YES, "👍", "✔"):
        return True
    if word in (NO, "👎", "✖"):
        return False
    return None


@dataclass(frozen=True)
class Waiting:
    """A command waiting for its user: a yes/no (`confirm`) or a file (`file`)."""

    room_id: str
    user_id: str
    kind: Literal["confirm", "file"]
    command: str  # the message to run again once answered
    direct: bool
    command_event_id: str  # the final answer replies to the command
    expires_at: int
    question_event_id: str = ""  # the bot's question, which carries the buttons
    declined: str = ""  # what the bot says to a no

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires_at


def now_ms() -> int:
    return int(time.time() * 1000)


class WaitingCommands:
    """What the bot waits on, by (room, user); a new question replaces the older one."""

    def __init__(self, *, ttl_ms: int = QUESTION_TTL_MS, limit: int = MAX_WAITING) -> None:
        self.ttl_ms = ttl_ms
        self.limit = limit
        self._entries: dict[tuple[str, str], Waiting] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def ask(self, room_id: str, user_id: str, kind: Literal["confirm", "file"], command: str,
            *, direct: bool, command_event_id: str, now: int, question_event_id: str = "",
            declined: str = "") -> Waiting:
        waiting = Waiting(room_id, user_id, kind, command, direct, command_event_id,
                          now + self.ttl_ms, question_event_id, declined)
        self._entries.pop((room_id, user_id), None)
        self._entries[(room_id, user_id)] = waiting
        self.expire(now)
        while len(self._entries) > self.limit:
            del self._entries[next(iter(self._entries))]  # the oldest question goes first
        return waiting

    def waiting(self, room_id: str, user_id: str, now: int) -> Waiting | None:
        entry = self._entries.get((room_id, user_id))
        if entry is None or entry.expired(now):
            return None
        return entry

    def answer(self, room_id: str, user_id: str, now: int, *,
               question_event_id: str | None = None) -> Waiting | None:
        """Take the question this user's yes/no answers; a reaction must be on the question."""
        entry = self.waiting(room_id, user_id, now)
        if entry is None or entry.kind != "confirm":
            return None
        if question_event_id is not None and question_event_id != entry.question_event_id:
            return None
        del self._entries[(room_id, user_id)]
        return entry

    def take_file(self, room_id: str, user_id: str, now: int) -> Waiting | None:
        """Take the command waiting for this user's file here."""
        entry = self.waiting(room_id, user_id, now)
        if entry is None or entry.kind != "file":
            return None
        del self._entries[(room_id, user_id)]
        return entry

    def expire(self, now: int) -> None:
        for key in [k for k, e in self._entries.items() if e.expired(now)]:
            del self._entries[key]

    # -- kept across restarts -----------------------------------------------------------

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self._entries.values()]

    def load(self, saved: Any, now: int) -> None:
        """Entries saved by `dump`; a damaged or expired one is dropped, not fatal."""
        if not isinstance(saved, list):
            return
        for item in saved:
            try:
                entry = Waiting(**item)
            except TypeError:
                continue
            if entry.kind in ("confirm", "file") and not entry.expired(now):
                self._entries[(entry.room_id, entry.user_id)] = entry
        while len(self._entries) > self.limit:
            del self._entries[next(iter(self._entries))]

    def with_question(self, entry: Waiting, question_event_id: str) -> Waiting:
        """Record which event asked the question (known only once it is sent)."""
        updated = replace(entry, question_event_id=question_event_id)
        if self._entries.get((entry.room_id, entry.user_id)) == entry:
            self._entries[(entry.room_id, entry.user_id)] = updated
        return updated
