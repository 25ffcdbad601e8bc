"""`mercato catalog`: a shop's product catalog, imported from CSV through the commerce API."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from mercato.console import output_console

MAX_IMPORT_BYTES = 50 * 1024 * 1024  # what the API accepts
CHUNK_BYTES = 256 * 1024
FORMATS = {"shopify": "Shopify export", "woocommerce": "WooCommerce export",
           "mercato": "Mercato CSV"}

console = Console(stderr=True)


@click.group(name="catalog")
def catalog() -> None:
    """A shop's product catalog."""


@catalog.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--shop", "slug", required=True, help="The shop's slug.")
@click.option("--currency", default=None,
              help="ISO 4217 code of the prices, such as EUR; needed for Shopify and "
                   "WooCommerce exports, which carry none.")
@click.option("--key", envvar="MERCATO_API_KEY", default=None,
              help="A shop API key (mk_…). Without it, the operator token from the "
                   "configuration is used.")
@click.option("--api-url", envvar="MERCATO_API_URL", default=None,
              help="The commerce API, such as https://shop.example/api/v1. Default: this "
                   "network's, from the configuration.")
@click.option("--no-images", is_flag=True, help="Do not fetch the image URLs in the file.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.pass_obj
def import_catalog(obj: Any, file: Path, slug: str, currency: str | None, key: str | None,
                   api_url: str | None, no_images: bool, as_json: bool) -> None:
    """Import FILE (a Shopify or WooCommerce product export, or Mercato's CSV) into a shop.

    Every row is imported, updated or refused with its reason; a refused row changes
    nothing. Exits with status 1 when any row was refused, so a script notices.
    """
    size = file.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise click.ClickException(f"{file} is over {MAX_IMPORT_BYTES // 2**20} MiB; split it "
                                   "and import the parts one after another.")
    if api_url is None or key is None:
        if obj is None or not hasattr(obj, "config"):
            raise click.ClickException("Give --api-url and --key, or run it as `mercato "
                                       "catalog import` next to mercato.yaml.")
        config = obj.config()
        if api_url is None:
            from mercato.config import reachable_host
            api_url = (f"http://{reachable_host(config.commerce.bind_address)}:"
                       f"{config.commerce.port}/api/v1")
        key = key or config.commerce.operator_token
    query = {k: v for k, v in (("currency", currency), ("images", "skip" if no_images else None))
             if v}
    url = f"{api_url.rstrip('/')}/shops/{quote(slug, safe='')}/products/import"
    if query:
        url += "?" + urlencode(query)
    status, report = _upload_with_progress(url, key, file, size)
    if status >= 400:
        raise click.ClickException(f"{report.get('error')} ({report.get('errcode')})")
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_report(report)
    if report.get("refused_count"):
        sys.exit(1)


def _upload_with_progress(url: str, token: str, file: Path, size: int
                          ) -> tuple[int, dict[str, Any]]:
    import aiohttp

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"sending {file.name}", total=size)

        def sent(n: int) -> None:
            progress.advance(task, n)
            if progress.tasks[task].completed >= size:
                progress.update(task, description="the server is checking each row")

        async def call() -> tuple[int, dict[str, Any]]:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv",
                       "Content-Length": str(size)}
            # No total timeout: 10,000 rows with images take a while on the server.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=15)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                    url, data=_chunks(file, sent), headers=headers) as resp:
                try:
                    return resp.status, await resp.json(content_type=None)
                except (json.JSONDecodeError, aiohttp.ContentTypeError):
                    return resp.status, {"error": f"HTTP {resp.status} from {url}",
                                         "errcode": "not JSON"}

        try:
            return asyncio.run(call())
        except aiohttp.ClientError as e:
            raise click.ClickException(f"The commerce API does not answer at {url} ({e}); "
                                       "is the network running (`make run`)?") from None


async def _chunks(file: Path, sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    with file.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk
            sent(len(chunk))


def _print_report(report: dict[str, Any]) -> None:
    out = output_console()
    kind = FORMATS.get(report["format"], report["format"])
    out.print(f"{kind} ({report['encoding']}): {report['rows']} rows — "
              f"{report['imported']} imported, {report['updated']} updated, "
              f"{report['refused_count']} refused, {report['skipped']} skipped, "
              f"{report['warning_count']} warnings", markup=False, highlight=False)
    if report["refused"]:
        table = Table("row", "SKU", "refused because", title="Refused rows")
        for item in report["refused"]:
            table.add_row(str(item["row"]), Text(item["sku"]), Text(item["reason"]))
        out.print(table)
    if report["warnings"]:
        table = Table("row", "SKU", "warning", title="Warnings")
        for item in report["warnings"]:
            table.add_row(str(item["row"]), Text(item["sku"]), Text(item["warning"]))
        out.print(table)
    if not report.get("listed_all", True):
        out.print("Only the first 1000 refusals and warnings are listed; fix those and "
                  "import again.")
