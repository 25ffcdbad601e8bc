"""The Circle's rules without a server: who may post in a circle room, what a recommendation
says, the daily limit's refusal, the feed's order and when a digest is due."""

from __future__ import annotations

import pytest

from appservices.commerce.catalog.products import Product, render_card
from appservices.commerce.circle import rules
from appservices.commerce.quotas import DAY_MS
from mercato.values import InvalidValue

OWNER = "@ola:localhost"
BOT = "@mercato:localhost"


def _card() -> dict:
    product = Product(merchant_slug="demo", sku="mug", title="Stoneware mug",
                      description="", price="24.00", currency="EUR", original_price=None,
                      image_mxc="", image_info={}, url="", stock="in_stock", tags=[],
                      created_at=0, updated_at=0, quantity=None)
    return render_card(product, shop_name="Demo Shop", shop_mxid="@shop_demo:localhost",
                       verified=True, page_url="http://localhost:8090/p/demo/mug")


def test_only_the_owner_posts_and_friends_may_react() -> None:
    levels = rules.circle_power_levels(OWNER, BOT, creator_in_users=False)
    assert levels["users"] == {OWNER: 100}  # v12: the creating bot is not listed
    assert levels["users_default"] == 0 and levels["events_default"] == 100
    assert levels["invite"] == levels["kick"] == levels["ban"] == 100
    assert levels["events"]["m.reaction"] == 0
    older = rules.circle_power_levels(OWNER, BOT, creator_in_users=True)
    assert older["users"] == {OWNER: 100, BOT: 100}


def test_a_product_recommendation_is_the_card_introduced_by_its_recommender() -> None:
    by = rules.Recommender(OWNER, "Ola")
    content = rules.product_recommendation(_card(), by, "Best mug I own")
    assert content["body"].startswith("Ola recommends Stoneware mug — 24.00 EUR\n“Best mug I own”")
    assert content[rules.BY_KEY] == OWNER and content[rules.NOTE_KEY] == "Best mug I own"
    assert content["org.mercato.product"]["price"] == "24.00"
    assert "<blockquote>Best mug I own</blockquote>" in content["formatted_body"]
    edit = rules.recommendation_edit(content, "$rec")
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$rec"}
    assert edit["m.new_content"][rules.BY_KEY] == OWNER


def test_a_post_recommendation_quotes_the_post_and_links_to_it() -> None:
    link = rules.matrix_to("!chan:localhost", "$post")
    assert link == "https://matrix.to/#/%21chan%3Alocalhost/%24post"
    content = rules.post_recommendation("Demo <Shop>", "Sale!\nToday only", link,
                                        rules.Recommender(OWNER, "Ola"), "")
    assert content["body"] == ("Ola recommends a post by Demo <Shop>\n\n> Sale!\n"
                               f"> Today only\n{link}")
    assert "Demo &lt;Shop&gt;" in content["formatted_body"]
    assert content[rules.OF_KEY] == link


def test_the_daily_limit_says_when_it_resets() -> None:
    rules.check_daily_limit(20, 19, 0)
    with pytest.raises(rules.RecommendationLimit) as refused:
        rules.check_daily_limit(20, 20, 1_700_000_000_000)
    assert refused.value.status == 429
    assert refused.value.message == (
        "You have made 20 recommendations in the last 24 hours, the most a day. You can "
        "recommend again after 2023-11-15 22:13 UTC.")


def test_a_note_is_one_short_line() -> None:
    assert rules.validate_note(None) == "" and rules.validate_note("  nice ") == "nice"
    with pytest.raises(InvalidValue, match="the limit is 280"):
        rules.validate_note("a" * 281)


def _item(at: int, event_id: str, kind: str = "post") -> rules.FeedItem:
    return rules.FeedItem(kind=kind, at=at, room_id="!r", event_id=event_id, shop_slug="demo",
                          shop_name="Demo", title="Mug")


def test_the_feed_is_newest_first_each_event_once() -> None:
    merged = rules.merge_feed([_item(1, "$a"), _item(3, "$c")], [_item(2, "$b"), _item(3, "$c")],
                              limit=10)
    assert [i.event_id for i in merged] == ["$c", "$b", "$a"]
    assert len(rules.merge_feed([_item(i, f"${i}") for i in range(5)], limit=2)) == 2


def test_a_digest_is_due_once_a_day_with_something_new() -> None:
    assert rules.digest_due(None, 10, 1)
    assert not rules.digest_due(None, 10, 0)
    assert not rules.digest_due(0, DAY_MS - 1, 5)
    assert rules.digest_due(0, DAY_MS, 1)
    text = rules.digest_text([_item(1, "$a", "recommendation")], 2)
    assert "… and 2 more." in text and text.endswith("Type digest off to stop these.")
