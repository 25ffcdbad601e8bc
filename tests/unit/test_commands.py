"""The command framework: parsing, typed arguments, subcommands, help, errors. No server."""

from __future__ import annotations

from typing import Any

import pytest

from mercato.commands import (
    ArgumentError,
    Command,
    CommandError,
    CommandText,
    Context,
    Registry,
    Reply,
    UsageError,
    argument,
    https_url,
    integer,
    matrix_user_id,
    one_of,
    option,
    parse_command,
    strip_reply_fallback,
    tokenize,
)

# -- the first word and the prefix ----------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
def test_prefixed_command_works_everywhere(direct: bool) -> None:
    assert parse_command("!ping", "!", direct=direct) == CommandText(name="ping", args="")


def test_arguments_are_kept_and_trimmed() -> None:
    assert parse_command("  !help   catalog  ", "!", direct=False) == \
        CommandText(name="help", args="catalog")
    assert parse_command("!add sku-1 12.50 Red shoes", "!", direct=False) == \
        CommandText(name="add", args="sku-1 12.50 Red shoes")
    assert parse_command("!note first line\nsecond line", "!", direct=False) == \
        CommandText(name="note", args="first line\nsecond line")


def test_plain_words_only_in_direct_chats() -> None:
    assert parse_command("ping", "!", direct=True) == CommandText(name="ping", args="")
    assert parse_command("ping", "!", direct=False) is None
    assert parse_command("hello everyone, what a sale", "!", direct=False) is None


def test_command_name_is_case_insensitive_arguments_are_not() -> None:
    assert parse_command("!PING", "!", direct=False) == CommandText(name="ping", args="")
    assert parse_command("Help Catalog", "!", direct=True) == \
        CommandText(name="help", args="Catalog")


@pytest.mark.parametrize("body", ["", "   ", "!", "  !  "])
@pytest.mark.parametrize("direct", [False, True])
def test_empty_is_not_a_command(body: str, direct: bool) -> None:
    assert parse_command(body, "!", direct=direct) is None


def test_configured_prefix() -> None:
    assert parse_command("?ping", "?", direct=False) == CommandText(name="ping", args="")
    assert parse_command("!ping", "?", direct=False) is None
    assert parse_command("shop:help me", "shop:", direct=False) == CommandText("help", "me")


@pytest.mark.parametrize(("body", "expected"), [
    ("! ping", CommandText("ping", "")),
    ("!help\tcatalog", CommandText("help", "catalog")),
    ("!help\ncatalog", CommandText("help", "catalog")),
])
def test_any_whitespace_separates_the_command(body: str, expected: CommandText) -> None:
    assert parse_command(body, "!", direct=False) == expected


def test_reply_fallback_is_not_part_of_the_command() -> None:
    assert strip_reply_fallback("> <@bot:s> pong\n\n!ping") == "!ping"
    assert strip_reply_fallback("> a\n> b\n\nhelp shop") == "help shop"
    assert strip_reply_fallback("!ping") == "!ping"
    assert strip_reply_fallback(">>> not a quote? ") == ""


# -- words and quotes ---------------------------------------------------------------------

def test_quotes_keep_words_together() -> None:
    assert [t.text for t in tokenize('a "b c"  “d e” f')] == ["a", "b c", "d e", "f"]
    assert [t.quoted for t in tokenize('a "b c"')] == [False, True]


def test_an_apostrophe_is_not_a_quote() -> None:
    assert [t.text for t in tokenize("Joe's shop")] == ["Joe's", "shop"]


def test_unclosed_quote_says_how_to_fix_it() -> None:
    with pytest.raises(UsageError, match="not closed"):
        tokenize('say "hello')


# -- a small bot to drive the registry ---------------------------------------------------

