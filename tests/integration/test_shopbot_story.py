"""The shop bot's "done when", told as a story on the real network.

A merchant, in an ENCRYPTED DM with @shopbot (a nio client with its own keys, as
Element makes by default), applies for a shop, adds a product and sends a campaign;
the operator approves through the API. A buyer follows the shop's channel, gets the
post, and in a group room with the bot (and a friend) gets a product card and sets a
price-drop alert. Only what the users receive is asserted, plus the API as witness.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
from nio import Event

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.nio_helpers import EncryptedUser
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_shopbot_merchant import Chat


class EncryptedChat:
    """An encrypted DM with the bot: commands go out encrypted, answers come back so."""

    def __init__(self, user: EncryptedUser, room_id: str, bot: str) -> None:
        self.user, self.room_id, self.bot = user, room_id, bot

    async def ask(self, text: str) -> tuple[str, str]:
        """(the command's event ID, the bot's decrypted answer to it)."""
        event_id = await self.user.send(self.room_id, text)
        answer = await self.user.reply_to(self.room_id, event_id, self.bot)
        assert answer.decrypted, "the bot must answer an encrypted DM encrypted"
        assert answer.source["content"]["msgtype"] == "m.notice"
        return event_id, str(answer.source["content"]["body"])

    async def say(self, text: str) -> str:
        return (await self.ask(text))[1]

    async def answer_to(self, event_id: str, starts: str) -> str:
        """A later answer of the bot to `event_id` (after a question), starting so."""
        def found(event: Event) -> bool:
            content = event.source.get("content", {})
            return (event.sender == self.bot
                    and content.get("m.relates_to", {}).get("m.in_reply_to", {}).get(
                        "event_id") == event_id
                    and str(content.get("body", "")).startswith(starts))
        return str((await self.user.wait_for(self.room_id, found)).source["content"]["body"])


class GroupRoom:
    """An unencrypted group room: the buyer (its creator), a friend and the bot."""

    def __init__(self, buyer: MatrixClient, friend: MatrixClient, room_id: str,
                 bot: str) -> None:
        self.buyer, self.friend, self.room_id, self.bot = buyer, friend, room_id, bot

    @classmethod
    async def create(cls, network: RunningNetwork, buyer: MatrixClient,
                     friend: MatrixClient) -> GroupRoom:
        bot = network.demo["shopbot"]
        created = await buyer.request("POST", "/_matrix/client/v3/createRoom", {
            "invite": [bot, friend.user_id], "preset": "private_chat", "name": "Gift ideas"})
        room_id = created["room_id"]
        await friend.join(room_id)
        await buyer.wait_for_message(room_id, lambda e: e["type"] == "m.room.member"
                                     and e["state_key"] == bot
                                     and e["content"]["membership"] == "join")
        return cls(buyer, friend, room_id, bot)

    def from_bot(self, predicate: Any) -> Any:
        return lambda e: e.get("sender") == self.bot and predicate(e)

    async def ask(self, user: MatrixClient, text: str) -> dict[str, Any]:
        """The bot's notice replying to `text`, sent by `user`."""
        event_id = await user.send_text(self.room_id, text)
        reply = await user.wait_for_message(self.room_id, self.from_bot(
            lambda e: e.get("content", {}).get("m.relates_to", {}).get(
                "m.in_reply_to", {}).get("event_id") == event_id))
        assert reply["content"]["msgtype"] == "m.notice"
        return dict(reply["content"])


