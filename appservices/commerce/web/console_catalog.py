"""The console's catalog: the shop's products in a searchable, paged table, each row a small
form (title, price, units in stock) saved in place, a photo per product, a form to add a
product, bulk changes to the rows ticked (units, price, or price by a percentage) and the
CSV import (Shopify, WooCommerce, Mercato CSV) with its report of refused rows.

Every change calls the catalog's own operations — `create_product`, `update_product`, the
import the API runs — as the signed-in user, so the role table, the checks and the card
edits in the channels are the API's. With JavaScript (htmx) a row is saved without a page
load and the import shows its upload progress; without it every form posts and the page
comes back.
"""

from __future__ import annotations

import tempfile
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, cast
from urllib.parse import urlencode

from aiohttp import web

from appservices.commerce import images
from appservices.commerce.catalog import import_routes
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products as product_rules
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.catalog.products import Product
from appservices.commerce.shops.roles import Action
from appservices.commerce.web.console import (
    ConsoleContext,
    Section,
    add_section,
    console_form,
    console_page,
    render_console,
    wants_fragment,
)
from appservices.commerce.web.errors import WebError
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

PAGE_SIZE = 25
BULK_CHANGES = {"quantity": "Set units in stock to", "price": "Set price to",
                "percent": "Change price by percent"}
Refusal = (ApiError, InvalidValue)


# -- pure rules ------------------------------------------------------------------------------

def form_text(form: Any, name: str, limit: int = 2000) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def form_quantity(text: str) -> int | str | None:
    """Units in stock as typed: empty means not counted; a number stays the API's to check."""
    if not text:
        return None
    return int(text) if text.isdigit() else text


def row_changes(form: Any) -> dict[str, Any]:
    """A row's form as the API's PATCH body: title, price and units in stock."""
    return {"title": form_text(form, "title", 500), "price": form_text(form, "price", 40),
            "quantity": form_quantity(form_text(form, "quantity", 20))}


def percent_price(price: str, percent: Decimal) -> str:
    """The price changed by `percent` (-10 is ten percent off), rounded to the cent, half
    up. A change that would make a price negative, or round a price down to nothing, is
    refused rather than giving the product away."""
    before = Decimal(price)
    changed = (before * (Decimal(100) + percent) / Decimal(100)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP)
    if changed < 0 or (changed == 0 and before > 0):
        raise InvalidValue("value", f"changing {price} by {percent}% leaves no price; give "
                                    "a smaller reduction")
    return str(changed)


def bulk_changes(products: list[Product], change: str,
                 value: str) -> list[tuple[str, dict[str, Any]]]:
    """Each ticked product's PATCH body for a bulk change; a value that is no number for the
    change is refused before anything is written."""
    if change == "quantity":
        quantity = form_quantity(value)
        if not isinstance(quantity, int):
            raise InvalidValue("value", "give the units in stock as a whole number, such as 12")
        return [(p.sku, {"quantity": quantity}) for p in products]
    if change == "price":
        return [(p.sku, {"price": value}) for p in products]
    if change == "percent":
        try:
            percent = Decimal(value.replace(",", ".").removesuffix("%"))
        except InvalidOperation:
            raise InvalidValue("value", "give the change as a percentage, such as -10 for ten "
                                        "percent off or 5 for five percent more") from None
        if not percent.is_finite() or not -100 < percent <= 1000:
            raise InvalidValue("value", "give a percentage above -100 and at most 1000")
        return [(p.sku, {"price": percent_price(p.price, percent)}) for p in products]
    raise InvalidValue("change", f"choose one of: {', '.join(BULK_CHANGES.values())}")


# -- pages -----------------------------------------------------------------------------------

def _slug(request: web.Request) -> str:
    return request.match_info["slug"]


def _catalog_url(cc: ConsoleContext, **query: str) -> str:
    kept = {k: v for k, v in query.items() if v}
    return cc.url("catalog") + (f"?{urlencode(kept)}" if kept else "")


async def catalog_page(request: web.Request) -> web.Response:
    cc = await console_page(request, _slug(request), Action.EDIT_CATALOG)
    return await _render_catalog(request, cc)


