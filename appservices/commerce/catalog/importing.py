"""Bulk import of a shop's catalog from CSV: Shopify's and WooCommerce's product exports,
and Mercato's own documented CSV (docs/catalog-csv.md).

The core is sans-I/O: `CatalogFile` (import_file.py) turns a binary stream into checked
rows, each format mapped by import_formats.py. `import_catalog` writes the valid rows in
batches: each batch is checked first and written in one transaction, so a refused row
writes nothing and no product is ever half-written.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from appservices.commerce.catalog import storage as rows
from appservices.commerce.catalog.import_file import CatalogFile, CatalogRow, shown
from appservices.commerce.catalog.products import (
    Product,
    validate_product,
)
from appservices.commerce.links import policy_for
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database, transaction
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

BATCH_ROWS = 250  # rows per transaction; divides PROGRESS_EVERY so progress is exact
PROGRESS_EVERY = 500
MAX_LISTED = 1000  # refusals and warnings listed in a report (all are counted)
IMAGE_FETCHES = 8  # at the same time

ImageFetcher = Callable[[str], Awaitable[tuple[str, dict[str, Any]] | None]]
Progress = Callable[[int], Any]


class ImageUnavailable(Exception):
    """The image at a row's URL could not be fetched; the message says why."""


@dataclass
class ImportReport:
    format: str
    encoding: str
    rows: int = 0  # data rows read (the header is not counted)
    imported: int = 0
    updated: int = 0
    skipped: int = 0  # rows with no product of their own: image rows, drafts, blank lines
    refused: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    refused_count: int = 0
    warning_count: int = 0

    def refuse(self, row: int, sku: str, reason: str) -> None:
        self.refused_count += 1
        if len(self.refused) < MAX_LISTED:
            self.refused.append({"row": row, "sku": sku, "reason": reason})

    def warn(self, row: int, sku: str, warning: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_LISTED:
            self.warnings.append({"row": row, "sku": sku, "warning": warning})

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "encoding": self.encoding, "rows": self.rows,
                "imported": self.imported, "updated": self.updated, "skipped": self.skipped,
                "refused_count": self.refused_count, "warning_count": self.warning_count,
                "refused": self.refused, "warnings": self.warnings,
                "listed_all": (len(self.refused) == self.refused_count
                               and len(self.warnings) == self.warning_count)}


class _Images:
    """Fetches each image URL once per import, a few at a time."""

    def __init__(self, fetch: ImageFetcher | None) -> None:
        self.fetch = fetch
        self.done: dict[str, tuple[str, dict[str, Any]] | str] = {}
        self.limit = asyncio.Semaphore(IMAGE_FETCHES)

    async def get(self, url: str) -> tuple[str, dict[str, Any]] | str:
        """(mxc, info), or why there is no image."""
        if url not in self.done and self.fetch is not None:
            async with self.limit:
                try:
                    found = await self.fetch(url)
                    result: tuple[str, dict[str, Any]] | str = (
                        "the address gave no image" if found is None else
                        (found[0], {**found[1], "source_url": url}))
                except ImageUnavailable as e:
                    result = str(e)
                except Exception as e:  # a broken server must not stop the import
                    log.warning("catalog_import.image_failed", url=url, error=repr(e))
                    result = f"fetching it failed ({type(e).__name__})"
            if len(self.done) >= 10_000:
                self.done.clear()
            self.done[url] = result
        return self.done.get(url, "images are not fetched here")


# What a card or a price-drop alert must hear of: the product before and after the import.
CARD_FIELDS = ("title", "price", "currency", "original_price", "stock", "image_mxc")
ProductChanged = Callable[[Product, Product], Awaitable[None]]


