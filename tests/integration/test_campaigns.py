"""Campaigns end to end: a follower receives posts, claims a coupon, the shop redeems it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop, png


def posts_in(events: list[dict], shop: str) -> list[dict]:
    return [e for e in events if e["type"] == "m.room.message" and e["sender"] == shop
            and "org.mercato.post" in e.get("content", {})]


async def test_follower_receives_a_scheduled_post_with_image(
        network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    follower = await new_user(network, http, "follower")
    room_id = await follower.join(f"#shop_{slug}:localhost")

    status, media = await api.call("POST", f"/shops/{slug}/media", key, data=png())
    assert status == 201, media
    assert media["image_mxc"].startswith("mxc://localhost/")
    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "product", "image_mxc": media["image_mxc"], "image_info": media["image_info"],
        "fields": {"title": "Red shoes",
                   "text": "Soft leather & a sole that lasts <3", "price": "59.9",
                   "currency": "eur", "link": f"https://{slug}.example/p/red-shoes"}})
    assert status == 201, campaign
    at = datetime.now(UTC) + timedelta(seconds=3)
    status, scheduled = await api.call(
        "POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule", key,
        {"at": at.isoformat()})
    assert status == 200 and scheduled["state"] == "scheduled", scheduled

    post = await follower.wait_for_message(
        room_id, lambda e: bool(posts_in([e], f"@shop_{slug}:localhost")), timeout=30)
    assert post["origin_server_ts"] >= int(at.timestamp() * 1000) - 1000, "sent too early"
    content = post["content"]
    assert content["msgtype"] == "m.image"
    assert content["url"] == media["image_mxc"]
    assert content["info"]["w"] == 64 and content["info"]["mimetype"] == "image/png"
    assert "Red shoes — 59.90 EUR" in content["body"]
    assert f"https://{slug}.example/p/red-shoes" in content["body"]
    assert "✓ verified shop" in content["body"]
    assert "<strong>59.90 EUR</strong>" in content["formatted_body"]
    assert "&amp; a sole that lasts &lt;3" in content["formatted_body"]
    assert content["org.mercato.post"]["price"] == {"amount": "59.90", "currency": "EUR"}

    # The campaign reports one delivery with its event, and the follower in its reach.
    status, detail = await api.call("GET", f"/shops/{slug}/campaigns/{campaign['id']}", key)
    assert detail["state"] == "sent"
    assert [d["event_id"] for d in detail["deliveries"]] == [post["event_id"]]
    assert detail["deliveries"][0]["reach"] == 1


async def test_coupon_claimed_by_reaction_and_redeemed_once(
        network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "buyer")
    room_id = await buyer.join(f"#shop_{slug}:localhost")
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "coupon", "fields": {"title": "10% off winter boots"},
        "coupon": {"stock": 5, "expires_at": expires}})
    assert status == 201, campaign
    assert (await api.call("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule",
                           key))[0] == 200
    post = await buyer.wait_for_message(room_id, lambda e: bool(posts_in([e], shop)))
    assert "React with 🎟️" in post["content"]["body"]

    await buyer.send(room_id, {"m.relates_to": {"rel_type": "m.annotation",
                                                "event_id": post["event_id"], "key": "🎟️"}},
                     event_type="m.reaction")
    dm_id = await buyer.wait_for_invite(shop)
    await buyer.join(dm_id)
    message = await buyer.wait_for_message(
        dm_id, lambda e: e["sender"] == shop and "Your code" in e["content"].get("body", ""))
    code = message["content"]["body"].split(": ", 1)[1].split()[0]
    assert len(code) == 10 and code.isalnum() and code.isupper()

    # A second claim (by command, through the bot's API) gives the same code, no new DM.
    status, again = await api.call("POST", f"/coupons/{campaign['coupon_id']}/claim",
                                   network.config.commerce.service_token, None)
    assert status == 400  # the service token needs the acting user: checked below
    async with http.post(f"{api.base}/coupons/{campaign['coupon_id']}/claim", headers={
            "Authorization": f"Bearer {network.config.commerce.service_token}",
            "X-Mercato-Acting-User": buyer.user_id}) as resp:
        assert resp.status == 200
    codes = [e for e in await buyer.messages(dm_id) if "Your code" in
             e.get("content", {}).get("body", "")]
    assert len(codes) == 1

    status, redeemed = await api.call("POST", f"/shops/{slug}/coupons/redeem", key,
                                      {"code": code.lower()})
    assert status == 200 and redeemed["user_id"] == buyer.user_id, redeemed
    status, twice = await api.call("POST", f"/shops/{slug}/coupons/redeem", key, {"code": code})
    assert status == 409 and twice["errcode"] == "MERCATO_CODE_USED"
    assert "already redeemed" in twice["error"]

    other_owner = await new_user(network, http, "rival")
    other_slug, other_key = await open_shop(api, other_owner.user_id)
    status, foreign = await api.call("POST", f"/shops/{other_slug}/coupons/redeem", other_key,
                                     {"code": code})
    assert status == 404 and foreign["errcode"] == "MERCATO_CODE_UNKNOWN"

    status, stats = await api.call("GET", f"/shops/{slug}/stats", key)
    row = next(c for c in stats["campaigns"] if c["id"] == campaign["id"])
    assert (row["reach"], row["claims"], row["redemptions"]) == (1, 1, 1)
    assert row["reactions"] == 1
    assert stats["followers"] == 1



async def test_quota_and_link_safety_refuse_with_reasons(
        network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id, quota=1)
    follower = await new_user(network, http, "follower")
    room_id = await follower.join(f"#shop_{slug}:localhost")

    for link, reason in (("https://bit.ly/3xYz", "link shortener"),
                         ("https://evil.example/login", "may only link to"),
                         (f"http://{slug}.example/p", "not https://")):
        status, refused = await api.call("POST", f"/shops/{slug}/campaigns", key, {
            "kind": "text", "fields": {"title": "Deal", "text": f"See {link} now"}})
        assert status == 422 and refused["errcode"] == "MERCATO_POST_REFUSED", refused
        assert reason in refused["error"]

    status, first = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "text", "fields": {"title": "Hello", "text": "Our first post"}})
    assert (await api.call("POST", f"/shops/{slug}/campaigns/{first['id']}/schedule",
                           key))[0] == 200
    status, second = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "text", "fields": {"title": "Again", "text": "One more"}})
    status, refused = await api.call("POST", f"/shops/{slug}/campaigns/{second['id']}/schedule",
                                     key)
    assert status == 429 and refused["errcode"] == "MERCATO_QUOTA_EXCEEDED"
    assert "1 times a day" in refused["error"]

    await follower.wait_for_message(room_id, lambda e: "Our first post" in
                                    e.get("content", {}).get("body", ""))
    shop_posts = posts_in(await follower.messages(room_id), f"@shop_{slug}:localhost")
    assert len(shop_posts) == 1, "the refused campaign must not reach the channel"
    status, detail = await api.call("GET", f"/shops/{slug}/campaigns/{second['id']}", key)
    assert detail["state"] == "draft" and detail["deliveries"] == []