def make_registry(prefix: str = "!") -> Registry[Context]:
    registry: Registry[Context] = Registry(prefix=prefix, bot_name="the bot")

    @registry.command("ping", help="check that the bot is alive")
    def ping(ctx: Context) -> str:
        return "pong"

    @registry.command("echo", help="say it back", examples=("echo hello",))
    @argument("words", rest=True)
    async def echo(ctx: Context, words: str) -> str:
        return words

    @registry.command("count", help="count up to a number")
    @argument("upto", parser=integer(1, 10))
    @argument("step", parser=integer(1), required=False)
    def count(ctx: Context, upto: int, step: int | None) -> str:
        return " ".join(str(n) for n in range(1, upto + 1, step or 1))

    shop = registry.group("shop", help="your shop", default="status")

    @shop.command("apply", help="apply for a shop",
                  details="Short names use {prefix}-free lowercase words.")
    @argument("slug", help="the short name")
    @argument("name", rest=True)
    @option("website", parser=https_url, metavar="https://…")
    @option("description", rest=True, metavar="text")
    @option("dry-run", flag=True)
    def apply(ctx: Context, **values: Any) -> str:
        return repr(sorted(values.items()))

    @shop.command("status", help="show a shop")
    @argument("slug", required=False)
    def status(ctx: Context, slug: str | None) -> str:
        return f"status of {slug or 'your shop'}"

    settings = shop.group("set", help="change settings")

    @settings.command("welcome", help="set the welcome message", permission="owner")
    @argument("text", rest=True)
    @option("shop")
    def welcome(ctx: Context, text: str, shop: str | None) -> Reply:
        return Reply(f"{shop}: {text}", f"<b>{shop}</b>")

    staff = registry.group("staff", help="the people of your shop")

    @staff.command("add", help="add someone", permission="owner", direct_only=True)
    @argument("user", parser=matrix_user_id)
    @argument("role", parser=one_of("owner", "editor"))
    def add(ctx: Context, user: str, role: str) -> str:
        return f"{user} is {role}"

    @staff.command("boom", help="fails")
    def boom(ctx: Context) -> str:
        raise RuntimeError("bug")

    @staff.command("refuse", help="refuses")
    def refuse(ctx: Context) -> str:
        raise CommandError("No, and here is why.")

    return registry


async def run(registry: Registry[Context], body: str, *, direct: bool = True,
              sender: str = "@alice:example.org") -> str:
    outcome = await registry.dispatch(body, Context(sender=sender, direct=direct))
    assert outcome is not None
    return outcome.reply.text


# -- dispatching ------------------------------------------------------------------------

async def test_a_message_that_is_no_command_gets_no_answer() -> None:
    registry = make_registry()
    assert await registry.dispatch("hello all", Context(sender="@a:b", direct=False)) is None
    assert await registry.dispatch("   ", Context(sender="@a:b", direct=True)) is None


async def test_plain_and_prefixed_commands() -> None:
    registry = make_registry()
    assert await run(registry, "ping") == "pong"
    assert await run(registry, "!PING", direct=False) == "pong"
    outcome = await registry.dispatch("!ping", Context(sender="@a:b"))
    assert outcome is not None and outcome.ok and outcome.command == "ping"


async def test_configured_prefix_is_used_in_answers() -> None:
    registry = make_registry().with_prefix("?")
    assert await run(registry, "?ping", direct=False) == "pong"
    assert await registry.dispatch("!ping", Context(sender="@a:b")) is None
    assert "?help" in await run(registry, "?pnig", direct=False)
    assert "?shop apply <slug>" in await run(registry, "?help shop", direct=False)
    # In a direct chat no prefix is needed, so none is shown; the footer names this one.
    text = await run(registry, "help")
    assert "\nshop apply|status|set … — your shop" in text
    assert text.endswith("In a group room, start each command with ? (?help).")


async def test_rest_of_line_keeps_what_was_typed() -> None:
    registry = make_registry()
    assert await run(registry, "echo  two  spaces\nand a line") == "two  spaces\nand a line"
    assert await run(registry, 'echo "quoted words"') == "quoted words"
    assert await run(registry, 'echo say "hi" --now') == 'say "hi" --now'


async def test_typed_arguments_are_converted() -> None:
    registry = make_registry()
    assert await run(registry, "count 5") == "1 2 3 4 5"
    assert await run(registry, "count 5 2") == "1 3 5"


