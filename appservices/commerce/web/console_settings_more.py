"""The rest of the console's Settings page: the webhook to the shop's back-end (its address,
its signing secret shown once when made or rotated, the delivery log with resend), the
follow reward with a link to the printable poster, and the audit log a page at a time.
Each form calls the operation of its /api/v1 route (webhooks' `operations`,
`follow_reward`), with the same permission; `console_settings` mounts them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.errors import NotFound
from appservices.commerce.shops import follow_reward
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from appservices.commerce.web.console import ConsoleContext, console_page, render_console
from appservices.commerce.web.console_forms import form_text, when
from appservices.commerce.web.sessions import Form
from appservices.commerce.webhooks import operations as webhooks
from mercato.values import InvalidValue

DELIVERIES_SHOWN = 20
AUDIT_PAGE = 50
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


async def section_values(cc: ConsoleContext) -> dict[str, Any]:
    """What the webhook and follow-reward sections show, for the roles that may see them."""
    values: dict[str, Any] = {"poster_url": f"/s/{quote(cc.slug, safe='')}/poster",
                              "webhook": None, "deliveries": [], "reward": None}
    db, principal = cc.api.db, cc.principal
    if cc.can(Action.MANAGE_WEBHOOKS):
        try:
            values["webhook"] = await webhooks.get_endpoint(db, principal, cc.slug)
            values["deliveries"] = (await webhooks.deliveries(
                db, principal, cc.slug, status=None, before=None,
                limit=DELIVERIES_SHOWN))["deliveries"]
        except NotFound:
            pass
    if cc.can(Action.READ_STATS):
        values["reward"] = await follow_reward.get_reward(db, principal, cc.slug)
    return values


# -- the webhook ---------------------------------------------------------------------------------

async def set_webhook(cc: ConsoleContext, form: Form) -> dict[str, Any] | None:
    endpoint = await webhooks.set_endpoint(cc.api.db, cc.principal, cc.slug,
                                           {"url": form_text(form, "url")})
    return {"new_secret": endpoint["secret"]} if "secret" in endpoint else None


async def rotate_secret(cc: ConsoleContext, form: Form) -> dict[str, Any]:
    endpoint = await webhooks.rotate_secret(cc.api.db, cc.principal, cc.slug)
    return {"new_secret": endpoint["secret"]}


async def remove_webhook(cc: ConsoleContext, form: Form) -> None:
    await webhooks.remove_endpoint(cc.api.db, cc.principal, cc.slug)


async def resend(cc: ConsoleContext, form: Form) -> None:
    await webhooks.resend(cc.api.db, cc.principal, cc.slug, form_text(form, "event_id"))


# -- the follow reward ----------------------------------------------------------------------------

def reward_body(form: Form) -> dict[str, Any]:
    """The form's follow reward as PUT …/follow-reward takes it: the discount as a percent
    or an amount, the stock a number, expiry at the end of the chosen day (UTC)."""
    body: dict[str, Any] = {"title": form_text(form, "title")}
    discount = form_text(form, "discount").replace(" ", "")
    if discount.endswith("%") and discount[:-1].isdigit():
        body["percent_off"] = int(discount[:-1])
    elif discount:
        body["amount_off"] = discount
    stock = form_text(form, "stock")
    if not stock.isdigit():
        raise InvalidValue("stock", "write how many codes to give, a whole number such as 100")
    body["stock"] = int(stock)
    day = form_text(form, "expires_on")
    if not _DAY.match(day):
        raise InvalidValue("expires_on", "choose the last day the codes work")
    body["expires_at"] = f"{day}T23:59:00+00:00"
    return body


async def set_reward(cc: ConsoleContext, form: Form) -> None:
    await follow_reward.set_reward(cc.api.db, cc.api.matrix.mercato_hosts, cc.principal,
                                   cc.slug, reward_body(form))


async def stop_reward(cc: ConsoleContext, form: Form) -> None:
    await follow_reward.stop_reward(cc.api.db, cc.principal, cc.slug)


FORMS = (
    ("webhook", "webhook", Action.MANAGE_WEBHOOKS, set_webhook),
    ("webhook/secret", "webhook", Action.MANAGE_WEBHOOKS, rotate_secret),
    ("webhook/remove", "webhook", Action.MANAGE_WEBHOOKS, remove_webhook),
    ("webhook/resend", "webhook", Action.MANAGE_WEBHOOKS, resend),
    ("reward", "reward", Action.RUN_CAMPAIGNS, set_reward),
    ("reward/stop", "reward", Action.RUN_CAMPAIGNS, stop_reward),
)


# -- the audit log --------------------------------------------------------------------------------

async def audit_page(request: web.Request) -> web.Response:
    """The shop's audit log, newest first, AUDIT_PAGE entries a page (?before=<id>)."""
    cc = await console_page(request, request.match_info["slug"], Action.READ_AUDIT)
    raw = request.query.get("before", "")
    before = int(raw) if raw.isdigit() and int(raw) > 0 else None
    entries = await store.audit_log(cc.api.db, cc.slug, limit=AUDIT_PAGE + 1, before=before)
    older = entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None
    return await render_console(request, cc, "console/audit.html.j2",
                                entries=entries[:AUDIT_PAGE], older=older, newest=before is None,
                                when=when)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/{slug}/settings/audit", audit_page)
