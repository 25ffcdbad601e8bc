"""The merchant console's shell: `/console/` on the commerce port, the shop's back office in
the browser, signed in with Matrix like the storefront.

Every console page starts with `console_page` (or `console_form` for a POST), which turns
the signed-in user into the API's `Principal(kind="user")` and asks the same
`require(db, principal, slug, Action.X)` that every `/api/v1` route asks; so a page can do
exactly what its user could do over the API, and a refusal is the API's sentence on a 403
page. The navigation is built from the sections registered with `add_section`, and shows
a section only when the user's role may use it:

    async def catalog_page(request):
        cc = await console_page(request, request.match_info["slug"], Action.EDIT_CATALOG)
        return await render_console(request, cc, "console/catalog.html.j2", products=...)

    def add_routes(app):
        add_section(app, Section("catalog", "Catalog", "catalog", (Action.EDIT_CATALOG,), 20))
        app.router.add_get("/console/{slug}/catalog", catalog_page)

`console_routes.add_console_routes` mounts the shell and every page module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.errors import Forbidden, NotFound
from appservices.commerce.http import CONTEXT, ApiContext
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action, role_can
from appservices.commerce.web import page, sessions
from appservices.commerce.web.errors import WebError
from appservices.commerce.web.sessions import Form
from mercato.logging import get_logger
from mercato.types import MerchantSlug

log = get_logger(__name__)

CONSOLE_PATH = "/console/"


@dataclass(frozen=True)
class Section:
    """One entry of the console's navigation: shown when the role may do any of `actions`
    (its page checks the one it needs). `order` places it: dashboard 10, catalog 20,
    campaigns 30, coupons 40, orders 50, customers 60, settings 70."""

    key: str
    label: str
    path: str  # after /console/<slug>/
    actions: tuple[Action, ...]
    order: int

    def open_to(self, role: str) -> bool:
        return any(role_can(role, action) for action in self.actions)


SECTIONS = web.AppKey("mercato_console_sections", list[Section])


@dataclass(frozen=True)
class ShopChoice:
    slug: str
    name: str
    role: str


@dataclass(frozen=True)
class ConsoleContext:
    """Who is working on which shop, as what, and the navigation their role opens."""

    api: ApiContext
    user: str
    principal: Principal
    merchant: store.Merchant
    role: str
    shops: tuple[ShopChoice, ...]
    sections: tuple[Section, ...]  # only those the role may open
    current: str  # the key of the section being shown, or ""

    @property
    def slug(self) -> str:
        return self.merchant.slug

    def can(self, action: Action) -> bool:
        return role_can(self.role, action)

    def url(self, rest: str = "") -> str:
        """The address of a console page of this shop: url("catalog") → /console/<slug>/catalog."""
        return shop_url(self.slug, rest)


def shop_url(slug: str, rest: str = "") -> str:
    return f"{CONSOLE_PATH}{quote(slug, safe='')}/{rest}"


def add_section(app: web.Application, section: Section) -> None:
    """Put a page in the console's navigation (its module adds its routes itself)."""
    sections = app.setdefault(SECTIONS, [])
    if any(s.key == section.key for s in sections):
        raise ValueError(f"console section {section.key!r} registered twice")
    sections.append(section)
    sections.sort(key=lambda s: (s.order, s.key))


def sections_for(app: web.Application, role: str) -> tuple[Section, ...]:
    return tuple(s for s in app.get(SECTIONS, []) if s.open_to(role))


async def shop_choices(api: ApiContext, user: str) -> tuple[ShopChoice, ...]:
    """The shops the user works for, as GET /api/v1/me/shops lists them, with their names."""
    choices = []
    for slug, role in await store.shops_of_user(api.db, user):
        merchant = await store.get_merchant(api.db, MerchantSlug(slug))
        choices.append(ShopChoice(slug, merchant.name if merchant else slug, role))
    return tuple(choices)


def _current_section(request: web.Request, slug: str) -> str:
    rest = request.path.removeprefix(shop_url(slug))
    for section in request.app.get(SECTIONS, []):
        if rest == section.path or rest.startswith(section.path.rstrip("/") + "/"):
            return section.key
    return ""


