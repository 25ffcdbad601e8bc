"""Chat commands, declared with decorators; help and usage errors are generated.

Shared by the shop bot and the contacts bridge, in the maubot style:

    registry = Registry(prefix="!")
    staff = registry.group("staff", help="The people who work for your shop")

    @staff.command("add", help="Add someone to your shop", permission="owner")
    @argument("user", parser=matrix_user_id, help="their Matrix ID")
    @argument("role", parser=one_of("owner", "editor"))
    async def add(ctx: Context, user: str, role: str) -> str: ...

Sans I/O: `Registry.parse` turns a message into a command and its typed values (or a
`UsageError` saying what to type instead); `Registry.dispatch` runs the handler and
returns the reply text. Sending the reply, and whatever the handlers call, is the
caller's business.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mercato.commands_arguments import Argument, Option, parse_arguments
from mercato.commands_text import (
    MAX_COMMAND_CHARS,
    ArgumentError,
    CommandError,
    CommandText,
    Parser,
    Token,
    UsageError,
    https_url,
    integer,
    matrix_user_id,
    one_of,
    parse_command,
    quoted,
    shorten,
    strip_reply_fallback,
    text,
    tokenize,
)
from mercato.logging import get_logger

log = get_logger(__name__)

__all__ = [
    "ArgumentError", "Argument", "Command", "CommandError", "CommandText", "Context",
    "Group", "Invocation", "Option", "Outcome", "Parser", "Registry", "Reply", "Token",
    "UsageError", "argument", "https_url", "integer", "matrix_user_id", "one_of", "option",
    "parse_command", "quoted", "shorten", "strip_reply_fallback", "text", "tokenize",
]

DEFAULT_PREFIX = "!"


# -- declarations (what each takes: mercato/commands_arguments.py) ----------------------

def argument(name: str, parser: Parser = text, *, required: bool = True, rest: bool = False,
             help: str = "", metavar: str = "") -> Callable[[Any], Any]:
    """Declare a positional argument; write them in order, above or below `.command`."""
    declared = Argument(name, parser, required, rest, help, metavar)
    return _declare(declared)


def option(name: str, parser: Parser = text, *, rest: bool = False, flag: bool = False,
           help: str = "", metavar: str = "") -> Callable[[Any], Any]:
    """Declare an `--option`; its value is None (or False for a flag) when not given."""
    declared = Option(name.removeprefix("--"), parser, rest, flag, help, metavar)
    return _declare(declared)


def _declare(declared: Argument | Option) -> Callable[[Any], Any]:
    def attach(target: Any) -> Any:
        # Decorators apply bottom-up, so each new declaration goes in front.
        if isinstance(target, Command):
            target._add(declared, front=True)
        else:
            pending = target.__dict__.setdefault("__command_parameters__", [])
            pending.insert(0, declared)
        return target

    return attach


Handler = Callable[..., Awaitable[Any] | Any]


@dataclass(frozen=True)
class Reply:
    """What to answer: plain text, and HTML where formatting helps (the caller sanitises)."""

    text: str
    html: str | None = None


@dataclass
class Context:
    """Who asked, and where. Bots subclass it to carry what their handlers need.

    `prefix` is how replies write a command where the user is: nothing in a direct chat
    (`help`), the prefix in a group room (`!help`), where a command needs it.
    `room_prefix` is the bot's prefix itself. `dispatch` sets both.
    """

    sender: str
    room_id: str = ""
    event_id: str = ""
    direct: bool = False
    prefix: str = DEFAULT_PREFIX
    room_prefix: str = DEFAULT_PREFIX


class Command:
    def __init__(self, name: str, handler: Handler, *, help: str, parent: Group,
                 permission: Any = None, direct_only: bool = False,
                 examples: Sequence[str] = (), details: str = "") -> None:
        self.name = name
        self.handler = handler
        self.help = help
        self.parent = parent
        self.permission = permission
        self.direct_only = direct_only
        self.examples = tuple(examples)
        self.details = details
        self.arguments: list[Argument] = []
        self.options: dict[str, Option] = {}
        for declared in handler.__dict__.get("__command_parameters__", []):
            self._add(declared)

    def _add(self, declared: Argument | Option, *, front: bool = False) -> None:
        if isinstance(declared, Option):
            self.options = ({declared.name: declared, **self.options} if front
                            else {**self.options, declared.name: declared})
            return
        arguments = [declared, *self.arguments] if front else [*self.arguments, declared]
        rests = [a for a in arguments if a.rest]
        if len(rests) > 1 or (rests and rests[0] is not arguments[-1]):
            raise TypeError(f"{self.path}: only the last argument can take the rest of the line")
        self.arguments = arguments

    @property
    def path(self) -> str:
        return f"{self.parent.path} {self.name}".strip()

    def usage(self, prefix: str) -> str:
        parts = [prefix + self.path]
        parts += [a.label for a in self.arguments]
        parts += [o.label for o in self.options.values()]
        return " ".join(parts)

    def describe(self, prefix: str, permission_text: str = "") -> str:
        """What `help <command>` shows; `{prefix}` in texts becomes the prefix."""
        lines = [f"{self.usage(prefix)} — {self.help}"]
        if self.details:
            lines.append(self.details)
        for arg in self.arguments:
            if arg.help:
                lines.append(f"  {arg.label}: {arg.help}")
        for opt in self.options.values():
            if opt.help:
                lines.append(f"  --{opt.name}: {opt.help}")
        lines = [line.replace("{prefix}", prefix) for line in lines]
        if permission_text:
            lines.append(permission_text)
        if self.direct_only:
            lines.append("Works only in a direct chat with me.")
        for example in self.examples:
            lines.append(f"Example: {prefix}{example}")
        return "\n".join(lines)

    def parse_arguments(self, text: str) -> dict[str, Any]:
        try:
            return parse_arguments(text, self.arguments, self.options)
        except UsageError as e:
            e.command = e.command or self
            raise

class Group:
    """A command with subcommands: `staff add`, `staff remove`, … ."""

    def __init__(self, name: str, *, help: str, parent: Group | None = None,
                 default: str = "") -> None:
        self.name = name
        self.help = help
        self.parent = parent
        self.default = default
        self.children: dict[str, Command | Group] = {}
        self.aliases: dict[str, str] = {}

    @property
    def path(self) -> str:
        return f"{self.parent.path} {self.name}".strip() if self.parent else ""

    def command(self, name: str, *, help: str, permission: Any = None,
                direct_only: bool = False, examples: Sequence[str] = (), details: str = "",
                aliases: Sequence[str] = ()) -> Callable[[Handler], Command]:
        def register(handler: Handler) -> Command:
            command = Command(name, handler, help=help, parent=self, permission=permission,
                              direct_only=direct_only, examples=examples, details=details)
            self._add(name, command, aliases)
            return command

        return register

    def group(self, name: str, *, help: str, default: str = "",
              aliases: Sequence[str] = ()) -> Group:
        group = Group(name, help=help, parent=self, default=default)
        self._add(name, group, aliases)
        return group

    def _add(self, name: str, entry: Command | Group, aliases: Sequence[str]) -> None:
        for word in (name, *aliases):
            if word != word.lower() or not word or any(c.isspace() for c in word):
                raise ValueError(f"command names are single lowercase words: {word!r}")
            if word in self.children or word in self.aliases:
                raise ValueError(f"'{(self.path + ' ' + word).strip()}' is declared twice")
        self.children[name] = entry
        for alias in aliases:
            self.aliases[alias] = name

    def lookup(self, word: str) -> Command | Group | None:
        word = word.lower()
        return self.children.get(self.aliases.get(word, word))

    def commands(self) -> Iterator[Command]:
        """Every command under this group, depth first, in declaration order."""
        for entry in self.children.values():
            if isinstance(entry, Command):
                yield entry
            else:
                yield from entry.commands()

    def summary(self, prefix: str) -> str:
        names = "|".join(self.children)
        return f"{prefix}{self.path} {names} … — {self.help}"

    def describe(self, prefix: str) -> str:
        lines = [f"{prefix}{self.path} — {self.help}"]
        lines += [f"{c.usage(prefix)} — {c.help}" for c in self.commands()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Invocation:
    """A command ready to run: what was typed, resolved and typed."""

    command: Command
    values: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What `dispatch` did: the reply, and which command (for metrics and logs)."""

    reply: Reply
    command: str
    ok: bool


