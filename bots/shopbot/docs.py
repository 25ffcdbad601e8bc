"""Writes docs/shopbot.md from the commands' own declarations: `python -m bots.shopbot.docs`."""

from __future__ import annotations

import sys
from pathlib import Path

from bots.shopbot.commands import registry  # importing it loads every command module

DOC = Path(__file__).resolve().parents[2] / "docs" / "shopbot.md"


def render() -> str:
    lines = ["# The shop bot's commands", "",
             "Talk to `@shopbot:<your server>` from any Matrix client. In a direct chat plain",
             "words work (`help`); in a group room start with the prefix (`!help`). Every",
             "command also answers `help <command>` with its usage and examples, and a",
             "mistyped command is answered with the nearest one.", "",
             "Encrypted rooms work like the others: the bot has its own device and keys,",
             "kept in `data/shopbot/` so a restart keeps them. It trusts on first use: it",
             "encrypts its answers for every device in the room without verifying them, and",
             "its own device cannot be verified interactively. When it cannot decrypt a",
             "message (its device never got the key), it says so once and asks you to send",
             "it again.", "",
             "This page is generated from the commands' own declarations",
             "(`python -m bots.shopbot.docs`); a test fails when it is out of date.", ""]
    for command in sorted(registry.commands(), key=lambda c: c.path):
        lines += [f"## `{command.usage('!')}`", "", "```", command.describe("!"), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
