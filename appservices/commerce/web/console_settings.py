"""The console's Settings page: the shop's profile (name, description, website and its
verification), opening hours and automatic replies, staff and roles, API keys; the webhook,
the follow reward and the audit log are `console_settings_more`.

Each form calls the operation its /api/v1 route calls, with the same permission: the page
opens for owners (`edit_shop`), and each section is shown to whoever may use it. A change
answers with a redirect back to its section (so reloading sends nothing twice); a refusal
shows the API's sentence in the section, and a new API key is shown once, in the answer
to the form that made it — Mercato keeps only its hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from appservices.commerce.shops import operations as shops
from appservices.commerce.shops import staff
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action, Role
from appservices.commerce.web import console_settings_more as more
from appservices.commerce.web.console import (
    ConsoleContext,
    Section,
    add_section,
    console_form,
    console_page,
    render_console,
)
from appservices.commerce.web.console_forms import (
    DAY_NAMES,
    form_text,
    hours_fields,
    hours_from_form,
    keywords_from_text,
    keywords_text,
    when,
)
from appservices.commerce.web.sessions import Form
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

Refusal = (ApiError, InvalidValue)
Change = Callable[[ConsoleContext, Form], Awaitable[dict[str, Any] | None]]


async def render_settings(request: web.Request, cc: ConsoleContext, *, status: int = 200,
                          **shown: Any) -> web.Response:
    """The whole Settings page; `shown` carries a section's error, or what is shown once."""
    db, merchant = cc.api.db, cc.merchant
    values: dict[str, Any] = {
        "hours": hours_fields(merchant.opening_hours), "day_names": DAY_NAMES,
        "keywords": keywords_text(merchant.keyword_replies), "when": when,
        "roles": [r.value for r in Role], "saved": request.query.get("saved", ""),
        "staff": await store.staff_of(db, cc.slug) if cc.can(Action.READ_SHOP) else [],
        "keys": await store.list_api_keys(db, cc.slug) if cc.can(Action.MANAGE_KEYS) else [],
        "errors": {}, "staff_warning": "", "new_key": None, "new_secret": None,
        "domain_proof": None, **await more.section_values(cc), **shown}
    return await render_console(request, cc, "console/settings.html.j2", status=status,
                                **values)


async def settings_page(request: web.Request) -> web.Response:
    cc = await console_page(request, request.match_info["slug"], Action.EDIT_SHOP)
    return await render_settings(request, cc)


def settings_form(section: str, action: Action, change: Change) -> Any:
    """A handler for one settings form: `change` runs the operation; on success back to the
    section (or the page with what `change` shows once), on a refusal the page with its
    sentence in the section."""
    async def handler(request: web.Request) -> web.StreamResponse:
        cc, form = await console_form(request, request.match_info["slug"], action)
        try:
            shown = await change(cc, form)
        except Refusal as e:
            log.info("console.settings_refused", shop=cc.slug, section=section)
            message = e.message
            return await render_settings(request, cc, status=422, errors={section: message})
        if shown:
            fresh = await console_page(request, cc.slug, action)  # the shop as changed
            return await render_settings(request, fresh, **shown)
        raise web.HTTPSeeOther(cc.url(f"settings?saved={section}#{section}"))
    handler.__name__ = f"settings_{section.replace('-', '_')}"
    return handler


# -- profile, opening hours and replies ---------------------------------------------------------

async def change_profile(cc: ConsoleContext, form: Form) -> None:
    await shops.update_shop(cc.api.db, cc.api.matrix, cc.principal, cc.slug, {
        "name": form_text(form, "name"), "description": form_text(form, "description"),
        "website": form_text(form, "website")})


async def start_domain_proof(cc: ConsoleContext, form: Form) -> dict[str, Any]:
    return {"domain_proof": await shops.start_domain_proof(cc.api.db, cc.principal, cc.slug)}


async def change_replies(cc: ConsoleContext, form: Form) -> None:
    keywords = keywords_from_text(form_text(form, "keyword_replies"))
    if isinstance(keywords, str):
        raise InvalidValue("keyword_replies", f"the line \"{keywords}\" needs a keyword, a "
                                              "colon and the reply, like \"delivery: We ship "
                                              "in 2 days.\"")
    await shops.update_shop(cc.api.db, cc.api.matrix, cc.principal, cc.slug, {
        "welcome_message": form_text(form, "welcome_message"),
        "away_message": form_text(form, "away_message"),
        "opening_hours": hours_from_form(form), "keyword_replies": keywords})


# -- staff and API keys ---------------------------------------------------------------------------

async def put_staff(cc: ConsoleContext, form: Form) -> dict[str, Any] | None:
    change = await staff.add_staff(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                   form_text(form, "user_id"), form_text(form, "role"))
    return {"staff_warning": change.warning} if change.warning else None


async def remove_staff(cc: ConsoleContext, form: Form) -> None:
    await staff.remove_staff(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                             form_text(form, "user_id"))


async def create_key(cc: ConsoleContext, form: Form) -> dict[str, Any]:
    key, secret = await staff.create_api_key(cc.api.db, cc.principal, cc.slug,
                                             form_text(form, "label"),
                                             form_text(form, "role") or "editor")
    return {"new_key": {"label": key.label, "role": key.role, "key": secret}}


async def revoke_key(cc: ConsoleContext, form: Form) -> None:
    await staff.revoke_api_key(cc.api.db, cc.principal, cc.slug, form_text(form, "key_id"))


FORMS: tuple[tuple[str, str, Action, Change], ...] = (
    ("profile", "profile", Action.EDIT_SHOP, change_profile),
    ("domain-proof", "profile", Action.EDIT_SHOP, start_domain_proof),
    ("replies", "replies", Action.EDIT_SHOP, change_replies),
    ("staff", "staff", Action.MANAGE_STAFF, put_staff),
    ("staff/remove", "staff", Action.MANAGE_STAFF, remove_staff),
    ("keys", "keys", Action.MANAGE_KEYS, create_key),
    ("keys/revoke", "keys", Action.MANAGE_KEYS, revoke_key),
)


def add_routes(app: web.Application) -> None:
    add_section(app, Section("settings", "Settings", "settings", (Action.EDIT_SHOP,), 70))
    app.router.add_get("/console/{slug}/settings", settings_page)
    for path, section, action, change in (*FORMS, *more.FORMS):
        app.router.add_post(f"/console/{{slug}}/settings/{path}",
                            settings_form(section, action, change))
    more.add_routes(app)
