"""`POST /api/v1/me/web-login`: a one-time link to sign in to Mercato's web pages, for the
Matrix user the shop bot acts for (its `web` command sends it in the bot's DM)."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.auth import require_user
from appservices.commerce.errors import CommerceError
from appservices.commerce.http import STRING, caller, json_body, route
from appservices.commerce.web import links, rules
from mercato.http_api import Spec


@route("POST", "/me/web-login", Spec(
    "A one-time link (valid 10 minutes) that signs the acting user in to the web pages; "
    "`next` is a path on this site to open afterwards", auth="any", body={"next": STRING},
    success=201))
async def web_login(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    user_id = require_user(principal, "sign-in links are for a Matrix user").user_id
    body = await json_body(request) if request.can_read_body else {}
    next_path = body.get("next") if isinstance(body, dict) else None
    if not await links.within_limit(ctx.db, rules.LINKS_PER_USER, f"link-user:{user_id}"):
        raise CommerceError("Several sign-in links were made a moment ago; use the newest, "
                            "or ask again in 15 minutes.", errcode="M_LIMIT_EXCEEDED",
                            status=429)
    link = await links.create_login_link(ctx.db, ctx.config.site_url, user_id,
                                         next_path if isinstance(next_path, str) else None)
    return web.json_response({"url": link.url, "expires_at": link.expires_at,
                              "valid_minutes": rules.LINK_VALID_MS // rules.MINUTE_MS},
                             status=201)
