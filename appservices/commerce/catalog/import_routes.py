"""The catalog import route: a CSV file as the request body, a per-row report as the answer.

The body is spooled (in memory up to 1 MiB, then to a temporary file) before any row is
read: the 50 MiB limit is enforced on the bytes themselves, and an upload that breaks off
half-way imports nothing instead of the first half of a file. The importer then reads the
spool in chunks, never the whole file at once.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import re
import socket
import ssl
import tempfile
from typing import IO, Any, cast
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image, UnidentifiedImageError

from appservices.commerce.campaigns.routes import IMAGE_TYPES, MAX_IMAGE_BYTES
from appservices.commerce.catalog import importing as catalog_import
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog.importing import ImageFetcher, ImageUnavailable
from appservices.commerce.catalog.products import Product, validate_currency
from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.http import ApiContext, route, staff_caller
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from mercato.http_api import Spec

MAX_IMPORT_BYTES = 50 * 1024 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
IMAGE_TIMEOUT_SECONDS = 15
MAX_REDIRECTS = 3
NOT_CSV = ("multipart/form-data", "application/x-www-form-urlencoded", "application/json")


class NotPublic(OSError):
    """The image's host resolves only to private, loopback or reserved addresses."""


class PublicResolver(AbstractResolver):
    """Resolves like the system does, but never to an address inside our network: a shop's
    image URL must not make the server fetch from its own side of the firewall."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [a for a in found if ipaddress.ip_address(a["host"]).is_global]
        if not public:
            raise NotPublic(f"{host} is not a public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


async def download_image(session: aiohttp.ClientSession, url: str, *,
                         public_only: bool = True) -> bytes:
    """The bytes at an https:// URL, at most 10 MiB, following up to 3 redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ImageUnavailable("only https:// images are fetched")
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if public_only and literal is not None and not literal.is_global:
            raise ImageUnavailable(f"{parts.hostname} is not a public address")
        try:
            async with session.get(url, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                    url = urljoin(url, resp.headers["Location"])
                    continue
                if resp.status != 200:
                    raise ImageUnavailable(f"the server answered HTTP {resp.status}")
                if (resp.content_length or 0) > MAX_IMAGE_BYTES:
                    raise ImageUnavailable(_too_large())
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        raise ImageUnavailable(_too_large())
                return bytes(data)
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, NotPublic):
                raise ImageUnavailable(str(e.os_error)) from None
            raise ImageUnavailable(f"could not connect to {parts.hostname}") from None
        except TimeoutError:
            raise ImageUnavailable(f"no answer within {IMAGE_TIMEOUT_SECONDS} s") from None
        except aiohttp.ClientError as e:
            raise ImageUnavailable(f"the download failed ({type(e).__name__})") from None
    raise ImageUnavailable(f"more than {MAX_REDIRECTS} redirects")


def _too_large() -> str:
    return f"the image is over {MAX_IMAGE_BYTES // 2**20} MiB"


def identify_image(data: bytes) -> dict[str, Any]:
    """The image's mimetype and size, or ImageUnavailable; the same check as /media."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ImageUnavailable("it is not a PNG, JPEG, WebP or GIF image") from None
    if kind not in IMAGE_TYPES:
        raise ImageUnavailable(f"{kind} images are not accepted; use PNG, JPEG, WebP or GIF")
    return {"mimetype": IMAGE_TYPES[kind], "size": len(data), "w": width, "h": height,
            "ext": (kind or "").lower()}


def image_fetcher(session: aiohttp.ClientSession, matrix: Any, merchant: store.Merchant, *,
                  public_only: bool = True) -> ImageFetcher:
    """Fetch a row's image and upload it to the media repository as the shop."""

    async def fetch(url: str) -> tuple[str, dict[str, Any]]:
        data = await download_image(session, url, public_only=public_only)
        info = await asyncio.to_thread(identify_image, data)
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        ext = info.pop("ext")
        filename = name if re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name) else f"product.{ext}"
        try:
            mxc = await matrix.upload_image(merchant, data, info["mimetype"], filename)
        except Exception as e:
            raise ImageUnavailable(f"the media repository refused it ({type(e).__name__})"
                                   ) from None
        return mxc, {**info, "filename": filename}

    return fetch


def image_session(*, public_only: bool = True,
                  ca_file: str = "") -> aiohttp.ClientSession:
    ssl_context = ssl.create_default_context()
    if ca_file:
        ssl_context.load_verify_locations(ca_file)
    connector = aiohttp.TCPConnector(ssl=ssl_context, limit=catalog_import.IMAGE_FETCHES,
                                     resolver=PublicResolver() if public_only else None)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=IMAGE_TIMEOUT_SECONDS),
        headers={"User-Agent": "Mercato catalog import"})


async def spool_body(request: web.Request, spool: IO[bytes]) -> int:
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise CommerceError(f"The file is over {MAX_IMPORT_BYTES // 2**20} MiB; split it "
                                "and import the parts one after another.",
                                errcode="M_TOO_LARGE", status=413)
        spool.write(chunk)
    spool.seek(0)
    return size


@route("POST", "/shops/{slug}/products/import", Spec(
    "Import products from a CSV file sent as the body (text/csv, at most 50 MiB): a Shopify "
    "or WooCommerce product export, or Mercato's CSV (docs/catalog-csv.md). Answers with "
    "what each row became: imported, updated, refused (and why)", auth="staff", query={
        "currency": "ISO 4217 code of the file's prices; needed for Shopify and WooCommerce "
                    "exports, which carry none",
        "images": "'skip' to import without fetching the rows' image URLs"}))
async def import_products(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    # Refuse early, before reading up to 50 MiB.
    merchant = await merchants.require(ctx.db, principal, slug, Action.EDIT_CATALOG)
    if request.content_type in NOT_CSV:
        raise InvalidInput("Content-Type", "send the CSV file itself as the body, as text/csv "
                                           "(curl --data-binary @products.csv), not a form "
                                           "or JSON")
    currency = request.query.get("currency") or None
    if currency:
        currency = validate_currency(currency)

    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        if not await spool_body(request, spool):
            raise CommerceError("The body is empty; send the CSV file as the body.",
                                errcode="M_MISSING_PARAM")
        report = await import_file(ctx, principal, merchant, spool, currency=currency,
                                   fetch_images=request.query.get("images") != "skip")
    return web.json_response(report.to_json())


async def import_file(ctx: ApiContext, principal: merchants.Principal,
                      merchant: store.Merchant, stream: IO[bytes], *, currency: str | None,
                      fetch_images: bool = True) -> catalog_import.ImportReport:
    """Import a spooled CSV file as the API route and the console's import form do: posted
    cards show new prices, price-drop subscribers hear of them, row images are fetched."""
    matrix = cast(catalog.CatalogMatrix, ctx.matrix)  # the commerce appservice is both

    async def changed(before: Product, after: Product) -> None:
        """Posted cards show the new price; price-drop subscribers hear of it once."""
        await catalog.refresh_cards(ctx.db, matrix, merchant, after)
        if products.price_dropped(before, after):
            await catalog.notify_alerts(ctx.db, matrix, merchant, before, after)

    async with image_session() as session:
        fetch = image_fetcher(session, ctx.matrix, merchant) if fetch_images else None
        return await catalog_import.import_catalog(
            ctx.db, principal, merchant.slug, stream, default_currency=currency,
            fetch_image=fetch, on_change=changed, mercato_hosts=ctx.matrix.mercato_hosts)