async def console_page(request: web.Request, slug: str, action: Action) -> ConsoleContext:
    """The console's context for a page of shop `slug` that needs `action`: a redirect to
    the sign-in page when nobody is signed in, a 403 page when the user's role may not do
    `action` (the API's own check and sentence), a 404 page when there is no such shop."""
    user = await sessions.require_user(request)
    api = request.app[CONTEXT]
    principal = Principal(kind="user", user_id=user)
    try:
        merchant = await require(api.db, principal, slug, action)
    except NotFound as e:
        raise WebError(404, "No such shop", e.message, action_href=CONSOLE_PATH,
                       action_text="Your shops") from None
    except Forbidden as e:
        log.info("console.refused", user_id=user, shop=slug, action=action.value)
        raise WebError(403, "Not open to your role",
                       f"{e.message} An owner of the shop can change your role.",
                       action_href=shop_url(slug) if await store.staff_role(
                           api.db, slug, user) else CONSOLE_PATH,
                       action_text="Back to the console") from None
    role = await store.staff_role(api.db, slug, user) or ""  # require() found it
    return ConsoleContext(api=api, user=user, principal=principal, merchant=merchant,
                          role=role, shops=await shop_choices(api, user),
                          sections=sections_for(request.app, role),
                          current=_current_section(request, slug))


async def console_form(request: web.Request, slug: str,
                       action: Action) -> tuple[ConsoleContext, Form]:
    """A POSTed console form: signed in, carrying this browser's CSRF token (else a 403 page
    and nothing changes), by a user whose role may do `action`."""
    await sessions.require_user(request)
    form = await sessions.check_csrf(request)
    return await console_page(request, slug, action), form


async def render_console(request: web.Request, cc: ConsoleContext, template: str, *,
                         status: int = 200, **values: Any) -> web.Response:
    """A console page: `template` extends console/base.html.j2 and gets `console`."""
    return await page.render(request, template, status=status, cache_control="no-store",
                             console=cc, **values)


def wants_fragment(request: web.Request) -> bool:
    """Whether htmx sent the form and swaps in just the changed part (it says so in a
    header); without JavaScript the same form gets the whole page."""
    return request.headers.get("HX-Request") == "true"


# -- the shell's own pages -------------------------------------------------------------------

async def home(request: web.Request) -> web.Response:
    """The shops the user works for, each with the sections their role opens there."""
    user = await sessions.require_user(request)
    api = request.app[CONTEXT]
    shops = await shop_choices(api, user)
    listed = [{"shop": s, "sections": sections_for(request.app, s.role)} for s in shops]
    return await page.render(request, "console/home.html.j2", cache_control="no-store",
                             shops=listed, shop_url=shop_url)


async def shop_home(request: web.Request) -> web.StreamResponse:
    """A shop's console opens on the first section the user's role may use."""
    cc = await console_page(request, request.match_info["slug"], Action.READ_SHOP)
    if cc.sections:
        raise web.HTTPSeeOther(cc.url(cc.sections[0].path))
    return await render_console(request, cc, "console/shop.html.j2")


async def switch_shop(request: web.Request) -> web.StreamResponse:
    """The shop switcher's GET form: the same section in the other shop when the role there
    opens it, else that shop's first page."""
    user = await sessions.require_user(request)
    slug = request.query.get("shop", "")
    role = await store.staff_role(request.app[CONTEXT].db, slug, user) if slug else None
    if role is None:
        raise web.HTTPSeeOther(CONSOLE_PATH)
    wanted = request.query.get("section", "")
    for section in sections_for(request.app, role):
        if section.key == wanted:
            raise web.HTTPSeeOther(shop_url(slug, section.path))
    raise web.HTTPSeeOther(shop_url(slug))


async def to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(CONSOLE_PATH)


def add_routes(app: web.Application) -> None:
    app.setdefault(SECTIONS, [])
    app.router.add_get("/console", to_console)
    app.router.add_get(CONSOLE_PATH, home)
    app.router.add_get(CONSOLE_PATH + "go", switch_shop)
    app.router.add_get(CONSOLE_PATH + "{slug}/", shop_home)
