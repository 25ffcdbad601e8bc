"""The shop bot's command parsing and answers (pure functions, no server)."""

from __future__ import annotations

import pytest

from bots.shopbot.bot import HELP, Command, answer, parse_command


@pytest.mark.parametrize("direct", [False, True])
def test_prefixed_command_works_everywhere(direct: bool) -> None:
    assert parse_command("!ping", "!", direct=direct) == Command(name="ping", args="")


def test_arguments_are_kept_and_trimmed() -> None:
    assert parse_command("  !help   catalog  ", "!", direct=False) == \
        Command(name="help", args="catalog")
    assert parse_command("!add sku-1 12.50 Red shoes", "!", direct=False) == \
        Command(name="add", args="sku-1 12.50 Red shoes")
    assert parse_command("!note first line\nsecond line", "!", direct=False) == \
        Command(name="note", args="first line\nsecond line")


def test_plain_words_only_in_direct_chats() -> None:
    assert parse_command("ping", "!", direct=True) == Command(name="ping", args="")
    assert parse_command("ping", "!", direct=False) is None
    assert parse_command("hello everyone, what a sale", "!", direct=False) is None


def test_command_name_is_case_insensitive_arguments_are_not() -> None:
    assert parse_command("!PING", "!", direct=False) == Command(name="ping", args="")
    assert parse_command("Help Catalog", "!", direct=True) == Command(name="help", args="Catalog")


@pytest.mark.parametrize("body", ["", "   ", "!", "  !  "])
@pytest.mark.parametrize("direct", [False, True])
def test_empty_is_not_a_command(body: str, direct: bool) -> None:
    assert parse_command(body, "!", direct=direct) is None


def test_configured_prefix() -> None:
    assert parse_command("?ping", "?", direct=False) == Command(name="ping", args="")
    assert parse_command("!ping", "?", direct=False) is None
    assert parse_command("shop:help me", "shop:", direct=False) == Command("help", "me")


@pytest.mark.parametrize(("body", "expected"), [
    ("! ping", Command("ping", "")),
    ("!help\tcatalog", Command("help", "catalog")),
    ("!help\ncatalog", Command("help", "catalog")),
])
def test_any_whitespace_separates_the_command(body: str, expected: Command) -> None:
    assert parse_command(body, "!", direct=False) == expected


def test_ping_answers_pong() -> None:
    assert answer(Command("ping", ""), "!") == "pong"


@pytest.mark.parametrize("prefix", ["!", "?"])
def test_help_lists_every_command_with_the_prefix(prefix: str) -> None:
    text = answer(Command("help", ""), prefix)
    assert text.startswith("Commands:\n")
    lines = text.splitlines()[1:]
    assert len(lines) == len(HELP)
    for name, description in HELP.items():
        assert f"{prefix}{name} — {description}" in lines


def test_unknown_command_says_what_to_type_instead() -> None:
    text = answer(Command("buy", "shoes"), "!")
    assert "'buy'" in text
    assert "!help" in text
