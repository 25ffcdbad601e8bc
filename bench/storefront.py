"""Storefront page: a 1,000-product shop's page against the products JSON route, same run.

Set-up (not timed): one approved, verified shop with 1,000 products (titles, prices, every
tenth on sale, counted stock on some, one of five tags each).

Measured, one request at a time over loopback, the two kinds interleaved so both see the
same machine: the time from sending the request to reading the whole answer of
- `GET /s/{slug}` (the first page, 48 products, tags and count: the HTML a buyer gets),
  and the same page searched (`?q=`), filtered by a tag and deep in the catalog (`?page=15`);
- the reference, `GET /api/v1/shops/{slug}/products?limit=48` (the same 48 products as
  JSON, no template).
Goal: the storefront page's p95 is at most twice the JSON route's.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import bench_network, register

PRODUCTS = 1000
TAGS = ("tea", "mugs", "kitchen", "gifts", "sale")
GOAL_RATIO = 2.0
PAGES = {"first page": "", "search": "?q=oolong", "tag": "?tag=mugs", "page 15": "?page=15"}


def _percentiles(samples: list[float]) -> dict[str, Any]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 2), "p95_ms": round(cuts[94] * 1000, 2),
            "samples": len(samples)}


def _product(n: int) -> dict[str, Any]:
    kind = ("Oolong", "Jasmine", "Sencha", "Mug", "Teapot")[n % 5]
    product: dict[str, Any] = {
        "sku": f"item-{n:04d}", "title": f"{kind} no. {n}", "currency": "EUR",
        "price": f"{5 + n % 40}.50", "description": f"{kind}, item {n} of the catalog.",
        "tags": [TAGS[n % len(TAGS)]]}
    if n % 10 == 0:
        product["original_price"] = f"{9 + n % 40}.00"
    if n % 7 == 0:
        product["quantity"] = n % 6
    return product


async def _open_shop(http: aiohttp.ClientSession, base: str, network: Any) -> str:
    operator = {"Authorization": f"Bearer {network.config.commerce.operator_token}"}
    slug = f"front{int(time.time()) % 100000}"
    await register(http, network.hs_url, network.config.synapse.registration_shared_secret,
                   f"{slug}owner")
    owner = f"@{slug}owner:{network.config.server_name}"

    async def must(method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        async with http.request(method, f"{base}/api/v1{path}", json=body,
                                headers=headers) as resp:
            answer = await resp.json(content_type=None)
            if resp.status not in (200, 201):
                raise RuntimeError(f"{method} {path}: {resp.status} {answer}")
            return answer

    await must("POST", "/shops", {"slug": slug, "name": "Front Tea Co.",
                                  "website": f"https://{slug}.example", "owner": owner,
                                  "description": "A shop of a thousand teas."}, operator)
    await must("POST", f"/shops/{slug}/approve", None, operator)
    await must("POST", f"/shops/{slug}/verify", None, operator)
    key = (await must("POST", f"/shops/{slug}/keys", {"label": "bench", "role": "owner"},
                      operator))["key"]
    staff = {"Authorization": f"Bearer {key}"}
    queue = list(range(PRODUCTS))

    async def worker() -> None:
        while queue:
            await must("POST", f"/shops/{slug}/products", _product(queue.pop()), staff)
    await asyncio.gather(*(worker() for _ in range(8)))
    return slug


async def _timed(http: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with http.get(url) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {url}: {resp.status}")
    return time.perf_counter() - started


async def _run(network: Any, rounds: int) -> dict[str, Any]:
    base = network.commerce_url
    async with aiohttp.ClientSession() as http:
        slug = await _open_shop(http, base, network)
        json_url = f"{base}/api/v1/shops/{slug}/products?limit=48"
        pages = {name: f"{base}/s/{slug}{query}" for name, query in PAGES.items()}
        for _ in range(20):  # warm up: templates compiled, connections open
            await _timed(http, json_url)
            for url in pages.values():
                await _timed(http, url)
        samples: dict[str, list[float]] = {"json": [], **{name: [] for name in pages}}
        for _ in range(rounds):
            samples["json"].append(await _timed(http, json_url))
            for name, url in pages.items():
                samples[name].append(await _timed(http, url))
    reference = _percentiles(samples["json"])
    result: dict[str, Any] = {"name": "storefront page", "products": PRODUCTS,
                              "per_page": 48, "json": reference, "pages": {}}
    for name in pages:
        row = _percentiles(samples[name])
        row["p95_ratio"] = round(row["p95_ms"] / reference["p95_ms"], 2)
        result["pages"][name] = row
    result["goals"] = {f"storefront p95 <= {GOAL_RATIO:g}x JSON p95":
                       result["pages"]["first page"]["p95_ratio"] <= GOAL_RATIO}
    return result


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    with bench_network(workdir, database) as network:
        result = asyncio.run(_run(network, 200 if quick else 1000))
    result["database"] = database
    return result


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The benchmark page's lines for one result (bench/__main__.py)."""
    ref = r["json"]
    reference = (f"`GET /api/v1/shops/{{slug}}/products?limit=48`: p50 {ref['p50_ms']} ms, "
                 f"p95 {ref['p95_ms']} ms")
    lines = []
    for name, row in r["pages"].items():
        goal = "—"
        if name == "first page":
            goal = ", ".join(f"{k}: {'yes' if v else '**NO**'}" for k, v in r["goals"].items())
        lines.append((f"storefront page of a {r['products']:,}-product shop ({name}, "
                      f"{r['per_page']} products, HTML; {row['samples']} requests one at a "
                      "time)", f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms", reference,
                      f"p95 {row['p95_ratio']}×", goal))
    return lines
