"""The one statement that reads a page of a user's Circle: their friends' recommendations
(with the product as it is now and the shop) and the posts sent to the channels they follow
(with the campaign and the shop), merged newest first by the database, a page at a time.

A page is read with a cursor, the (time, event ID) of the last item shown: items strictly
older come next, so an item posted while someone reads is never shown twice nor skipped.
"""

from __future__ import annotations

from typing import Any

NEWEST = 2**62  # a cursor time later than any item: the first page

# Both halves give the same columns; a post has no recommender, a recommendation no campaign.
_FEED = """
SELECT kind, at, room_id, event_id, merchant_slug, shop_name, verified_at, sku, title,
       price, currency, original_price, image_mxc, stock, recommended_by,
       recommender_name, note, quote, source_room_id, source_event_id, fields, coupon_id,
       campaign_id, campaign_image
FROM (
  SELECT 'recommendation' AS kind, r.created_at AS at, r.room_id, r.event_id,
         r.merchant_slug, m.name AS shop_name, m.verified_at, r.sku, p.title, p.price,
         p.currency, p.original_price, p.image_mxc, p.stock, r.owner_id AS recommended_by,
         r.recommender_name, r.note, r.quote, r.source_room_id, r.source_event_id,
         NULL AS fields, NULL AS coupon_id, NULL AS campaign_id, NULL AS campaign_image
  FROM circle_recommendation r
  JOIN circle c ON c.user_id=r.owner_id AND c.room_id=r.room_id
  JOIN circle_member cm ON cm.owner_id=r.owner_id AND cm.user_id=$1 AND cm.state='joined'
  JOIN merchant m ON m.slug=r.merchant_slug
  LEFT JOIN product p ON p.merchant_slug=r.merchant_slug AND p.sku=r.sku
  WHERE r.event_id IS NOT NULL
  UNION ALL
  SELECT 'post', o.sent_at, o.room_id, o.event_id, ca.merchant_slug, m.name, m.verified_at,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', '', NULL, NULL,
         ca.fields, ca.coupon_id, ca.id, ca.image_mxc
  FROM outbox o
  JOIN follower f ON f.room_id=o.room_id AND f.user_id=$1
  JOIN campaign ca ON ca.id=o.campaign_id
  JOIN merchant m ON m.slug=ca.merchant_slug
  WHERE o.state='sent' AND o.event_id IS NOT NULL AND o.sent_at IS NOT NULL
) AS circle_feed
WHERE at > $2 AND (at < $3 OR (at = $3 AND event_id < $4))
ORDER BY at DESC, event_id DESC
LIMIT $5
"""


async def feed_rows(db: Any, user_id: str, *, since_ms: int, before_at: int,
                    before_event: str, limit: int) -> list[dict[str, Any]]:
    """At most `limit` items of the user's Circle after `since_ms` and before the cursor
    (`before_at`, `before_event`), newest first."""
    rows = await db.fetch(_FEED, user_id, since_ms, before_at, before_event, limit)
    return [{k: r[k] for k in r.keys()} for r in rows]
