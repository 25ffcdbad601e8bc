"""Channel power levels, checked against the spec's rules and against Synapse's event auth."""

from __future__ import annotations

from typing import Any

import pytest
from synapse.api.errors import AuthError, SynapseError
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, RoomVersions
from synapse.event_auth import check_state_dependent_auth_rules
from synapse.events import EventBase, make_event_from_dict

from appservices.commerce.shops.channels import (
    POST_LEVEL,
    channel_alias_localpart,
    channel_power_levels,
    channel_topic,
    room_version_has_privileged_creators,
)

SHOP = "@shop_demo:localhost"
BOT = "@mercato:localhost"
FOLLOWER = "@buyer:other.example"


def _required_level(levels: dict[str, Any], event_type: str, *, state: bool) -> int:
    """The spec's send level: events[type], else state_default / events_default."""
    default = levels["state_default"] if state else levels["events_default"]
    return levels["events"].get(event_type, default)


def _user_level(levels: dict[str, Any], user_id: str) -> int:
    return levels["users"].get(user_id, levels["users_default"])


def test_followers_may_react_and_redact_but_not_post() -> None:
    levels = channel_power_levels(SHOP, BOT, creator_in_users=True)
    follower = _user_level(levels, FOLLOWER)
    assert follower == 0
    assert follower >= _required_level(levels, "m.reaction", state=False)
    assert follower >= _required_level(levels, "m.room.redaction", state=False)
    assert follower < _required_level(levels, "m.room.message", state=False)
    assert levels["events_default"] == POST_LEVEL == 50
    # Redacting someone else's event needs "redact"; a follower only takes back their own.
    assert follower < levels["redact"]


@pytest.mark.parametrize("action", ["invite", "kick", "ban", "redact"])
def test_followers_cannot_moderate(action: str) -> None:
    levels = channel_power_levels(SHOP, BOT, creator_in_users=True)
    assert _user_level(levels, FOLLOWER) < levels[action]
    assert _user_level(levels, BOT) >= levels[action]


@pytest.mark.parametrize("event_type", ["m.room.name", "m.room.topic", "m.room.avatar",
                                        "m.room.power_levels", "m.room.encryption",
                                        "m.room.history_visibility", "m.room.tombstone"])
def test_followers_cannot_change_the_channel(event_type: str) -> None:
    levels = channel_power_levels(SHOP, BOT, creator_in_users=True)
    assert _user_level(levels, FOLLOWER) < _required_level(levels, event_type, state=True)


def test_room_notifications_need_the_post_level() -> None:
    levels = channel_power_levels(SHOP, BOT, creator_in_users=True)
    assert levels["notifications"]["room"] == POST_LEVEL


def test_creator_listed_only_when_asked() -> None:
    listed = channel_power_levels(SHOP, BOT, creator_in_users=True)
    assert listed["users"] == {BOT: 100, SHOP: 100}
    unlisted = channel_power_levels(SHOP, BOT, creator_in_users=False)
    assert unlisted["users"] == {BOT: 100}


def test_each_call_returns_a_fresh_dict() -> None:
    first = channel_power_levels(SHOP, BOT, creator_in_users=True)
    first["events"]["m.room.message"] = 0
    assert "m.room.message" not in channel_power_levels(SHOP, BOT, creator_in_users=True)["events"]


@pytest.mark.parametrize(("version", "privileged"), [
    ("12", True), ("13", True), ("10", False), ("11", False), ("1", False),
    ("org.matrix.foo", False), ("", False), ("12.1", False),
])
def test_room_version_has_privileged_creators(version: str, privileged: bool) -> None:
    assert room_version_has_privileged_creators(version) is privileged


@pytest.mark.parametrize("version", [
    v
    for v in KNOWN_ROOM_VERSIONS
])
def test_agrees_with_synapse_on_every_known_room_version(version: str) -> None:
    expected = KNOWN_ROOM_VERSIONS[version].msc4289_creator_power_enabled
    assert room_version_has_privileged_creators(version) is expected


def test_alias_and_topic() -> None:
    assert channel_alias_localpart("shop_", "demo") == "shop_demo"
    assert channel_topic("Demo", "") == \
        "Official channel of Demo on Mercato. Follow by joining; only the shop posts here."
    assert "Shoes and socks." in channel_topic("Demo", "Shoes and socks.")


# Synapse's own event authorisation, on rooms built from these power levels.


def _event(version: RoomVersion, event_type: str, sender: str, content: dict[str, Any],
           *, state_key: str | None = None, room_id: str | None = None,
           **extra: Any) -> EventBase:
    event: dict[str, Any] = {
        "type": event_type, "sender": sender, "content": content, "auth_events": [],
        "prev_events": [], "depth": 1, "origin_server_ts": 0,
        "hashes": {"sha256": "unused"}, "signatures": {}, **extra,
    }
    if room_id is not None:
        event["room_id"] = room_id
    if state_key is not None:
        event["state_key"] = state_key
    return make_event_from_dict(event, version)


def _channel(version: RoomVersion) -> tuple[list[EventBase], EventBase, str]:
    """Create and member events of a channel, and its power levels event (not yet applied)."""
    privileged = room_version_has_privileged_creators(version.identifier)
    if privileged:  # v12: the room ID is derived from the create event
        create = _event(version, "m.room.create", SHOP, {"room_version": version.identifier},
                        state_key="")
    else:
        create = _event(version, "m.room.create", SHOP,
                        {"creator": SHOP, "room_version": version.identifier},
                        state_key="", room_id="!channel:localhost")
    room_id = create.room_id
    members = [_event(version, "m.room.member", user, {"membership": "join"}, state_key=user,
                      room_id=room_id) for user in (SHOP, BOT, FOLLOWER)]
    levels = _event(version, "m.room.power_levels", SHOP,
                    channel_power_levels(SHOP, BOT, creator_in_users=not privileged),
                    state_key="", room_id=room_id)
    return [create, *members], levels, room_id


@pytest.mark.parametrize("version", [RoomVersions.V10, RoomVersions.V11, RoomVersions.V12])
def test_synapse_accepts_the_power_levels_and_enforces_them(version: RoomVersion) -> None:
    state, levels, room_id = _channel(version)
    check_state_dependent_auth_rules(levels, state)
    state.append(levels)

    def check(sender: str, event_type: str, state_key: str | None = None, **extra: Any) -> None:
        check_state_dependent_auth_rules(
            _event(version, event_type, sender, {"body": "x"}, state_key=state_key,
                   room_id=room_id, **extra), state)

    check(SHOP, "m.room.message")
    check(BOT, "m.room.message")
    check(FOLLOWER, "m.reaction")
    with pytest.raises(AuthError):
        check(FOLLOWER, "m.room.message")
    with pytest.raises(AuthError):
        check(FOLLOWER, "m.room.topic", state_key="")

    redaction = _event(version, "m.room.redaction", FOLLOWER, {}, room_id=room_id,
                       redacts="$someone_elses:localhost")
    check_state_dependent_auth_rules(redaction, state)
    # Allowed only after Synapse checks the redacted event is the follower's own.
    assert redaction.internal_metadata.recheck_redaction is True


def test_synapse_refuses_the_creator_in_users_on_v12() -> None:
    state, _, room_id = _channel(RoomVersions.V12)
    wrong = _event(RoomVersions.V12, "m.room.power_levels", SHOP,
                   channel_power_levels(SHOP, BOT, creator_in_users=True),
                   state_key="", room_id=room_id)
    with pytest.raises(SynapseError, match="must not appear in content.users"):
        check_state_dependent_auth_rules(wrong, state)
