"""The shop bot answers different people at once and one person in order.

A sync batch is handed to the bot as nio would hand it; the handling of one event is
replaced by a slow stand-in that records when it started and ended, so the test reads
the order a user would see their answers in (no server: the lanes are the bot's own).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bots.shopbot.bot as bot_module
from bots.shopbot.bot import ShopBot
from bots.shopbot.journal import EventJournal


def _event(sender: str, event_id: str) -> Any:
    source = {"type": "m.room.message", "sender": sender, "event_id": event_id,
              "content": {"msgtype": "m.text", "body": "!ping"}}
    return SimpleNamespace(sender=sender, source=source)


def _batch(rooms: dict[str, list[Any]]) -> Any:
    return SimpleNamespace(rooms=SimpleNamespace(invite={}, join={
        room_id: SimpleNamespace(timeline=SimpleNamespace(limited=False, events=events),
                                 summary=SimpleNamespace(joined_member_count=2))
        for room_id, events in rooms.items()}))


class SlowBot:
    """A ShopBot whose handling of one event takes a while and is logged."""

    def __init__(self, journal: EventJournal, gate: asyncio.Event) -> None:
        self.bot = ShopBot.__new__(ShopBot)
        self.bot.user_id = "@shopbot:localhost"
        self.bot.journal = journal
        self.bot.client = SimpleNamespace(rooms={})
        self.bot._on_event = self._on_event  # type: ignore[method-assign]
        self.log: list[tuple[str, str]] = []
        self.gate = gate

    async def _on_event(self, room_id: str, source: dict[str, Any], *, direct: bool) -> None:
        event_id = source["event_id"]
        self.log.append(("start", event_id))
        self.bot.journal.wrote(event_id)
        if event_id == "$alice1":
            # Bob's command must start while Alice's first one is still running.
            await asyncio.wait_for(self.gate.wait(), 2.0)
        if source["sender"] == "@bob:localhost":
            self.gate.set()
        await asyncio.sleep(0.05)
        self.log.append(("end", event_id))


@pytest.fixture(autouse=True)
def no_key_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    async def nothing(client: Any) -> None:
        return None
    monkeypatch.setattr(bot_module, "exchange_keys", nothing)


async def test_two_people_run_at_once_and_one_person_in_order(tmp_path: Path) -> None:
    slow = SlowBot(EventJournal(tmp_path / "journal.json"), asyncio.Event())
    await slow.bot._handle_sync(_batch({
        "!alice:localhost": [_event("@alice:localhost", "$alice1"),
                             _event("@alice:localhost", "$alice2")],
        "!bob:localhost": [_event("@bob:localhost", "$bob1")]}))
    log = slow.log
    # Bob did not wait for Alice: his command started before her first one ended.
    assert log.index(("start", "$bob1")) < log.index(("end", "$alice1"))
    # Alice's second command started only after her first one was answered.
    assert log.index(("end", "$alice1")) < log.index(("start", "$alice2"))
    assert slow.bot.journal.state("$alice2") == "done"


async def test_one_person_in_two_rooms_is_still_one_lane(tmp_path: Path) -> None:
    slow = SlowBot(EventJournal(tmp_path / "journal.json"), asyncio.Event())
    slow.gate.set()
    await slow.bot._handle_sync(_batch({
        "!dm:localhost": [_event("@carol:localhost", "$carol1")],
        "!group:localhost": [_event("@carol:localhost", "$carol2")]}))
    assert slow.log == [("start", "$carol1"), ("end", "$carol1"),
                        ("start", "$carol2"), ("end", "$carol2")]


async def test_an_event_done_before_a_restart_is_not_run_again(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "journal.json")
    journal.wrote("$alice1")
    journal.answered("$alice1")
    slow = SlowBot(EventJournal(tmp_path / "journal.json"), asyncio.Event())
    slow.gate.set()
    await slow.bot._handle_sync(_batch({
        "!alice:localhost": [_event("@alice:localhost", "$alice1"),
                             _event("@alice:localhost", "$alice2")],
        "!bob:localhost": [_event("@bob:localhost", "$bob1")]}))
    assert ("start", "$alice1") not in slow.log
    assert {e for _, e in slow.log} == {"$alice2", "$bob1"}