async def test_a_merchant_in_an_encrypted_dm_and_a_buyer_in_a_group(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api,
        tmp_path: Path) -> None:
    bot = network.demo["shopbot"]
    slug = f"story-{uuid.uuid4().hex[:8]}"
    shop = f"@{network.config.commerce.user_prefix}{slug}:localhost"
    merchant = await EncryptedUser.register(network, http, tmp_path / "merchant-keys",
                                            name="merchant")
    try:
        dm = EncryptedChat(merchant, await merchant.encrypted_dm(bot), bot)

        # The merchant applies; the operator approves through the API.
        applied = await dm.say(f"shop apply {slug} Story Shop --website "
                               f"https://{slug}.example --description Mugs and tea")
        assert f"Your application for the shop “Story Shop” ({slug}) is received" in applied
        assert "awaits the operator's approval" in applied
        status, approved = await api.call("POST", f"/shops/{slug}/approve", api.operator)
        assert status == 200, approved
        assert (await dm.say("shop status")).splitlines()[:2] == [
            f"Story Shop ({slug}) — approved", "Your role: owner"]

        # A product.
        added = await dm.say("products add story-mug 12.50 EUR Story mug --description "
                             "Holds 300 ml")
        assert added.splitlines()[0] == (f"Added story-mug — Story mug — 12.50 EUR — in stock "
                                         f"in {slug}.")

        # The buyer follows (the bot says where; the buyer's client joins the channel).
        buyer = await new_user(network, http, "buyer")
        friend = await new_user(network, http, "friend")
        group = await GroupRoom.create(network, buyer, friend)
        follow = (await group.ask(buyer, f"!follow {slug}"))["body"]
        alias = f"#shop_{slug}:localhost"
        assert follow.startswith(f"To follow Story Shop, join its channel {alias}")
        channel = await buyer.join(alias)

        # The merchant drafts a campaign and sends it, answering the bot's question.
        drafted = await dm.say("campaign draft text Grand opening --text Our shop is open: "
                               "mugs from 12.50 EUR.")
        assert drafted.startswith("Draft ") and f"“Grand opening” — draft in {slug}." in drafted
        campaign_id = int(drafted.split()[1])
        send_id, question = await dm.ask(f"campaign send {campaign_id}")
        assert question.endswith("React ✅ to send it now or ❌ to keep it as it is — or "
                                 "type yes or no."), question
        await merchant.send(dm.room_id, "yes")
        done = await dm.answer_to(send_id, f"Campaign {campaign_id} of {slug} is on its way")
        assert "to the followers" in done

        # The buyer gets the post in the channel.
        post = await buyer.wait_for_message(channel, lambda e: e["sender"] == shop and
                                            "Our shop is open" in e["content"].get("body", ""))
        assert post["content"]["org.mercato.post"]["campaign"] == campaign_id

        # In the group: a card to forward, then an alert.
        await buyer.send_text(group.room_id, f"!share {slug} story-mug")
        card = await buyer.wait_for_message(group.room_id, group.from_bot(
            lambda e: "org.mercato.product" in e.get("content", {})))
        assert card["content"]["org.mercato.product"]["sku"] == "story-mug"
        assert card["content"]["org.mercato.product"]["shop_slug"] == slug
        assert "Story mug — 12.50 EUR" in card["content"]["body"]
        alert = (await group.ask(buyer, f"!alert {slug} story-mug"))["body"]
        assert alert.startswith(f"🔔 Alert set on story-mug of {slug} (now 12.50 EUR).")
        status, product = await api.call("GET", f"/shops/{slug}/products/story-mug",
                                         api.operator)
        assert status == 200 and product["title"] == "Story mug"

        # Only a moderator makes the bot leave the group; it says goodbye first.
        refused = (await group.ask(friend, "!leave"))["body"]
        assert refused.startswith("Only this room's moderators (power level 50 or more"), \
            refused
        assert "your power level here is 0" in refused
        goodbye = (await group.ask(buyer, "!leave"))["body"]
        assert goodbye.startswith("Goodbye! I am leaving this room.")
        await buyer.wait_for_message(group.room_id, lambda e: e["type"] == "m.room.member"
                                     and e["state_key"] == bot
                                     and e["content"]["membership"] == "leave")
    finally:
        await merchant.close()


async def test_a_buyer_lists_their_coupons_with_codes_only_in_a_dm(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    buyer = await new_user(network, http, "buyer")
    await buyer.join(f"#shop_{slug}:localhost")
    chat = await Chat.direct(network, buyer)
    assert (await chat.say("coupons")).startswith("You have no coupons yet.")

    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "coupon", "fields": {"title": "3 EUR off", "text": "For followers"},
        "coupon": {"stock": 5, "expires_at": "2099-12-31T23:59:00+00:00"}})
    assert status == 201, campaign
    coupon_id = campaign["coupon_id"]
    status, sent = await api.call("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule",
                                  key, {})
    assert status == 200, sent
    assert (await chat.say(f"claim {coupon_id}")).startswith(f"🎟️ Coupon {coupon_id}")

    mine = await chat.ask("my coupons")
    lines = mine["body"].splitlines()
    assert lines[0] == "Your coupons:"
    shop_line = lines[1].split(" — ")
    assert shop_line[:2] == [slug, f"{coupon_id} “3 EUR off”"]
    code = shop_line[2]
    assert len(code) == 10 and code.isalnum()
    assert shop_line[3] == "valid until 2099-12-31 23:59 UTC"
    assert "<table>" in mine["formatted_body"]
    assert (await api.call("POST", f"/shops/{slug}/coupons/redeem", key, {"code": code}))[0] \
        == 200
    assert (await chat.say("coupons")).splitlines()[1].split(" — ")[3].startswith("used ")

    # In a group the codes stay hidden; the same list says where to see them.
    friend = await new_user(network, http, "friend")
    group = await GroupRoom.create(network, buyer, friend)
    listed = (await group.ask(buyer, "!coupons"))["body"]
    assert f"{coupon_id} “3 EUR off”" in listed and code not in listed
    assert "shown only in a direct chat" in listed
