"""Numbered schema upgrades of the commerce database (v01 is the first schema)."""

from mercato.db import UpgradeTable

upgrade_table = UpgradeTable(version_table_name="commerce_version",
                             database_name="commerce")

from . import (  # noqa: E402,F401  (register themselves)
    v01_initial,
    v02_merchant_accounts,
    v03_campaigns,
    v04_catalog,
    v05_pending_direct,
    v06_staff_room_index,
    v07_share_quota,
    v08_card_edits,
    v09_message_outbox,
    v10_campaign_posts_in_outbox,
    v11_card_edits_in_outbox,
    v12_orders,
    v13_webhooks,
    v14_checkout_drafts,
    v15_web_sessions,
    v16_menu_and_follow_reward,
    v17_circle,
)