class _Import:
    """The writing side of one import: images, transactions, the report."""

    def __init__(self, db: Database, slug: str, report: ImportReport,
                 fetch_image: ImageFetcher | None, on_change: ProductChanged | None) -> None:
        self.db, self.slug, self.report = db, slug, report
        self.images, self.on_change = _Images(fetch_image), on_change

    async def batch(self, batch: list[CatalogRow]) -> None:
        """Check first, then write the valid rows of the batch in one transaction."""
        valid = [item for item in batch if item.fields is not None]
        before = await asyncio.gather(*(self._add_image(item) for item in valid))
        outcomes = await self._write(valid) if valid else []
        results = {id(item): outcome for item, outcome in zip(valid, outcomes, strict=True)}
        for item, old in zip(valid, before, strict=True):
            if results[id(item)] is False and old is not None and self.on_change:
                await self._tell_change(item, old)
        for item in batch:
            outcome = results.get(id(item))
            if item.refused or isinstance(outcome, str):
                self.report.refuse(item.row, item.sku, item.refused or str(outcome))
            elif outcome is True:
                self.report.imported += 1
            elif outcome is False:
                self.report.updated += 1
            else:
                self.report.skipped += 1
            for warning in item.warnings:
                self.report.warn(item.row, item.sku, warning)
        self.report.rows += len(batch)

    async def _add_image(self, item: CatalogRow) -> Product | None:
        """Give the row its image: fetched, or the one the product has (when the row has
        none, or the same source). Returns the product as it was, if it existed."""
        fields = item.fields
        if fields is None:
            return None
        existing = await rows.get_product(self.db, self.slug, fields["sku"])
        current: dict[str, Any] = {"image_mxc": existing.image_mxc,
                                   "image_info": existing.image_info} if (
            existing and existing.image_mxc) else {}
        if not item.image_url or self.images.fetch is None or current.get(
                "image_info", {}).get("source_url") == item.image_url:
            fields.update(current)
            return existing
        result = await self.images.get(item.image_url)
        if isinstance(result, tuple):
            try:
                fields.update(validate_product({"image_mxc": result[0],
                                                "image_info": result[1]}, partial=True))
                return existing
            except InvalidValue as e:
                result = e.message
        fields.update(current)
        kept = "it keeps its current image" if current else "imported without an image"
        item.warnings.append(f"image not fetched from {shown(item.image_url, 120)}: "
                             f"{result}; {kept}")
        return existing

    async def _write(self, valid: list[CatalogRow]) -> list[bool | str]:
        """Each row written (True if new, False if updated), or why it could not be."""
        products = [item.fields for item in valid if item.fields is not None]  # all of them
        try:
            async with transaction(self.db) as conn:
                return [await rows.upsert_product(conn, self.slug, fields)
                        for fields in products]
        except Exception:
            log.exception("catalog_import.batch_failed", shop=self.slug, rows=len(valid))
        outcomes: list[bool | str] = []  # one by one, so one bad write costs one row
        for fields in products:
            try:
                async with transaction(self.db) as conn:
                    outcomes.append(await rows.upsert_product(conn, self.slug, fields))
            except Exception as e:
                outcomes.append(f"could not be saved ({type(e).__name__}); import it again")
        return outcomes

    async def _tell_change(self, item: CatalogRow, old: Product) -> None:
        fields = item.fields or {}
        if all(getattr(old, name) == fields.get(name, getattr(old, name))
               for name in CARD_FIELDS):
            return
        new = await rows.get_product(self.db, self.slug, old.sku)
        if new is None or self.on_change is None:
            return
        try:
            await self.on_change(old, new)
        except Exception as e:  # saved it is; the cards catch up on the next change
            log.exception("catalog_import.change_failed", shop=self.slug, sku=old.sku)
            item.warnings.append(f"saved, but its posted cards or price alerts were not "
                                 f"updated ({type(e).__name__})")


def _next_batch(items: Iterator[CatalogRow]) -> list[CatalogRow]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH_ROWS:
            break
    return batch


async def import_catalog(db: Database, principal: Principal, slug: str, stream: IO[bytes], *,
                         default_currency: str | None, fetch_image: ImageFetcher | None = None,
                         progress: Progress | None = None,
                         on_change: ProductChanged | None = None,
                         mercato_hosts: tuple[str, ...] = ()) -> ImportReport:
    """Import a catalog CSV into the shop: every row is imported, updated or refused with
    its reason; nothing is half-written. `progress(rows_done)` is called every 500 rows;
    `on_change(before, after)` for each existing product whose card would now look
    different (price, stock, title, image), after it was saved. Rows pass the link rules
    of posts: to Mercato's pages (`mercato_hosts`) and the shop's verified site only."""
    merchant = await require(db, principal, slug, Action.EDIT_CATALOG)
    # Reading and checking rows is CPU and file work: off the event loop, a batch at a time.
    catalog = await asyncio.to_thread(CatalogFile, stream, default_currency=default_currency,
                                      link_policy=policy_for(merchant, mercato_hosts))
    report = ImportReport(format=catalog.format, encoding=catalog.encoding)
    for warning in catalog.file_warnings:
        report.warn(1, "", warning)
    items, writer = iter(catalog), _Import(db, slug, report, fetch_image, on_change)

    async def tell(done: int) -> None:
        if progress is not None and inspect.isawaitable(result := progress(done)):
            await result

    try:
        while batch := await asyncio.to_thread(_next_batch, items):
            before = report.rows
            await writer.batch(batch)
            if report.rows // PROGRESS_EVERY > before // PROGRESS_EVERY:
                await tell(report.rows)
        if report.rows % PROGRESS_EVERY:
            await tell(report.rows)
    except BaseException:
        await _audit(db, principal, slug, report, "catalog_import_stopped")
        raise
    await _audit(db, principal, slug, report, "catalog_imported")
    log.info("catalog.imported", shop=slug, format=report.format, rows=report.rows,
             imported=report.imported, updated=report.updated, refused=report.refused_count)
    return report


async def _audit(db: Database, principal: Principal, slug: str, report: ImportReport,
                 action: str) -> None:
    """One entry with the counts; also when an import stopped half-way (whole rows only
    were written), so the shop can see what happened."""
    if action == "catalog_import_stopped" and not (report.imported or report.updated):
        return
    try:
        await store.audit(db, slug, principal.actor, action, format=report.format,
                          encoding=report.encoding, rows=report.rows, imported=report.imported,
                          updated=report.updated, refused=report.refused_count,
                          skipped=report.skipped, warnings=report.warning_count)
    except Exception:
        if action == "catalog_imported":
            raise
        log.exception("catalog_import.audit_failed", shop=slug)
