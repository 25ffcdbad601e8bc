"""Writes docs/shopbot.md from the commands' own declarations: `python -m bots.shopbot.docs`."""

from __future__ import annotations

import sys
from pathlib import Path

from bots.shopbot.commands import registry  # importing it loads every command module
from bots.shopbot.order_text import GUIDE as ORDERS_GUIDE
from mercato.commands_text import MAX_COMMAND_CHARS

DOC = Path(__file__).resolve().parents[2] / "docs" / "shopbot.md"


def render() -> str:
    lines = ["# The shop bot's commands", "",
             "Talk to `@shopbot:<your server>` from any Matrix client. In a direct chat type",
             "the commands as this page writes them (`help`); `!help` works there too. In a",
             "group room the bot is in, start each command with the prefix (`!help`; the",
             "operator sets it as `shopbot.prefix`). The bot's answers write commands the way",
             "they work where you read them. Every command also answers `help <command>`",
             "with its usage and examples, and a mistyped command is answered with the",
             "nearest one.", "",
             "A file sent on its own in a direct chat is answered with what to do with it: a",
             "CSV file with how to import it into your catalog (`products import`, for a",
             "shop's owners and editors), an image with how to put it in a campaign post,",
             "and an address book (a vCard, or a CSV from someone who runs no shop) with the",
             "address of the contacts bot, which reads those. A message longer than",
             f"{MAX_COMMAND_CHARS:,} characters is not read as a command; the bot says so, and",
             "it quotes back at most the first few words of anything it did not understand.",
             "",
             "Encrypted rooms work like the others: the bot has its own device and keys,",
             "kept in `data/shopbot/` so a restart keeps them. It trusts on first use: it",
             "encrypts its answers for every device in the room without verifying them, and",
             "its own device cannot be verified interactively. When it cannot decrypt a",
             "message (its device never got the key), it says so once and asks you to send",
             "it again.", "",
             "This page is generated from the commands' own declarations",
             "(`python -m bots.shopbot.docs`); a test fails when it is out of date.", "",
             *ORDERS_GUIDE.splitlines(), "", "## Every command", ""]
    for command in sorted(registry.commands(), key=lambda c: c.path):
        lines += [f"## `{command.usage('')}`", "", "```", command.describe(""), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