async def test_bad_argument_says_what_to_type_instead() -> None:
    registry = make_registry()
    text = await run(registry, "!count five", direct=False)
    assert text.splitlines() == ["<upto>: 'five' is not a whole number",
                                 "Usage: !count <upto> [step]",
                                 "(type !help count for details)"]
    # In a direct chat the same answer writes commands as they are typed there.
    assert (await run(registry, "count five")).splitlines()[1:] == [
        "Usage: count <upto> [step]", "(type help count for details)"]
    assert "more than 10" in await run(registry, "count 11")


async def test_missing_and_extra_arguments() -> None:
    registry = make_registry()
    assert (await run(registry, "staff add @bob:example.org")).startswith("Missing <role>.")
    text = await run(registry, "count 1 2 3")
    assert text.startswith("I did not expect '3' there.")
    assert "Usage: count <upto> [step]" in text


async def test_options_anywhere_and_rest_options_run_to_the_next_option() -> None:
    registry = make_registry()
    text = await run(registry, "shop apply green-grocer --website greengrocer.example Green "
                               "Grocer --description Fresh fruit, daily --dry-run")
    assert text == repr(sorted({
        "slug": "green-grocer", "name": "Green Grocer",
        "website": "https://greengrocer.example", "description": "Fresh fruit, daily",
        "dry_run": True}.items()))
    text = await run(registry, "shop apply a-b A B --website=https://x.example")
    assert "'website', 'https://x.example'" in text and "'dry_run', False" in text
    assert "'description', None" in text


async def test_option_typos_and_missing_values() -> None:
    registry = make_registry()
    text = await run(registry, "!shop apply a-b Name --webiste https://x.example",
                     direct=False)
    assert text.startswith("Unknown option --webiste. Did you mean --website?")
    assert "Usage: !shop apply <slug> <name…> [--website https://…]" in text
    assert (await run(registry, "shop apply a-b Name --website")).startswith(
        "--website needs a value")
    assert (await run(registry, "shop apply a-b Name --website nope")).startswith(
        "--website: 'nope' is not a web address")


async def test_free_text_may_hold_unknown_double_dashes() -> None:
    registry = make_registry()
    assert await run(registry, "shop set welcome Use code --spring10 today") == \
        "None: Use code --spring10 today"
    assert await run(registry, "shop set welcome Hi there --shop green") == "green: Hi there"


async def test_subcommands_nested_and_default() -> None:
    registry = make_registry()
    assert await run(registry, "shop status corner") == "status of corner"
    assert await run(registry, "shop") == "status of your shop"
    text = await run(registry, "!shop stats", direct=False)
    assert text.startswith("!shop has no 'stats'. Did you mean !shop status?")
    assert "!shop apply <slug> <name…>" in text
    text = await run(registry, "staff")
    assert text.startswith("staff needs one of: add, boom, refuse.")


async def test_unknown_command_suggests_the_nearest() -> None:
    registry = make_registry()
    assert await run(registry, "!pnig", direct=False) == \
        "Unknown command 'pnig'. Did you mean !ping? Type !help for the list."
    assert await run(registry, "pnig") == \
        "Unknown command 'pnig'. Did you mean ping? Type help for the list."
    assert "Did you mean shop?" in await run(registry, "shp")
    # A subcommand typed on its own points to its group.
    assert "Did you mean shop apply?" in await run(registry, "apply x y")
    assert "Did you mean" not in await run(registry, "xyzzy")


HUGE = "x" * 65_536


@pytest.mark.parametrize("body", [
    HUGE,  # an unknown command
    "!" + HUGE,
    "shop " + HUGE,  # an unknown subcommand
    "count " + HUGE,  # a bad value
    "count 1 2 " + HUGE,  # words too many
    "shop apply a-b Name --" + HUGE,  # an unknown option
    "shop apply a-b Name --website " + HUGE,
    "staff add " + HUGE + " editor",  # a parser of the framework
    "help " + HUGE,
])
async def test_a_huge_message_gets_a_short_answer(body: str) -> None:
    for direct in (True, False):
        if not direct and not body.startswith("!"):
            body = "!" + body
        text = await run(make_registry(), body, direct=direct)
        assert len(text) < 500, text[:600]
        assert "help" in text


