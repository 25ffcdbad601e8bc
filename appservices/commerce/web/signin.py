"""The sign-in pages: ask for a one-time link by Matrix ID, open a link, sign out; and
`add_signin_routes`, which mounts them with the OpenID sign-in of widgets (`openid.py`).

Opening a link (GET) only shows a button: a link preview or a mail scanner that fetches the
address does not spend it. The button's POST spends it and starts the session.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from appservices.commerce.http import CONTEXT
from appservices.commerce.web import links, openid, page, rules, sessions
from appservices.commerce.web.dm import LinkSender
from appservices.commerce.web.errors import WebError
from appservices.commerce.web.services import SIGNIN, SigninServices
from mercato.config import MercatoConfig
from mercato.logging import get_logger

log = get_logger(__name__)

_MATRIX_ID = re.compile(r"^@[a-z0-9._=/+\-]{1,255}:[A-Za-z0-9.\-\[\]:]{1,255}$")




def matrix_id(value: str) -> str | None:
    """A typed Matrix ID, tidied (spaces trimmed, the localpart lowercased), or None."""
    value = value.strip()
    if not value.startswith("@"):
        value = "@" + value
    local, _, server = value.partition(":")
    value = f"{local.lower()}:{server}"
    return value if _MATRIX_ID.match(value) else None


async def signin_page(request: web.Request) -> web.Response:
    next_path = rules.safe_next(request.query.get("next"))
    return await page.render(request, "signin.html.j2", embeddable=True, next_path=next_path,
                             signed_out="signed_out" in request.query, matrix_id="",
                             problem="")


async def ask_for_link(request: web.Request) -> web.Response:
    form = await sessions.check_csrf(request)
    ctx = request.app[CONTEXT]
    next_path = rules.safe_next(str(form.get("next", "")))
    typed = str(form.get("matrix_id", ""))[:300]
    user_id = matrix_id(typed)
    if user_id is None:
        return await page.render(
            request, "signin.html.j2", status=400, embeddable=True, next_path=next_path,
            signed_out=False, matrix_id=typed,
            problem="That is not a Matrix ID. Type it as @name:server, for example "
                    "@alice:example.org.")
    address = request.remote or "unknown"
    if not (await links.within_limit(ctx.db, rules.LINKS_PER_ADDRESS, f"link-ip:{address}")
            and await links.within_limit(ctx.db, rules.LINKS_PER_USER, f"link-user:{user_id}")):
        raise WebError(429, "Too many sign-in links asked for",
                       "Several links were asked for a moment ago. Use the newest one in your "
                       "chat with @mercato, or ask again in 15 minutes.",
                       action_href=sessions.signin_url(next_path), action_text="Back")
    link = await links.create_login_link(ctx.db, ctx.config.site_url, user_id, next_path)
    services = request.app[SIGNIN]
    # Sent after answering: the page looks and takes the same whether the ID exists or not.
    task = asyncio.create_task(_send_quietly(services.sender, user_id, link))
    services.tasks.add(task)
    task.add_done_callback(services.tasks.discard)
    return await page.render(request, "signin_sent.html.j2", embeddable=True,
                             user_id=user_id, bot=str(services.sender.appservice.bot_mxid),
                             next_path=next_path)


async def _send_quietly(sender: LinkSender, user_id: str, link: links.LoginLink) -> None:
    try:
        await sender.send(user_id, link.url, link.token_hash)
    except Exception as e:  # an ID nobody has, a server that is down: nobody to tell
        log.info("web.link_not_sent", user_id=user_id, error=str(e))


async def link_page(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    ctx = request.app[CONTEXT]
    state, user_id = await links.link_state(ctx.db, token) if token else (
        links.LinkState.UNKNOWN, None)
    _refuse_spent(state)
    # The token is in this address: the shell's Referrer-Policy (same-origin) keeps it from
    # other sites; no-referrer would make the button's POST say `Origin: null`.
    return await page.render(
        request, "signin_link.html.j2", user_id=user_id, token=token,
        next_path=rules.safe_next(request.query.get("next")), cache_control="no-store")


def _refuse_spent(state: links.LinkState) -> None:
    again = ("Ask for a new one on the sign-in page, or type web in your chat with the shop "
             "bot.")
    if state is links.LinkState.USED:
        raise WebError(410, "This sign-in link was used already",
                       f"Each link signs in once. {again}", action_href=rules.SIGNIN_PATH,
                       action_text="Sign in")
    if state is links.LinkState.EXPIRED:
        raise WebError(410, "This sign-in link has expired",
                       f"Links work for 10 minutes. {again}", action_href=rules.SIGNIN_PATH,
                       action_text="Sign in")
    if state is links.LinkState.UNKNOWN:
        raise WebError(404, "This is not a sign-in link",
                       f"The address may be cut short; copy the whole link. {again}",
                       action_href=rules.SIGNIN_PATH, action_text="Sign in")


async def use_link(request: web.Request) -> web.Response:
    form = await sessions.check_csrf(request)
    ctx = request.app[CONTEXT]
    token = str(form.get("token", ""))
    raw = rules.new_secret()
    user_id = await links.spend_link(ctx.db, token, rules.hash_secret(raw)) if token else None
    if user_id is None:
        state, _ = await links.link_state(ctx.db, token) if token else (
            links.LinkState.UNKNOWN, None)
        _refuse_spent(state if state is not links.LinkState.VALID else links.LinkState.USED)
    response = web.HTTPSeeOther(rules.safe_next(str(form.get("next", ""))))
    sessions.set_session_cookie(request, response, raw)
    log.info("web.signed_in", user_id=user_id, how="link")
    raise response


async def sign_out(request: web.Request) -> web.Response:
    await sessions.check_csrf(request)
    response = web.HTTPSeeOther(f"{rules.SIGNIN_PATH}?signed_out=1")
    await sessions.end_session(request, response)
    raise response


def add_signin_routes(app: web.Application, network: MercatoConfig, sender: LinkSender) -> None:
    """The web foundation (middleware, static files) and the sign-in routes."""
    services = SigninServices(network=network, sender=sender)
    app[SIGNIN] = services
    page.add_web_foundation(app)
    app.router.add_get(rules.SIGNIN_PATH, signin_page)
    app.router.add_post(rules.SIGNIN_PATH, ask_for_link)
    app.router.add_get(rules.SIGNIN_PATH + "/link", link_page)
    app.router.add_post(rules.SIGNIN_PATH + "/link", use_link)
    app.router.add_post("/web/signout", sign_out)
    app.router.add_post(rules.SIGNIN_PATH + "/openid", openid.sign_in_with_openid)

    async def close(_: web.Application) -> None:
        await services.close()
    app.on_cleanup.append(close)
