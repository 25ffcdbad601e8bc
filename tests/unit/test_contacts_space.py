"""When the bridge bot may leave a chat it opened: never so that someone still invited
could no longer join."""

from __future__ import annotations

from bridges.contacts.space import leaving_strands_no_one

HERE = "mercato.example"


def test_a_joined_user_of_this_server_lets_anyone_invited_in() -> None:
    assert leaving_strands_no_one(HERE, {"@ola:mercato.example"}, {"@kari:mercato.example"})
    assert leaving_strands_no_one(HERE, {"@ola:mercato.example"}, {"@far:other.example"})


def test_a_remote_joiner_alone_would_shut_out_this_servers_invitee() -> None:
    assert not leaving_strands_no_one(HERE, {"@far:other.example"}, {"@ola:mercato.example"})
    assert not leaving_strands_no_one(HERE, {"@far:other.example"}, {"@kim:third.example"})


def test_an_invitee_whose_own_server_is_in_the_room_joins_through_it() -> None:
    assert leaving_strands_no_one(HERE, {"@far:other.example"}, {"@near:other.example"})
    assert leaving_strands_no_one(HERE, {"@far:127.0.0.1:8448"}, {"@near:127.0.0.1:8448"})
    assert not leaving_strands_no_one(HERE, {"@far:127.0.0.1:8448"},
                                      {"@near:127.0.0.1:8449"})


def test_with_everyone_joined_the_bot_may_leave() -> None:
    assert leaving_strands_no_one(HERE, {"@far:other.example", "@kim:third.example"}, set())
