"""Product cards and catalog import, in-process (pure CPU, no network, no database).

- Card rendering: `render_card` (text and HTML templates, HTML sanitised, the product
  metadata) per second, versus a plain jinja2 render of a trivial template in the same run.
- Catalog import: rows per second that `CatalogFile` reads and checks from a generated
  Mercato CSV, versus `csv.reader` over the same file (the floor: parsing only).

Each side is timed several times, interleaved, and the best time kept.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import jinja2

from appservices.commerce.catalog.import_file import CatalogFile
from appservices.commerce.catalog.products import Product, product_page_url, render_card

ROUNDS = 5


def _product(n: int) -> Product:
    return Product(
        merchant_slug="demo", sku=f"SKU-{n:06d}", title=f"Linen shirt, blue, size {n % 7}",
        description="Washed linen, relaxed fit.\nMachine washable at 40 °C.",
        price="39.90", currency="EUR", original_price="49.90" if n % 3 == 0 else None,
        image_mxc="", image_info={}, url=f"https://shop.example/p/{n}", stock="in_stock",
        tags=["shirts", "linen", "summer"])


def _best(func: Any) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def catalog_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sku", "title", "description", "price", "currency", "original_price",
                     "url", "stock", "tags", "image_url"])
    for n in range(rows):
        writer.writerow([f"SKU-{n:06d}", f"Linen shirt, blue, size {n % 7}",
                         "Washed linen, relaxed fit.\nMachine washable at 40 °C.", "39.90",
                         "EUR", "49.90" if n % 3 == 0 else "", f"https://shop.example/p/{n}",
                         "in_stock", "shirts, linen, summer", ""])
    return out.getvalue().encode()


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    cards = 2000 if quick else 20000
    rows = 20000 if quick else 200000
    products = [_product(n) for n in range(cards)]
    pages = [product_page_url("https://mercato.example", p.merchant_slug, p.sku)
             for p in products]
    trivial = jinja2.Environment(autoescape=True).from_string(
        "<b>{{ p.title }}</b> {{ p.price }} {{ p.currency }}")

    def mercato_cards() -> None:
        for product, page in zip(products, pages, strict=True):
            render_card(product, shop_name="Demo shop", shop_mxid="@shop_demo:localhost",
                        verified=True, page_url=page)

    def plain_cards() -> None:
        for product in products:
            trivial.render(p=product)

    data = catalog_csv(rows)
    (workdir / "catalog.csv").write_bytes(data)  # for a look, if wanted

    def mercato_import() -> None:
        read = sum(1 for row in CatalogFile(io.BytesIO(data)) if row.fields)
        assert read == rows, read

    def plain_import() -> None:
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
        read = sum(1 for _ in csv.reader(text)) - 1
        assert read == rows, read

    mercato_cards()  # warm the template caches
    times: dict[str, list[float]] = {name: [] for name in ("cards", "plain_cards", "import",
                                                             "plain_import")}
    for _ in range(ROUNDS):
        times["cards"].append(_best(mercato_cards))
        times["plain_cards"].append(_best(plain_cards))
        times["import"].append(_best(mercato_import))
        times["plain_import"].append(_best(plain_import))
    cards_per_s = cards / min(times["cards"])
    plain_cards_per_s = cards / min(times["plain_cards"])
    rows_per_s = rows / min(times["import"])
    plain_rows_per_s = rows / min(times["plain_import"])
    return {
        "name": "cards and catalog import",
        "cards": cards, "rows": rows, "rounds": ROUNDS,
        "cards_per_s": round(cards_per_s), "plain_cards_per_s": round(plain_cards_per_s),
        "cards_ratio": round(cards_per_s / plain_cards_per_s, 4),
        "import_rows_per_s": round(rows_per_s), "csv_rows_per_s": round(plain_rows_per_s),
        "import_ratio": round(rows_per_s / plain_rows_per_s, 4),
    }
