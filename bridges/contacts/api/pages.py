"""The bridge's web pages: `/invite/<code>` (no script) and `/import` (hashes in the browser).

The invite page says who invited the reader and how to join, with a QR code of its
own address drawn on the server (segno, SVG). The import page reads a contacts file
with its own script, hashes every phone number and email as the identity service's
lookup does, and sends only the hashes to `/_matrix/identity/v2/lookup` on this same
origin; its Content-Security-Policy allows no other destination. The page carries, as
JSON, the rules the bot reads files with (`page_rules`): the same header vocabulary and
limits, so a file the bot reads, the page reads.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import phonenumbers
import segno
from aiohttp import web

from bridges.contacts.api.routes import CONTEXT, route
from bridges.contacts.db import store
from bridges.contacts.importers import csv_formats, model
from bridges.contacts.importers.csv_headers import browser_rules
from bridges.contacts.links import bridge_public_url, invite_url, matrix_to
from bridges.contacts.summary import MAX_LISTED_COLUMNS
from mercato import text_decoding
from mercato.common_han import COMMON_HAN
from mercato.http_api import Spec
from mercato.logging import get_logger
from mercato.templates import template_environment

log = get_logger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = template_environment(TEMPLATES)

CLIENTS = [
    ("Element", "https://element.io/download", "web, Android, iPhone, Windows, macOS, Linux"),
    ("FluffyChat", "https://fluffychat.im/", "Android, iPhone, web"),
    ("Cinny", "https://cinny.in/", "web and desktop"),
    ("Nheko", "https://nheko-reborn.github.io/", "Windows, macOS, Linux"),
]
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
INVITE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# connect-src 'self': the page's script can send nothing anywhere but this bridge.
IMPORT_CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
              "connect-src 'self'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")
# The import page's scripts: the page, reading bytes as text, and reading a CSV.
IMPORT_SCRIPTS = ("import", "import_decoding", "import_csv")
# Link previews (Synapse's among them) fetch a link pasted in a chat: not a person.
PREVIEW_AGENTS = ("bot", "synapse", "preview", "crawler", "spider", "facebookexternalhit")


def qr_svg(data: str) -> str:
    """An inline SVG QR code of `data` (no XML declaration, sized by its viewBox)."""
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="svg", xmldecl=False, svgns=True,
                                     scale=4, border=2, omitsize=True, svgclass="qr",
                                     light="#fff")
    return out.getvalue().decode("ascii")


def calling_code(region: str) -> str:
    """The calling code of a region (NO → "47"), or "" when none is set."""
    code = phonenumbers.country_code_for_region(region) if region else 0
    return str(code) if code else ""


def page_rules() -> dict[str, Any]:
    """What the import page's scripts read a file with, from the modules the bot uses."""
    return {
        "headers": browser_rules(),
        "labels": {"max_chars": model.MAX_LABEL_CHARS, "formula_starts": model.FORMULA_STARTS,
                   "cjk": model.CJK.pattern, "kept_invisible": model.KEPT_INVISIBLE},
        "csv": {"max_record_chars": csv_formats.MAX_RECORD_CHARS,
                "max_record_lines": csv_formats.MAX_RECORD_LINES},
        "text": {"sniff_bytes": text_decoding.SNIFF_BYTES,
                 "max_line_bytes": text_decoding.DEFAULT_MAX_LINE_BYTES,
                 "common_han": COMMON_HAN},
        "encodings": text_decoding.ENCODING_NAMES,
        "max_listed_columns": MAX_LISTED_COLUMNS,
    }


def _html(body: str, csp: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers={**PAGE_HEADERS, "Content-Security-Policy": csp})


@route("GET", "/invite/{code}", Spec("A personal invite page with a QR code", auth="none"))
async def invite_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    code = request.match_info["code"]
    found = await store.invite(ctx.db, code) if len(code) <= 64 else None
    if found is None:
        return _html(_env.get_template("invite_missing.html.j2").render(), INVITE_CSP, 404)
    agent = request.headers.get("User-Agent", "").lower()
    if agent and not any(word in agent for word in PREVIEW_AGENTS):
        await store.mark_invite_opened(ctx.db, code)
    url = invite_url(bridge_public_url(ctx.config), code)
    server = ctx.config.server_name
    page = _env.get_template("invite.html.j2").render(
        inviter=found.inviter, inviter_link=matrix_to(found.inviter), server_name=server,
        homeserver_url=ctx.config.client_baseurl, clients=CLIENTS,
        bot=f"@{ctx.config.contacts.bot_localpart}:{server}", named=found.medium,
        page_url=url, qr=qr_svg(url))
    return _html(page, INVITE_CSP)


@route("GET", "/import", Spec("Find contacts here: the file is read and hashed in the browser",
                              auth="none"))
async def import_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    page = _env.get_template("import.html.j2").render(
        server_name=ctx.config.server_name, default_region=ctx.config.contacts.default_region,
        bot=f"@{ctx.config.contacts.bot_localpart}:{ctx.config.server_name}",
        max_identifiers=ctx.discovery.limits.max_identifiers,
        calling_code=calling_code(ctx.config.contacts.default_region), rules=page_rules())
    return _html(page, IMPORT_CSP)


@route("GET", "/{script:import(?:_decoding|_csv)?}.js",
       Spec("The import page's scripts (ES modules)", auth="none"))
async def import_script(request: web.Request) -> web.Response:
    name = request.match_info["script"]
    if name not in IMPORT_SCRIPTS:
        raise web.HTTPNotFound()
    return web.Response(text=(TEMPLATES / f"{name}.js").read_text("utf-8"),
                        content_type="text/javascript", charset="utf-8", headers=PAGE_HEADERS)
