"""`web`: a one-time link that signs the sender in to Mercato's web pages (the storefront
and the merchant console) as their Matrix account, with no password.

The commerce API makes the link (`POST /api/v1/me/web-login`) for the user the bot acts
for; it is answered only in a DM, since anyone holding the link signs in as its owner.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bots.shopbot.context import ShopContext, registry
from mercato.commands import Reply


def web_link_reply(answer: dict[str, Any]) -> Reply:
    url = str(answer["url"])
    minutes = int(answer.get("valid_minutes", 10))
    text = (f"Your link to sign in to Mercato on the web: {url}\n"
            f"It works once, for {minutes} minutes. Do not share it: it signs in as you.")
    html = (f'<p>Your link to sign in to Mercato on the web: <a href="{escape(url)}">'
            f"sign in</a></p><p>It works once, for {minutes} minutes. Do not share it: it "
            "signs in as you.</p>")
    return Reply(text, html)


@registry.command("web", help="a one-time link to sign in to Mercato's web pages",
                  direct_only=True)
async def web(ctx: ShopContext) -> Reply:
    commerce = ctx.commerce
    answer = await commerce.api.request("POST", "/me/web-login", commerce.user_id, body={})
    return web_link_reply(answer)
