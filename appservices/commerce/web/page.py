"""The shell every Mercato web page is rendered in, and the headers it is sent with.

`render` fills `web/templates/base.html.j2`'s blocks from a page's template and answers
with a strict Content-Security-Policy: only this site's own files (scripts never inline,
except with the response's nonce), images from this site (the homeserver's media reach the
browser through Mercato's own routes), forms posting here only. Pages a Matrix client shows
as a room widget (the storefront) may be framed by any site (`embeddable=True`): their
session cookie is SameSite=Lax, which a cross-site frame never sends, and a widget's own
session cookie is partitioned by the site framing it, so a page framed elsewhere acts for
nobody. Other pages (the console, sign-in links) refuse to be framed.

Static files live in `web/assets/` (the vendored libraries under `vendor/`), served at
`/web/static/` with a year of caching: `static_url` adds a hash of the file, so a new
version has a new address.
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from appservices.commerce.web import sessions
from appservices.commerce.web.errors import WebError
from mercato.logging import get_logger
from mercato.templates import template_environment

log = get_logger(__name__)

WEB_DIR = Path(__file__).parent
ASSETS_DIR = WEB_DIR / "assets"
STATIC_PREFIX = "/web/static/"
STATIC_MAX_AGE = 365 * 24 * 3600
_NONCE = web.RequestKey("mercato_web_csp_nonce", str)


def content_security_policy(nonce: str, *, embeddable: bool,
                            img_sources: Iterable[str] = ()) -> str:
    """The CSP of an HTML page (pure, so tests read it without a server)."""
    images = " ".join(["'self'", "data:", *img_sources])
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self'",
        f"img-src {images}",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {'*' if embeddable else chr(39) + 'none' + chr(39)}",
    ])


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    version: str


@cache
def _static_file(name: str) -> StaticFile | None:
    path = (ASSETS_DIR / name).resolve()
    if not path.is_relative_to(ASSETS_DIR.resolve()) or not path.is_file():
        return None
    body = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return StaticFile(body=body, content_type=content_type,
                      version=hashlib.sha256(body).hexdigest()[:12])


def static_url(name: str) -> str:
    """The address of an asset under web/assets/, versioned by its content."""
    found = _static_file(name)
    if found is None:
        raise ValueError(f"no asset {name!r} in {ASSETS_DIR}")
    return f"{STATIC_PREFIX}{name}?v={found.version}"


async def static_asset(request: web.Request) -> web.Response:
    found = _static_file(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    charset = "utf-8" if found.content_type.startswith(("text/", "application/javascript")) \
        else None
    return web.Response(body=found.body, content_type=found.content_type, charset=charset,
                        headers={"Cache-Control": f"public, max-age={STATIC_MAX_AGE}, immutable",
                                 "X-Content-Type-Options": "nosniff"})


@cache
def templates() -> jinja2.Environment:
    """Every web page's templates, under web/templates/ (a feature keeps its own folder
    there: storefront/, console/)."""
    env = template_environment(WEB_DIR / "templates")
    env.globals["static_url"] = static_url
    return env


def csp_nonce(request: web.Request) -> str:
    if _NONCE not in request:
        request[_NONCE] = secrets.token_urlsafe(16)
    return str(request[_NONCE])


async def page_context(request: web.Request) -> dict[str, Any]:
    """What the shell needs: who is signed in, the CSRF token, the CSP nonce, where we are."""
    return {"user": await sessions.signed_in_user(request),
            "csrf_token": sessions.csrf_token(request),
            "csp_nonce": csp_nonce(request),
            "here": request.path_qs,
            "signin_href": sessions.signin_url(request.path_qs)}


async def render(request: web.Request, template: str, *, status: int = 200,
                 embeddable: bool = False, img_sources: Iterable[str] = (),
                 cache_control: str = "private, no-cache", **values: Any) -> web.Response:
    """A page: `template` (which extends base.html.j2) rendered with `values` and the shell's
    context, sent with the CSP and the other security headers."""
    context = {**await page_context(request), **values}
    html = templates().get_template(template).render(**context)
    response = web.Response(text=html, status=status, content_type="text/html",
                            charset="utf-8")
    set_page_headers(request, response, embeddable=embeddable, img_sources=img_sources,
                     cache_control=cache_control)
    return response


def set_page_headers(request: web.Request, response: web.StreamResponse, *,
                     embeddable: bool = False, img_sources: Iterable[str] = (),
                     cache_control: str = "private, no-cache") -> None:
    response.headers["Content-Security-Policy"] = content_security_policy(
        csp_nonce(request), embeddable=embeddable, img_sources=img_sources)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = cache_control
    if not embeddable:
        response.headers["X-Frame-Options"] = "DENY"


async def error_page(request: web.Request, error: WebError) -> web.Response:
    return await render(request, "error.html.j2", status=error.status, embeddable=True,
                        title=error.title, message=error.message,
                        action_href=error.action_href, action_text=error.action_text,
                        cache_control="no-store")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def web_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Renders a WebError as its page, and gives a browser its CSRF secret when a page made
    one for it."""
    try:
        response = await handler(request)
    except WebError as e:
        response = await error_page(request, e)
    except web.HTTPException as e:
        sessions.set_browser_cookie(request, e)
        raise
    sessions.set_browser_cookie(request, response)
    return response


def add_web_foundation(app: web.Application) -> None:
    """The middleware and the static files; the sign-in routes are `signin.add_routes`."""
    app.middlewares.append(web_middleware)
    app.router.add_get(STATIC_PREFIX + "{name:.+}", static_asset)
