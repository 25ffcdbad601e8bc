"""The shop bot's commands without a server: parsers, answers, and who may do what.

The commerce API is replaced by an in-memory stand-in that answers like the real
one (its refusals included); the tests read the replies a user would see.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bots.shopbot import replies
from bots.shopbot.api import ApiError, ApiUnavailable, CommerceApi
from bots.shopbot.bot import command_text, reply_content
from bots.shopbot.commands import ShopContext, registry
from mercato.commands import ArgumentError, Reply
from tests.conftest import free_port

# -- parsers ----------------------------------------------------------------------------


def test_opening_hours_from_words() -> None:
    assert replies.parse_opening_hours(
        "mon-fri 09:00-12:00 14:00-18:00, sat 10-14 Europe/Paris") == {
        "timezone": "Europe/Paris",
        "mon": ["09:00-12:00", "14:00-18:00"], "tue": ["09:00-12:00", "14:00-18:00"],
        "wed": ["09:00-12:00", "14:00-18:00"], "thu": ["09:00-12:00", "14:00-18:00"],
        "fri": ["09:00-12:00", "14:00-18:00"], "sat": ["10:00-14:00"]}
    assert replies.parse_opening_hours("Sat Sun 10:00-24:00") == {
        "timezone": "UTC", "sat": ["10:00-24:00"], "sun": ["10:00-24:00"]}
    assert replies.parse_opening_hours("fri-mon 9-17 utc") == {
        "timezone": "UTC", "mon": ["09:00-17:00"], "fri": ["09:00-17:00"],
        "sat": ["09:00-17:00"], "sun": ["09:00-17:00"]}
    assert "sun" not in replies.parse_opening_hours("daily 08:00-20:00 sun closed")
    assert replies.parse_opening_hours("off") == {}


@pytest.mark.parametrize(("text", "message"), [
    ("09:00-18:00", "say which days first"),
    ("mon 18:00-09:00", "not a span of time"),
    ("mon nine-five", "I do not understand 'nine-five'"),
    ("mon 17-9", "'17-9' is not a span of time"),
    ("mon 09:00-17:00 Mars/Olympus", "unknown time zone"),
    ("mon", "at least one day with hours"),
])
def test_opening_hours_errors_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        replies.parse_opening_hours(text)


def test_keyword_replies() -> None:
    assert replies.parse_keyword_replies("Delivery: We ship in 2 days; returns: 30 days") == [
        {"keyword": "delivery", "reply": "We ship in 2 days"},
        {"keyword": "returns", "reply": "30 days"}]
    assert replies.parse_keyword_replies("a: one; two\nb: three") == [
        {"keyword": "a", "reply": "one; two"}, {"keyword": "b", "reply": "three"}]
    assert replies.parse_keyword_replies("off") == []
    with pytest.raises(ArgumentError, match="keyword: reply"):
        replies.parse_keyword_replies("delivery in 2 days")


def test_format_hours_groups_days() -> None:
    hours = replies.parse_opening_hours("mon-fri 09:00-18:00 sat 10:00-14:00 Europe/Paris")
    assert replies.format_hours(hours) == \
        "mon-fri 09:00-18:00, sat 10:00-14:00 (Europe/Paris)"
    assert replies.format_hours(None) == "always open"


def test_tables_escape_what_users_typed() -> None:
    html = replies.table(("Name",), [("<b>Shop</b> & co",)])
    assert "&lt;b&gt;Shop&lt;/b&gt; &amp; co" in html


# -- the Matrix side of a reply ---------------------------------------------------------

def test_reply_is_a_notice_replying_to_the_command_with_clean_html() -> None:
    content = reply_content(Reply("text", '<table><tr><td onclick="x()">a</td></tr></table>'
                                          "<script>alert(1)</script>"), "$ev", "@a:b")
    assert content["msgtype"] == "m.notice" and content["body"] == "text"
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$ev"}}
    assert content["format"] == "org.matrix.custom.html"
    assert "onclick" not in content["formatted_body"]
    assert "script" not in content["formatted_body"]
    assert "formatted_body" not in reply_content(Reply("plain"), "$ev", "@a:b")


@pytest.mark.parametrize(("content", "expected"), [
    ({"msgtype": "m.text", "body": "!ping"}, "!ping"),
    ({"msgtype": "m.text", "body": "> <@b:s> pong\n\nping"}, "ping"),
    ({"msgtype": "m.notice", "body": "!ping"}, None),
    ({"msgtype": "m.image", "body": "ping.png"}, None),
    ({"msgtype": "m.text", "body": "* !ping", "m.relates_to": {"rel_type": "m.replace"}}, None),
])
def test_which_messages_may_be_commands(content: dict[str, Any], expected: str | None) -> None:
    assert command_text(content) == expected


# -- commands against a stand-in API ----------------------------------------------------

class FakeShops:
    """Answers like the commerce API for one acting user (refusals included)."""

    def __init__(self, roles: dict[str, str]) -> None:
        self.roles = roles
        self.changes: dict[str, dict[str, Any]] = {}

    async def my_shops(self) -> list[dict[str, str]]:
        return [{"slug": slug, "role": role} for slug, role in self.roles.items()]

    async def shop(self, slug: str) -> dict[str, Any]:
        return {"slug": slug, "name": slug.title(), "status": "pending", "verified": False,
                "user_id": f"@shop_{slug}:localhost", "channels": [], "welcome_message": "",
                "opening_hours": None, "keyword_replies": [], **self.changes.get(slug, {})}

    async def update_shop(self, slug: str, changes: dict[str, Any]) -> dict[str, Any]:
        if self.roles.get(slug) != "owner":
            raise ApiError(403, "M_FORBIDDEN", f"You are not staff of the shop '{slug}'.")
        self.changes.setdefault(slug, {}).update(changes)
        return await self.shop(slug)

    async def staff(self, slug: str) -> list[dict[str, Any]]:
        return [{"user_id": "@o:localhost", "role": "owner", "added_by": "@o:localhost",
                 "added_at": 0}]

    async def add_staff(self, slug: str, user_id: str, role: str) -> dict[str, Any]:
        return {"user_id": user_id, "role": role, "staff_room_invite": "after_approval"}

    async def create_key(self, slug: str, label: str, role: str) -> dict[str, Any]:
        return {"key_id": "1a2b3c4d", "label": label, "role": role,
                "key": "mk_1a2b3c4d_secret"}

    async def directory(self, query: str = "") -> list[dict[str, Any]]:
        shops = [{"slug": "green", "name": "Green Grocer", "verified": True,
                  "description": "Fresh fruit", "channels": ["#shop_green:localhost"]},
                 {"slug": "shoes", "name": "Shoe Box", "verified": False, "description": "",
                  "channels": []}]
        return [s for s in shops if query.lower() in f"{s['slug']} {s['name']}".lower()]


async def say(body: str, roles: dict[str, str] | None = None, *, direct: bool = True,
              api: FakeShops | None = None) -> str:
    api = api or FakeShops(roles or {})
    ctx = ShopContext(sender="@o:localhost", direct=direct, api=api)  # type: ignore[arg-type]
    outcome = await registry.dispatch(body, ctx)
    assert outcome is not None
    return outcome.reply.text


async def test_the_only_shop_is_the_default() -> None:
    text = await say("staff add @x:localhost editor", {"corner": "owner"})
    assert text == ("@x:localhost is now editor of corner. They will be invited to the shop's "
                    "staff room once the shop is approved.")


async def test_several_shops_need_the_shop_option() -> None:
    roles = {"corner": "owner", "market": "owner"}
    text = await say("staff list", roles)
    assert text.startswith("You work for several shops (corner, market); say which one "
                           "with --shop")
    assert (await say("staff list --shop market", roles)).startswith("Staff of market:")


async def test_refusals_say_why_and_what_next() -> None:
    assert (await say("staff list", {})).startswith("You do not work for any shop. Open one "
                                                    "with shop apply <slug> <name…>")
    assert (await say("!staff list", {}, direct=False)).startswith(
        "You do not work for any shop. Open one with !shop apply <slug> <name…>")
    text = await say("staff add @x:localhost editor --shop other", {"corner": "owner"})
    assert text == ("You are not staff of the shop 'other', so you cannot use staff add "
                    "there. Your shops: corner.")
    text = await say("keys list", {"corner": "editor"})
    assert text == ("Only an owner of 'corner' can use keys list; your role there is editor. "
                    "Ask an owner.")


async def test_api_refusal_is_shown_as_its_sentence() -> None:
    api = FakeShops({"corner": "owner"})
    api.roles = {"corner": "owner"}

    async def forbidden(slug: str, changes: dict[str, Any]) -> dict[str, Any]:
        raise ApiError(403, "M_FORBIDDEN", "Your role in 'corner' is editor, which may not "
                                           "edit shop.")

    api.update_shop = forbidden  # type: ignore[method-assign]
    assert await say("shop set welcome Hi", api=api) == \
        "Your role in 'corner' is editor, which may not edit shop."


async def test_settings_are_parsed_and_confirmed() -> None:
    api = FakeShops({"corner": "owner"})
    assert await say("shop set hours mon-fri 09:00-18:00 Europe/Paris", api=api) == \
        "Opening hours of corner: mon-fri 09:00-18:00 (Europe/Paris)."
    assert api.changes["corner"]["opening_hours"]["timezone"] == "Europe/Paris"
    assert await say("shop set welcome Hello,\nwelcome!", api=api) == \
        "Welcome message of corner set to: Hello,\nwelcome!"
    assert await say("shop set welcome off", api=api) == "Welcome message of corner removed."
    text = await say("shop set hours 09:00-17:00", api=api)
    assert text.startswith("<days hours…>: say which days first")
    assert "Usage: shop set hours <days hours…> [--shop slug]" in text


async def test_keys_are_created_only_in_a_direct_chat() -> None:
    roles = {"corner": "owner"}
    text = await say("!keys create Web shop", roles, direct=False)
    assert text.startswith("!keys create works only in a direct chat with me")
    assert "mk_" not in text
    text = await say("keys create Web shop", roles)
    assert "mk_1a2b3c4d_secret" in text and "only time this key is shown" in text


async def test_status_without_a_shop_says_how_to_start() -> None:
    text = await say("shop status", {})
    assert text.startswith("You do not work for any shop yet. Open one with shop apply")
    text = await say("shop", {"corner": "owner"})
    assert text.splitlines()[:2] == ["Corner (corner) — awaits the operator's approval",
                                     "Your role: owner"]


async def test_directory_search() -> None:
    text = await say("shops green")
    assert text.splitlines()[:2] == ["Shops matching 'green':",
                                     "✓ Green Grocer (green) — Fresh fruit — "
                                     "#shop_green:localhost"]
    assert (await say("shops nothing")).startswith("No shop matches 'nothing'.")


async def test_bad_slug_shows_usage() -> None:
    text = await say("shop apply My Shop")
    assert text.startswith("<slug>: 'My' is not a shop's short name")
    assert "Usage: shop apply <slug> <name…>" in text


# -- the API client over real HTTP ------------------------------------------------------

@pytest.fixture
async def commerce_stub() -> Any:
    """A local HTTP server answering like the commerce API: echoes who called, or errors."""
    async def me_shops(request: web.Request) -> web.Response:
        return web.json_response({"shops": [{
            "slug": request.headers["X-Mercato-Acting-User"],
            "role": request.headers["Authorization"]}]})

    async def forbidden(request: web.Request) -> web.Response:
        return web.json_response({"errcode": "M_FORBIDDEN",
                                  "error": "You are not staff of the shop 'a/b'."}, status=403)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>bad gateway</html>")

    app = web.Application()
    app.router.add_get("/api/v1/me/shops", me_shops)
    app.router.add_route("*", "/api/v1/shops/{slug}/staff/{user_id}", forbidden)
    app.router.add_get("/api/v1/shops", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/api/v1"
    await runner.cleanup()


async def test_api_calls_carry_the_token_and_the_acting_user(commerce_stub: str) -> None:
    async with aiohttp.ClientSession() as session:
        api = CommerceApi(session, commerce_stub, "service-token").as_user("@a:localhost")
        assert await api.my_shops() == [{"slug": "@a:localhost",
                                         "role": "Bearer service-token"}]


async def test_api_errors_are_the_api_sentence(commerce_stub: str) -> None:
    async with aiohttp.ClientSession() as session:
        api = CommerceApi(session, commerce_stub, "t").as_user("@a:localhost")
        with pytest.raises(ApiError) as refused:
            await api.remove_staff("a/b", "@x:localhost")  # both quoted into one segment
        assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
        assert refused.value.message == "You are not staff of the shop 'a/b'."
        with pytest.raises(ApiError, match=r"failed \(HTTP 502\)"):
            await api.directory("x")


async def test_api_down_is_retried_then_reported() -> None:
    async with aiohttp.ClientSession() as session:
        api = CommerceApi(session, f"http://127.0.0.1:{free_port()}/api/v1", "t",
                          retry_delays=(0.01, 0.01)).as_user("@a:localhost")
        with pytest.raises(ApiUnavailable, match="nothing was done"):
            await api.apply({"slug": "x", "name": "X"})