async def _render_catalog(request: web.Request, cc: ConsoleContext, *, status: int = 200,
                          **values: Any) -> web.Response:
    query = request.query.get("q", "")[:100]
    after = request.query.get("after", "")[:200]
    found = await product_rows.list_products(cc.api.db, cc.slug, query=query,
                                             limit=PAGE_SIZE + 1, after_sku=after)
    more = len(found) > PAGE_SIZE
    shown = found[:PAGE_SIZE]
    values.setdefault("error", "")
    values.setdefault("errors", {})
    values.setdefault("added", {})
    return await render_console(
        request, cc, "console/catalog.html.j2", status=status, products=shown, query=query,
        after=after, total=await product_rows.count_products(cc.api.db, cc.slug),
        next_href=_catalog_url(cc, q=query, after=shown[-1].sku) if more else "",
        first_href=_catalog_url(cc, q=query) if after else "",
        saved=request.query.get("saved", ""), bulk_done=request.query.get("bulk", ""),
        bulk_changes=BULK_CHANGES, max_image_mib=images.MAX_IMAGE_BYTES // 2**20, **values)


async def edit_product(request: web.Request) -> web.StreamResponse:
    """One row's title, price and units in stock (`update_product`, as PATCH does)."""
    cc, form = await console_form(request, _slug(request), Action.EDIT_CATALOG)
    sku = request.match_info["sku"]
    error = ""
    try:
        product = await catalog.update_product(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                               sku, row_changes(form))
    except Refusal as e:
        error = e.message
        product = await _product_or_404(cc, sku)
    if wants_fragment(request):
        return await render_console(request, cc, "console/catalog_row.html.j2",
                                    status=422 if error else 200, p=product, row_error=error,
                                    row_saved=not error)
    if error:
        return await _render_catalog(request, cc, status=422, errors={sku: error})
    raise web.HTTPSeeOther(_catalog_url(cc, q=form_text(form, "q"), saved=sku))


async def _product_or_404(cc: ConsoleContext, sku: str) -> Product:
    product = await product_rows.get_product(cc.api.db, cc.slug, sku)
    if product is None:
        raise WebError(404, "No such product", f"There is no product '{sku}' in your "
                       "catalog.", action_href=cc.url("catalog"), action_text="The catalog")
    return product


async def _image_of(cc: ConsoleContext, form: Any) -> dict[str, Any]:
    """The uploaded photo stored as the media API stores it, or {} when none was chosen."""
    field = form.get("image")
    if not isinstance(field, web.FileField) or not field.filename:
        return {}
    data = field.file.read(images.MAX_IMAGE_BYTES + 1)
    if not data:
        return {}
    return await images.store_image(cast(images.ImageStore, cc.api.matrix), cc.merchant, data,
                                    "image")


async def add_product(request: web.Request) -> web.StreamResponse:
    """A new product, with its photo if one was chosen (`create_product`, as POST does)."""
    cc, form = await console_form(request, _slug(request), Action.EDIT_CATALOG)
    body: dict[str, Any] = {name: form_text(form, name) for name in (
        "sku", "title", "price", "currency", "description")}
    body["quantity"] = form_quantity(form_text(form, "quantity", 20))
    body = {k: v for k, v in body.items() if v not in ("", None)}
    try:
        # The fields first: a refused product uploads no photo.
        product_rules.validate_product(body)
        body.update(await _image_of(cc, form))
        product = await catalog.create_product(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                               body)
    except Refusal as e:
        return await _render_catalog(request, cc, status=422, error=e.message,
                                     added={k: v for k, v in body.items() if isinstance(v, str)})
    log.info("console.product_added", shop=cc.slug, sku=product.sku, user_id=cc.user)
    raise web.HTTPSeeOther(_catalog_url(cc, q=product.sku, saved=product.sku))


async def change_image(request: web.Request) -> web.StreamResponse:
    cc, form = await console_form(request, _slug(request), Action.EDIT_CATALOG)
    sku = request.match_info["sku"]
    await _product_or_404(cc, sku)
    try:
        image = await _image_of(cc, form)
        if not image:
            raise InvalidValue("image", "choose a photo to upload")
        await catalog.update_product(cc.api.db, cc.api.matrix, cc.principal, cc.slug, sku, image)
    except Refusal as e:
        return await _render_catalog(request, cc, status=422, errors={sku: e.message})
    raise web.HTTPSeeOther(_catalog_url(cc, q=form_text(form, "q"), saved=sku))


async def bulk_change(request: web.Request) -> web.StreamResponse:
    """The same change to every ticked product: all are checked, then all saved in one
    transaction or none (`update_products`); the posted cards are edited after that."""
    cc, form = await console_form(request, _slug(request), Action.EDIT_CATALOG)
    skus = list(dict.fromkeys(s for s in form.getall("sku", []) if isinstance(s, str)))[:500]
    try:
        if not skus:
            raise InvalidValue("products", "tick the products to change first")
        chosen = [await _product_or_404(cc, sku) for sku in skus]
        changes = bulk_changes(chosen, form_text(form, "change"), form_text(form, "value", 40))
        await catalog.update_products(cc.api.db, cc.api.matrix, cc.principal, cc.slug, changes)
    except Refusal as e:
        return await _render_catalog(request, cc, status=422,
                                     error=f"Nothing was changed: {e.message}")
    log.info("console.bulk_change", shop=cc.slug, products=len(changes), user_id=cc.user)
    raise web.HTTPSeeOther(_catalog_url(cc, q=form_text(form, "q"), bulk=str(len(changes))))


async def import_csv(request: web.Request) -> web.Response:
    """The catalog import the API runs, with the file from the form; the answer is the
    report (htmx swaps it in under the progress bar)."""
    cc, form = await console_form(request, _slug(request), Action.EDIT_CATALOG)
    upload = form.get("file")
    report: dict[str, Any] | None = None
    error = ""
    if not isinstance(upload, web.FileField) or not upload.filename:
        error = "Choose the CSV file to import first."
    else:
        try:
            currency = form_text(form, "currency").upper() or None
            if currency:
                currency = product_rules.validate_currency(currency)
            with tempfile.SpooledTemporaryFile(max_size=import_routes.SPOOL_IN_MEMORY) as spool:
                spool.write(upload.file.read())
                spool.seek(0)
                done = await import_routes.import_file(
                    cc.api, cc.principal, cc.merchant, spool, currency=currency,
                    fetch_images=form_text(form, "images") != "skip")
            report = done.to_json()
        except Refusal as e:
            error = e.message
    template = ("console/catalog_import_report.html.j2" if wants_fragment(request)
                else "console/catalog_import.html.j2")
    return await render_console(request, cc, template, status=422 if error else 200,
                                report=report, error=error)


def add_routes(app: web.Application) -> None:
    add_section(app, Section("catalog", "Catalog", "catalog", (Action.EDIT_CATALOG,), 20))
    app.router.add_get("/console/{slug}/catalog", catalog_page)
    app.router.add_post("/console/{slug}/catalog/products", add_product)
    app.router.add_post("/console/{slug}/catalog/bulk", bulk_change)
    app.router.add_post("/console/{slug}/catalog/import", import_csv)
    app.router.add_post("/console/{slug}/catalog/products/{sku}", edit_product)
    app.router.add_post("/console/{slug}/catalog/products/{sku}/image", change_image)