C = TypeVar("C", bound=Context)
Authorize = Callable[[Any, Command, dict[str, Any]], Awaitable[dict[str, Any] | None]]


class Registry(Group, Generic[C]):
    """The commands of one bot, with its prefix and how it checks permissions.

    `authorize(ctx, command, values)` is awaited before every command that declares a
    `permission`; it raises CommandError to refuse, and may return changed values
    (for example a shop filled in because the user works for only one).
    `describe_permission(permission)` is the sentence `help <command>` shows for it.

    Both `help` and `!help` work in a direct chat; in a group room only `!help` does. Replies
    write commands the way that works where they are read (`shown_prefix`).
    A message longer than `max_length` is answered without being parsed.
    """

    def __init__(self, *, prefix: str = DEFAULT_PREFIX, bot_name: str = "me",
                 authorize: Authorize | None = None,
                 describe_permission: Callable[[Any], str] | None = None,
                 max_length: int = MAX_COMMAND_CHARS) -> None:
        super().__init__("", help="")
        self.prefix = prefix
        self.bot_name = bot_name
        self.authorize = authorize
        self.describe_permission = describe_permission or (lambda permission: "")
        self.max_length = max_length
        self._add_help()

    def with_prefix(self, prefix: str) -> Registry[C]:
        """The same commands under another prefix (each bot configures its own)."""
        other = copy.copy(self)
        other.prefix = prefix
        return other

    # -- parsing (pure) -----------------------------------------------------------------

    def shown_prefix(self, *, direct: bool) -> str:
        """How replies write commands: plain in a direct chat, with the prefix elsewhere."""
        return "" if direct else self.prefix

    def parse(self, body: str, *, direct: bool) -> Invocation | None:
        """The command in a message, or None if the message is not one; UsageError if wrong."""
        typed = parse_command(body, self.prefix, direct=direct)
        if typed is None:
            return None
        p = self.shown_prefix(direct=direct)
        if len(body) > self.max_length:
            raise UsageError(f"That message is too long for a command ({len(body):,} "
                             f"characters; a command has at most {self.max_length:,}), so I "
                             f"did not read it. Type {p}help for the commands.")
        entry = self.lookup(typed.name)
        if entry is None:
            raise UsageError(self._unknown(typed.name, p))
        rest = typed.args
        while not isinstance(entry, Command):
            words = rest.split(None, 1)
            if not words or (entry.default and words[0].startswith("--")):
                if entry.default:
                    entry = entry.children[entry.default]
                    continue
                raise UsageError(f"{p}{entry.path} needs one of: "
                                 f"{', '.join(entry.children)}.\n{entry.describe(p)}")
            child = entry.lookup(words[0])
            if child is None:
                raise UsageError(self._unknown_subcommand(entry, words[0], p))
            entry = child
            rest = words[1] if len(words) > 1 else ""
        return Invocation(entry, entry.parse_arguments(rest))

    def _unknown(self, word: str, p: str) -> str:
        suggestion = self.suggest(word)
        hint = f" Did you mean {p}{suggestion}?" if suggestion else ""
        return f"Unknown command {quoted(word)}.{hint} Type {p}help for the list."

    def _unknown_subcommand(self, group: Group, word: str, p: str) -> str:
        nearest = difflib.get_close_matches(word.lower(), list(group.children), n=1)
        hint = f" Did you mean {p}{group.path} {nearest[0]}?" if nearest else ""
        return f"{p}{group.path} has no {quoted(word)}.{hint}\n{group.describe(p)}"

    def suggest(self, word: str) -> str | None:
        """The nearest command: by spelling, or a subcommand typed on its own (`apply`)."""
        word = word.lower()
        by_last_word: dict[str, list[str]] = {}
        for command in self.commands():
            by_last_word.setdefault(command.name, []).append(command.path)
        if len(by_last_word.get(word, [])) == 1:
            return by_last_word[word][0]
        nearest = difflib.get_close_matches(word, [*self.children, *self.aliases], n=1)
        if nearest:
            return self.aliases.get(nearest[0], nearest[0])
        nearest = difflib.get_close_matches(word, list(by_last_word), n=1)
        if nearest and len(by_last_word[nearest[0]]) == 1:
            return by_last_word[nearest[0]][0]
        return None

    # -- running ------------------------------------------------------------------------

    async def dispatch(self, body: str, ctx: C) -> Outcome | None:
        """Run the command in `body` for `ctx`; None when the message is not a command."""
        ctx.prefix = self.shown_prefix(direct=ctx.direct)
        ctx.room_prefix = self.prefix
        try:
            invocation = self.parse(body, direct=ctx.direct)
        except UsageError as e:
            return Outcome(Reply(self._usage_reply(e, ctx.prefix)), "usage_error", ok=False)
        if invocation is None:
            return None
        command = invocation.command
        try:
            if command.direct_only and not ctx.direct:
                raise CommandError(f"{ctx.prefix}{command.path} works only in a direct chat "
                                   f"with {self.bot_name}, so no one else sees the answer. "
                                   "Open one and type it there.")
            values = invocation.values
            if command.permission is not None and self.authorize is not None:
                values = await self.authorize(ctx, command, dict(values)) or values
            result = command.handler(ctx, **values)
            if inspect.isawaitable(result):
                result = await result
        except UsageError as e:
            e.command = e.command or command
            return Outcome(Reply(self._usage_reply(e, ctx.prefix)), command.path, ok=False)
        except CommandError as e:
            return Outcome(Reply(e.message), command.path, ok=False)
        except Exception:
            log.exception("command.failed", command=command.path, sender=ctx.sender)
            return Outcome(Reply(f"{ctx.prefix}{command.path} failed on my side. Try again in "
                                 "a moment; if it keeps failing, tell the operator."),
                           command.path, ok=False)
        reply = result if isinstance(result, Reply) else Reply(str(result or "Done."))
        return Outcome(reply, command.path, ok=True)

    def _usage_reply(self, error: UsageError, p: str) -> str:
        if error.command is None:
            return error.message
        return (f"{error.message}\nUsage: {error.command.usage(p)}\n"
                f"(type {p}help {error.command.path} for details)")

    # -- help ---------------------------------------------------------------------------

    def _add_help(self) -> None:
        @self.command("help", help="show the commands, or how to use one",
                      examples=("help", "help shop apply"))
        @argument("command", required=False, rest=True, help="a command, e.g. 'shop apply'")
        def show_help(ctx: Context, command: str | None) -> str:
            # From ctx: this registry may be a copy under another prefix.
            return self.help_text(command, prefix=ctx.prefix, room_prefix=ctx.room_prefix)

    def help_text(self, topic: str | None = None, *, prefix: str | None = None,
                  room_prefix: str | None = None) -> str:
        """The list of commands, or one command's details, written with `prefix` (default:
        the group-room spelling); `room_prefix` is the prefix a group room needs."""
        rp = self.prefix if room_prefix is None else room_prefix
        p = rp if prefix is None else prefix
        if not topic:
            lines = ["Commands:"]
            for entry in self.children.values():
                lines.append(f"{entry.usage(p)} — {entry.help}" if isinstance(entry, Command)
                             else entry.summary(p))
            if p:
                lines.append(f"Type {p}help <command> for details. In a direct chat with "
                             f"{self.bot_name}, the {p} is optional.")
            else:
                lines.append("Type help <command> for details."
                             + (f" In a group room, start each command with {rp} ({rp}help)."
                                if rp else ""))
            return "\n".join(lines)
        target: Command | Group = self
        for word in topic.split():
            word = word.removeprefix(rp) if rp else word
            found = target.lookup(word) if isinstance(target, Group) else None
            if found is None:
                suggestion = self.suggest(word)
                hint = f" Did you mean {p}help {suggestion}?" if suggestion else ""
                return (f"There is no command {quoted(topic)}.{hint} Type {p}help for "
                        "the list.")
            target = found
        if isinstance(target, Group):
            return target.describe(p)
        permission = (self.describe_permission(target.permission)
                      if target.permission is not None else "")
        return target.describe(p, permission)