@pytest.mark.parametrize(("body", "quoted"), [
    ("y" * 200, "Unknown command 'yyyyy"),
    ("count " + "9" * 60 + "z", "<upto>: '99999"),
    ("shop apply a-b Name --website " + "w" * 80, "--website: 'wwww"),
    ("count 1 2 " + "extra " * 40, "I did not expect 'extra extra"),
    ("shop " + "s" * 100, "shop has no 'ssss"),
    ("help " + "h" * 100, "There is no command 'hhhh"),
    ("staff add @bob:example.org " + "r" * 70, "<role>: 'rrrr"),
])
async def test_what_was_typed_is_quoted_as_a_short_prefix(body: str, quoted: str) -> None:
    text = await run(make_registry(), body)
    assert quoted in text
    start = text.index(quoted) + quoted.index("'") + 1
    shown = text[start:text.index("'", start)]
    assert len(shown) <= 51 and shown.endswith("…"), shown


async def test_a_message_too_long_for_any_command_is_not_read() -> None:
    registry = make_registry()
    text = await run(registry, "echo " + "w " * 10_000)
    assert text == ("That message is too long for a command (20,005 characters; a command has "
                    "at most 16,000), so I did not read it. Type help for the commands.")
    assert await run(registry, "echo " + "w" * 15_000) == "w" * 15_000
    # In a group room, a long message that is no command is left alone, as any other.
    assert await registry.dispatch("w " * 10_000, Context(sender="@a:b", direct=False)) is None


async def test_direct_only_commands_refuse_in_groups() -> None:
    registry = make_registry()
    text = await run(registry, "!staff add @bob:example.org editor", direct=False)
    assert "works only in a direct chat with the bot" in text
    assert await run(registry, "staff add @bob:example.org editor") == \
        "@bob:example.org is editor"


async def test_permission_is_checked_before_the_handler() -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    async def authorize(ctx: Context, command: Command, values: dict[str, Any]
                        ) -> dict[str, Any]:
        seen.append((ctx.sender, command.path, values))
        if ctx.sender != "@owner:example.org":
            raise CommandError(f"Only owners may use !{command.path}.")
        return {**values, "shop": values["shop"] or "only-shop"}

    registry = make_registry()
    registry.authorize = authorize
    assert await run(registry, "shop set welcome Hi", sender="@owner:example.org") == \
        "only-shop: Hi"
    outcome = await registry.dispatch("shop set welcome Hi",
                                      Context(sender="@x:example.org", direct=True))
    assert outcome is not None and not outcome.ok
    assert outcome.reply.text == "Only owners may use !shop set welcome."
    assert await run(registry, "ping", sender="@x:example.org") == "pong"  # no permission
    assert [path for _, path, _ in seen] == ["shop set welcome", "shop set welcome"]


async def test_handler_errors_are_shown_and_bugs_are_not() -> None:
    registry = make_registry()
    assert await run(registry, "staff refuse") == "No, and here is why."
    outcome = await registry.dispatch("staff boom", Context(sender="@a:b", direct=True))
    assert outcome is not None and not outcome.ok and outcome.command == "staff boom"
    assert "failed on my side" in outcome.reply.text and "bug" not in outcome.reply.text


async def test_handlers_may_answer_with_html() -> None:
    registry = make_registry()
    outcome = await registry.dispatch("shop set welcome hi --shop s",
                                      Context(sender="@a:b", direct=True))
    assert outcome is not None and outcome.reply == Reply("s: hi", "<b>s</b>")


# -- help -------------------------------------------------------------------------------

async def test_help_lists_every_top_level_command() -> None:
    text = await run(make_registry(), "!help", direct=False)
    assert text.splitlines() == [
        "Commands:",
        "!help [command…] — show the commands, or how to use one",
        "!ping — check that the bot is alive",
        "!echo <words…> — say it back",
        "!count <upto> [step] — count up to a number",
        "!shop apply|status|set … — your shop",
        "!staff add|boom|refuse … — the people of your shop",
        "Type !help <command> for details. In a direct chat with the bot, the ! is optional.",
    ]


