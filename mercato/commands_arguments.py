"""What a chat command takes — its declared arguments and `--options` — and reading their
typed values from the words typed after the command (sans I/O; mercato/commands.py
declares commands with them and runs them)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from mercato.commands_text import (
    Parser,
    Token,
    UsageError,
    quoted,
    raw_text,
    shorten,
    text,
    tokenize,
)


@dataclass(frozen=True)
class Argument:
    """A positional argument; `rest` takes the rest of the line as typed."""

    name: str
    parser: Parser = text
    required: bool = True
    rest: bool = False
    help: str = ""
    metavar: str = ""

    @property
    def label(self) -> str:
        word = self.metavar or self.name
        shown = f"{word}…" if self.rest else word
        return f"<{shown}>" if self.required else f"[{shown}]"


@dataclass(frozen=True)
class Option:
    """`--name value` anywhere after the command; `rest` values run to the next option."""

    name: str
    parser: Parser = text
    rest: bool = False
    flag: bool = False
    help: str = ""
    metavar: str = ""

    @property
    def label(self) -> str:
        if self.flag:
            return f"[--{self.name}]"
        word = self.metavar or self.name
        return f"[--{self.name} {word}{'…' if self.rest else ''}]"


def parse_arguments(text: str, arguments: list[Argument],
                    options: dict[str, Option]) -> dict[str, Any]:
    """The typed values of a command's arguments and options, read from the words after
    the command (or a UsageError saying what is wrong)."""
    tokens = tokenize(text)
    values: dict[str, Any] = {o.name.replace("-", "_"): (False if o.flag else None)
                              for o in options.values()}
    positional: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name = token.text[2:].split("=", 1)[0].lower()
        if token.quoted or not token.text.startswith("--") or not name:
            positional.append(token)
            i += 1
            continue
        if name not in options:
            nearest = difflib.get_close_matches(name, options, n=1)
            takes_text = bool(arguments) and arguments[-1].rest
            if not options or (takes_text and not nearest):
                # Free text may hold "--" words; only a near-miss is a typo.
                positional.append(token)
                i += 1
                continue
            hint = f" Did you mean --{nearest[0]}?" if nearest else ""
            raise UsageError(f"Unknown option --{shorten(name)}.{hint}")
        opt = options[name]
        key = opt.name.replace("-", "_")
        inline = token.text.split("=", 1)[1] if "=" in token.text else None
        i += 1
        if opt.flag:
            values[key] = True
            continue
        if inline is not None:
            given: list[Token] = [Token(inline, token.start + len(name) + 3, token.end)]
        elif opt.rest:
            given = []
            while i < len(tokens) and not _is_option(tokens[i], options):
                given.append(tokens[i])
                i += 1
        else:
            given = tokens[i:i + 1]
            i += len(given)
        if not given or not given[0].text:
            raise UsageError(f"--{opt.name} needs a value: --{opt.name} "
                             f"{opt.metavar or opt.name}")
        raw = given[0].text if inline is not None else raw_text(text, given, tokens)
        values[key] = _convert(opt.parser, raw, f"--{opt.name}")
    values.update(_assign(text, arguments, positional, tokens))
    return values

def _is_option(token: Token, options: dict[str, Option]) -> bool:
    return (not token.quoted and token.text.startswith("--")
            and token.text[2:].split("=", 1)[0].lower() in options)

def _assign(text: str, arguments: list[Argument], words: list[Token],
            all_tokens: list[Token]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    fixed = [a for a in arguments if not a.rest]
    # Optional arguments are filled only when there are words to spare for them.
    spare = len(words) - sum(1 for a in fixed if a.required)
    position = 0
    for arg in arguments:
        key = arg.name.replace("-", "_")
        if arg.rest:
            taken = words[position:]
            position = len(words)
            if not taken:
                if arg.required:
                    raise UsageError(f"Missing {arg.label}.")
                values[key] = None
                continue
            values[key] = _convert(arg.parser, raw_text(text, taken, all_tokens), arg.label)
            continue
        if not arg.required:
            if spare <= 0:
                values[key] = None
                continue
            spare -= 1
        if position >= len(words):
            raise UsageError(f"Missing {arg.label}.")
        values[key] = _convert(arg.parser, words[position].text, arg.label)
        position += 1
    if position < len(words):
        extra = " ".join(w.text for w in words[position:])
        raise UsageError(f"I did not expect {quoted(extra)} there.")
    return values


def _convert(parser: Parser, raw: str, label: str) -> Any:
    try:
        return parser(raw)
    except ValueError as e:  # ArgumentError included
        # A parser that quotes the whole value back gets it shortened here.
        message = str(e).replace(raw, shorten(raw)) if len(raw) > len(shorten(raw)) else str(e)
        raise UsageError(f"{label}: {message}") from None
