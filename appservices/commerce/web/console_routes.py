"""The merchant console's addresses: the shell (`console.py`) and each page module, which
registers its navigation section and its routes. A new console page adds one line here."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.web import (
    console,
    console_campaigns,
    console_catalog,
    console_coupons,
    console_customers,
    console_dashboard,
    console_orders,
    console_settings,
)


def add_console_routes(app: web.Application) -> None:
    console.add_routes(app)
    console_dashboard.add_routes(app)
    console_catalog.add_routes(app)
    console_campaigns.add_routes(app)
    console_coupons.add_routes(app)
    console_orders.add_routes(app)
    console_customers.add_routes(app)
    console_settings.add_routes(app)