@pytest.mark.parametrize("typed", ["help", "!help", "HELP", "! help"])
async def test_help_in_a_direct_chat_writes_commands_as_typed_there(typed: str) -> None:
    # One spelling in a direct chat, the one the docs use: no prefix; both are accepted.
    lines = (await run(make_registry(), typed)).splitlines()
    assert lines[1:3] == ["help [command…] — show the commands, or how to use one",
                          "ping — check that the bot is alive"]
    assert not any(line.startswith("!") for line in lines)
    assert lines[-1] == ("Type help <command> for details. In a group room, start each "
                         "command with ! (!help).")


async def test_help_of_a_group_lists_its_commands_with_usage() -> None:
    text = await run(make_registry(), "!help shop", direct=False)
    assert text.splitlines() == [
        "!shop — your shop",
        "!shop apply <slug> <name…> [--website https://…] [--description text…] [--dry-run]"
        " — apply for a shop",
        "!shop status [slug] — show a shop",
        "!shop set welcome <text…> [--shop shop] — set the welcome message",
    ]


async def test_help_of_a_command_explains_it() -> None:
    registry = make_registry()
    registry.describe_permission = lambda permission: f"Needs: {permission}."
    text = await run(registry, "!help shop apply", direct=False)
    assert text.splitlines()[:3] == [
        "!shop apply <slug> <name…> [--website https://…] [--description text…] [--dry-run]"
        " — apply for a shop",
        "Short names use !-free lowercase words.",
        "  <slug>: the short name",
    ]
    assert "Example: !echo hello" in await run(registry, "!help !echo", direct=False)
    assert "Example: echo hello" in await run(registry, "help !echo")
    text = await run(registry, "help staff add")
    assert "Needs: owner." in text and "Works only in a direct chat" in text


async def test_help_for_an_unknown_command_suggests() -> None:
    text = await run(make_registry(), "!help shop aply", direct=False)
    assert text == ("There is no command 'shop aply'. Did you mean !help shop apply? "
                    "Type !help for the list.")


# -- declarations ---------------------------------------------------------------------------

def test_argument_decorators_work_above_and_below_the_command() -> None:
    registry: Registry[Context] = Registry()

    @argument("first")
    @registry.command("pair", help="two words")
    @argument("second")
    def pair(ctx: Context, first: str, second: str) -> str:
        return first + second

    assert isinstance(pair, Command)
    assert pair.usage("!") == "!pair <first> <second>"


def test_only_the_last_argument_takes_the_rest() -> None:
    registry: Registry[Context] = Registry()
    with pytest.raises(TypeError, match="only the last argument"):
        @registry.command("bad", help="")
        @argument("words", rest=True)
        @argument("more")
        def bad(ctx: Context, words: str, more: str) -> None: ...


def test_a_name_declared_twice_is_refused() -> None:
    registry: Registry[Context] = Registry()
    with pytest.raises(ValueError, match="declared twice"):
        registry.group("help", help="again")


# -- parsers ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["@alice:example.org", "@bob:localhost:8448",
                                   "@shop_a-b:[::1]", "@a.b=c/d+e:example.org,"])
def test_matrix_user_id_accepts(value: str) -> None:
    assert matrix_user_id(value) == value.rstrip(",")


@pytest.mark.parametrize("value", ["alice", "@Alice:example.org", "@alice", "alice:example.org",
                                   "@alice:exa mple.org"])
def test_matrix_user_id_refuses(value: str) -> None:
    with pytest.raises(ArgumentError, match="@alice:example.org"):
        matrix_user_id(value)


def test_one_of_suggests() -> None:
    parse = one_of("owner", "editor")
    assert parse("EDITOR") == "editor"
    with pytest.raises(ArgumentError, match="Did you mean editor"):
        parse("editr")


def test_https_url() -> None:
    assert https_url("shop.example/path") == "https://shop.example/path"
    for bad in ("http://shop.example", "localhost", "https://user@shop.example"):
        with pytest.raises(ArgumentError):
            https_url(bad)
