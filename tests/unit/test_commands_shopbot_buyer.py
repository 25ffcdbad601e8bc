"""`coupons` / `my coupons` and `leave`: the pure parts, and who may make the bot leave."""

from __future__ import annotations

from typing import Any

from bots.shopbot.campaign_text import coupon_list
from bots.shopbot.commands import ShopContext, may_dismiss, registry
from bots.shopbot.context import LeaveRoom
from bots.shopbot.events import CREATOR_LEVEL, power_levels_of

COUPON = {"code": "J99EYRLEAT", "coupon": 1, "shop": "green-grocer",
          "title": "5 EUR off", "expires_at": 4_000_000_000_000, "claimed_at": 1,
          "redeemed_at": None}


def test_coupon_list_shows_codes_only_when_asked() -> None:
    private = coupon_list([COUPON], "!", show_codes=True, now=1000)
    assert private.text.splitlines()[1] == ("green-grocer — 1 “5 EUR off” — J99EYRLEAT — "
                                            "valid until 2096-10-02 07:06 UTC")
    public = coupon_list([COUPON], "!", show_codes=False, now=1000)
    assert "J99EYRLEAT" not in public.text and "J99EYRLEAT" not in (public.html or "")
    used = coupon_list([{**COUPON, "redeemed_at": 2000}], "!", show_codes=True, now=3000)
    assert used.text.splitlines()[1].endswith("— used 1970-01-01 00:00 UTC")
    expired = coupon_list([{**COUPON, "expires_at": 2000}], "!", show_codes=True, now=3000)
    assert "— expired " in expired.text
    assert coupon_list([], "!", show_codes=True, now=0).text.startswith("You have no coupons")


def test_who_may_dismiss_the_bot() -> None:
    levels = {"users": {"@mod:x": 50, "@admin:x": 100}, "users_default": 0, "kick": 50}
    assert may_dismiss(levels, "@mod:x") == (True, 50)
    assert may_dismiss(levels, "@admin:x") == (True, 100)
    assert may_dismiss(levels, "@someone:x") == (False, 0)
    assert may_dismiss({**levels, "kick": 10, "users_default": 10}, "@someone:x") == (True, 10)
    assert may_dismiss({}, "@someone:x") == (False, 0)


def test_room_creators_are_all_powerful_from_room_version_12() -> None:
    def state(version: str) -> list[dict[str, Any]]:
        return [{"type": "m.room.create", "state_key": "", "sender": "@alice:x",
                 "content": {"room_version": version, "additional_creators": ["@bob:x"]}},
                {"type": "m.room.power_levels", "state_key": "", "sender": "@alice:x",
                 "content": {"users": {"@mod:x": 50}}}]
    assert power_levels_of(state("12"))["users"] == {
        "@mod:x": 50, "@alice:x": CREATOR_LEVEL, "@bob:x": CREATOR_LEVEL}
    assert power_levels_of(state("10"))["users"] == {"@mod:x": 50}


class FakeRoom:
    def __init__(self, levels: dict[str, Any]) -> None:
        self.levels = levels

    async def download(self, attachment: Any) -> bytes:
        raise NotImplementedError

    async def attachment_of(self, room_id: str, event_id: str) -> Any:
        return None

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        return self.levels


async def test_leave_in_a_dm_and_in_a_group() -> None:
    room = FakeRoom({"users": {"@mod:x": 50}})
    anyone = ShopContext(sender="@someone:x", direct=True, matrix=room)
    assert isinstance((await registry.dispatch("leave", anyone)).reply, LeaveRoom)  # type: ignore[union-attr]
    refused = await registry.dispatch("!leave", ShopContext(sender="@someone:x", matrix=room))
    assert refused is not None and not refused.ok
    assert "your power level here is 0" in refused.reply.text
    moderator = await registry.dispatch("!leave", ShopContext(sender="@mod:x", matrix=room))
    assert moderator is not None and isinstance(moderator.reply, LeaveRoom)


def test_my_coupons_and_coupons_are_the_same_list() -> None:
    for typed in ("coupons", "my coupons", "my"):
        invocation = registry.parse(typed, direct=True)
        assert invocation is not None and invocation.command.name == "coupons", typed
