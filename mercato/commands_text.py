"""What the user typed: the command word, the words after it, and typed values. Pure.

The first half of `mercato.commands` (which re-exports all of this): splitting a
message into words with their places in the text, the errors a user sees, and the
parsers that turn a word into a typed value. A reply quotes back at most a short
prefix of what was typed (`quoted`): a pasted page must not come back whole.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mercato.commands import Command

# Opening quote → closing quote. Phones type curly quotes.
QUOTES = {'"': '"', "“": "”", "„": "“"}
# A longer message is refused unread: no command needs more, and a huge one (a pasted file)
# must get a short answer quickly.
MAX_COMMAND_CHARS = 16_000
# How much of what the user typed a reply quotes back (an unknown word, a bad value).
MAX_QUOTED_CHARS = 50


def shorten(value: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`value`, or its first `limit` characters and an ellipsis when it is longer."""
    return value if len(value) <= limit else value[:limit].rstrip() + "…"


def quoted(value: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """What the user typed, in quotes for a reply: never more than a short prefix of it."""
    return f"'{shorten(value, limit)}'"


# -- what the user typed ----------------------------------------------------------------

@dataclass(frozen=True)
class CommandText:
    """A message split into the command's first word and the rest."""

    name: str
    args: str


def parse_command(body: str, prefix: str, *, direct: bool) -> CommandText | None:
    """`!ping` anywhere; plain `ping` also works in a one-to-one chat with the bot."""
    text = body.strip()
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    elif not direct:
        return None
    parts = text.split(None, 1)
    if not parts:
        return None
    return CommandText(name=parts[0].lower(), args=parts[1].strip() if len(parts) > 1 else "")


@dataclass(frozen=True)
class Token:
    """A word of the arguments, with where it stands in the original text."""

    text: str
    start: int
    end: int
    quoted: bool = False


def tokenize(text: str) -> list[Token]:
    """Split on whitespace; "double quotes" (straight or curly) keep words together."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        closing = QUOTES.get(text[i])
        if closing is not None:
            end = text.find(closing, i + 1)
            if end < 0:
                raise UsageError(f"A quote opened with {text[i]} is not closed; add {closing} "
                                 "after the quoted words.")
            tokens.append(Token(text[i + 1:end], i, end + 1, quoted=True))
            i = end + 1
            continue
        start = i
        while i < n and not text[i].isspace():
            i += 1
        tokens.append(Token(text[start:i], start, i))
    return tokens


def raw_text(text: str, tokens: Sequence[Token], all_tokens: Sequence[Token]) -> str:
    """The words as typed (spacing and new lines kept); one quoted token loses its quotes."""
    if len(tokens) == 1 and tokens[0].quoted:
        return tokens[0].text
    index = {id(t): k for k, t in enumerate(all_tokens)}
    runs: list[list[Token]] = []
    for token in tokens:
        if runs and index[id(token)] == index[id(runs[-1][-1])] + 1:
            runs[-1].append(token)
        else:
            runs.append([token])
    return " ".join(text[run[0].start:run[-1].end] for run in runs)


# -- errors the user sees -----------------------------------------------------------------

class CommandError(Exception):
    """A failure to show the user as it is: what happened and what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CommandError):
    """The command was typed wrong; the reply adds the usage line of the command."""

    def __init__(self, message: str, command: Command | None = None) -> None:
        super().__init__(message)
        self.command = command


class ArgumentError(ValueError):
    """Raised by an argument parser; the message says what a valid value looks like."""


# -- parsers ------------------------------------------------------------------------------

Parser = Callable[[str], Any]

_MATRIX_USER_ID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(?::\d{1,5})?$|"
                             r"^@[a-z0-9._=/+-]+:\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$")


def text(value: str) -> str:
    return value


def matrix_user_id(value: str) -> str:
    """A Matrix user ID, as typed or as a client's mention pill left it."""
    candidate = value.strip().rstrip(",;")
    if not _MATRIX_USER_ID.match(candidate):
        raise ArgumentError(f"{quoted(value)} is not a Matrix ID; write it like "
                            "@alice:example.org")
    return candidate


def one_of(*choices: str) -> Parser:
    def parse(value: str) -> str:
        word = value.strip().lower()
        if word in choices:
            return word
        nearest = difflib.get_close_matches(word, choices, n=1)
        hint = f" Did you mean {nearest[0]}?" if nearest else ""
        raise ArgumentError(f"{quoted(value)} is not one of {', '.join(choices)}.{hint}")

    parse.__name__ = "|".join(choices)
    parse.choices = choices  # type: ignore[attr-defined]
    return parse


def integer(minimum: int | None = None, maximum: int | None = None) -> Parser:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ArgumentError(f"{quoted(value)} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise ArgumentError(f"{number} is less than {minimum}")
        if maximum is not None and number > maximum:
            raise ArgumentError(f"{number} is more than {maximum}")
        return number

    return parse


def https_url(value: str) -> str:
    url = value.strip()
    if "://" not in url:
        url = "https://" + url
    if not re.match(r"^https://[^\s/@]+\.[^\s/@]+(/\S*)?$", url):
        raise ArgumentError(f"{quoted(value)} is not a web address; write it like "
                            "https://shop.example")
    return url


def strip_reply_fallback(body: str) -> str:
    """A reply's body without the quoted `> ` lines older clients put in front of it."""
    lines = body.splitlines()
    if not lines or not lines[0].startswith(">"):
        return body
    for k, line in enumerate(lines):
        if not line.startswith(">"):
            return "\n".join(lines[k + 1 if not line.strip() else k:])
    return ""
