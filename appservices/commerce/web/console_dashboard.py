"""The console's dashboard: the shop's numbers from the stats operation the API answers
GET /api/v1/shops/<slug>/stats with (followers day by day, each channel's and each
campaign's reach, views and reactions, coupon claims and redemptions, orders and revenue,
what buyers passed on in the Circle),
drawn as charts by uPlot with the same figures in tables beside them.

The figures go to the page's script as a `<script type="application/json">` block (the
CSP runs no inline script); without JavaScript the tables are the dashboard.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appservices.commerce.campaigns import stats as campaign_stats
from appservices.commerce.circle import storage as circle_rows
from appservices.commerce.shops import follow_reward
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from appservices.commerce.web.console import Section, add_section, console_page, render_console
from mercato.types import MerchantSlug

DAYS = (7, 30, 90)
FIGURES = ("reach", "views", "reactions", "claims", "orders")  # per campaign


def chosen_days(value: str | None) -> int:
    """The period asked for in ?days=, one of DAYS (30 when it is anything else)."""
    return int(value) if value and value.isdigit() and int(value) in DAYS else 30


def chart_data(numbers: dict[str, Any]) -> dict[str, Any]:
    """What the charts draw, in the shape uPlot takes (pure: columns of numbers)."""
    days = numbers["followers_by_day"]
    campaigns = numbers["campaigns"]
    return {
        "followers": {"days": [d["day"] for d in days],
                      "counts": [d["followers"] for d in days]},
        "campaigns": {"labels": [f"#{c['id']} {c['title'] or c['kind']}" for c in campaigns],
                      "names": list(FIGURES),
                      "series": {name: [c[name] for c in campaigns] for name in FIGURES}},
    }


async def dashboard(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    cc = await console_page(request, slug, Action.READ_STATS)
    db = cc.api.db
    days = chosen_days(request.query.get("days"))
    numbers = await campaign_stats.stats(db, cc.principal, cc.slug, days)
    names = {c.room_id: c for c in await store.channels_of(db, MerchantSlug(cc.slug))}
    channels = [{**row, "name": names[row["room_id"]].name if row["room_id"] in names
                 else row["room_id"],
                 "alias": names[row["room_id"]].alias if row["room_id"] in names else "",
                 "followers": await store.room_follower_count(db, row["room_id"])}
                for row in numbers["channels"]]
    follows = await follow_reward.follow_stats(db, cc.slug)
    circle = await circle_rows.shop_stats(db, cc.slug)
    totals = {name: sum(c[name] for c in numbers["campaigns"])
              for name in ("reach", "views", "reactions", "claims", "redemptions", "orders")}
    return await render_console(
        request, cc, "console/dashboard.html.j2", numbers=numbers, channels=channels,
        follows=follows, circle=circle, totals=totals, days=days, day_choices=DAYS,
        chart_data=chart_data(numbers))


def add_routes(app: web.Application) -> None:
    add_section(app, Section("dashboard", "Dashboard", "dashboard", (Action.READ_STATS,), 10))
    app.router.add_get("/console/{slug}/dashboard", dashboard)
