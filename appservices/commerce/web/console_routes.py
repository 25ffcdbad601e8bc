"""The merchant console's addresses: the shell (`console.py`) and each page module, which
registers its navigation section and its routes. A new console page adds one line here."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.web import console


def add_console_routes(app: web.Application) -> None:
    console.add_routes(app)
