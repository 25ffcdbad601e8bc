"""What the console's browser tests share: a shop with staff in every role, a signed-in
browser for any of them (the one-time link the shop bot's `web` command hands out), and
screenshots for docs/merchant-guide.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import CommerceApi, new_user, open_shop

DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "img"
WIDTHS = (360, 1280)


@dataclass
class ConsoleShop:
    api: CommerceApi
    slug: str
    base: str  # the commerce port's public address
    staff: dict[str, str]  # role → Matrix user ID

    def url(self, rest: str = "") -> str:
        return f"{self.base}/console/{self.slug}/{rest}"


async def console_shop(network: RunningNetwork, http: aiohttp.ClientSession,
                       name: str = "") -> ConsoleShop:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "console", **({"name": name} if name else {}))
    staff = {"owner": owner.user_id}
    for role in ("editor", "support", "analyst"):
        user = await new_user(network, http, role)
        added = await api.add_staff(slug, api.acting_as(owner.user_id), user.user_id, role)
        assert added.status in (200, 201), added
        staff[role] = user.user_id
    link = await api.post("/me/web-login", api.acting_as(owner.user_id), {"next": "/console/"})
    assert link.status == 201, link
    parts = urlsplit(link.body["url"])
    return ConsoleShop(api, slug, f"{parts.scheme}://{parts.netloc}", staff)


async def signed_in(browser: Browser, shop: ConsoleShop, role: str, *, width: int = 1280,
                    javascript: bool = True) -> tuple[BrowserContext, Page]:
    """A browser signed in as the shop's staff member of `role`, on /console/."""
    context = await browser.new_context(viewport={"width": width, "height": 900},
                                        java_script_enabled=javascript)
    page = await context.new_page()
    user = shop.staff[role]
    link = await shop.api.post("/me/web-login", shop.api.acting_as(user), {"next": "/console/"})
    assert link.status == 201, link
    await page.goto(link.body["url"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()
    return context, page


def problems(page: Page) -> list[str]:
    """Console errors (a CSP violation is one) and failed requests, as they happen."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None)
    page.on("requestfailed", lambda r: seen.append(f"{r.url}: {r.failure}"))
    return seen


async def shot(page: Page, name: str) -> None:
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(DOCS_IMAGES / f"console-{name}.png"), full_page=True)
