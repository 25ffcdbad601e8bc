"""`make bench`: run the benchmarks, write bench/results/*.json, docs/benchmarks.md and plots.

Every benchmark that talks to a network runs on Synapse on SQLite (the embedded
default) and, with --postgres or in full mode, again on PostgreSQL (the single-process
profile with Synapse and Mercato's components on PostgreSQL, in databases of the run's
own that are dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench.storefront as storefront
from bench import (
    cards,
    circle,
    contacts,
    fanout,
    flash_sale,
    intake,
    orders,
    plots,
    roundtrip,
    storm,
)
from bench.common import DATABASES, machine
from mercato.logging import setup_logging

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "docs" / "img"
# name → (run, whether it runs against a network and so once per database)
BENCHMARKS: dict[str, tuple[Callable[..., dict[str, Any]], bool]] = {
    "intake": (intake.run, True), "fanout": (fanout.run, True),
    "roundtrip": (roundtrip.run, True), "contacts": (contacts.run, True),
    "storm": (storm.run, True), "storm-scale": (storm.run_scale, False),
    "cards": (cards.run, False),
    "orders": (orders.run, True), "circle": (circle.run, True),
    "storefront": (storefront.run, True),
    "flash": (flash_sale.run, True), "flash-scale": (flash_sale.run_scale, False),
}
ORDER = ["broadcast fan-out", "command round trip", "appservice intake", "contact import",
         "follow storm", "order burst", "flash sale", "storefront page", "circle fan-out",
         "cards and catalog import"]
ON = {"sqlite": "SQLite", "postgres": "PostgreSQL", "": "—"}


def _goals(goals: dict[str, bool]) -> str:
    return ", ".join(f"{k}: {'yes' if v else '**NO**'}" for k, v in goals.items()) or "—"


def rows_of(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, Mercato, reference, ratio, goals) lines of one result."""
    rows = []
    if r["name"] == "broadcast fan-out":
        for row in r["sizes"]:
            how = (f"all at once, {row['dm_in_flight']} in flight" if "dm_in_flight" in row
                   else "one after another")
            dm = f"{row['followers']:,} DMs, {how}: {row['dm_seconds']} s"
            if row.get("dm_measured_on", row["followers"]) < row["followers"]:
                dm += f" (measured on {row['dm_measured_on']:,}, scaled)"
            goal = "—"
            if row["followers"] >= 10_000:
                goal = f"≥ 100× faster: {'yes' if row['speedup'] >= 100 else '**NO**'}"
            rows.append((f"broadcast fan-out to {row['followers']:,} followers (until sampled "
                         "followers' /sync has it)",
                         f"one channel post: {row['channel_seconds']} s", dm,
                         f"{row['speedup']}× faster", goal))
        big, small = r["sizes"][-1]["followers"], r["sizes"][0]["followers"]
        rows.append((f"fan-out growth, time({big:,}) / time({small:,})",
                     f"{r['channel_time_growth']}", "", "",
                     f"≤ 5: {'yes' if r['channel_time_growth'] <= 5 else '**NO**'}"))
    elif r["name"] == "command round trip":
        echo = r["echo"]
        for word, row in r["commands"].items():
            rows.append((f"command round trip, `{word}` to the shop bot until the reply is in "
                         f"the sender's /sync ({row['samples']} samples)",
                         f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms",
                         f"plain message to another user until the receiver's /sync: p50 "
                         f"{echo['p50_ms']} ms, p95 {echo['p95_ms']} ms",
                         f"p50 {row['p50_ratio']}×, p95 {row['p95_ratio']}×",
                         _goals(row["goals"])))
        b = r["burst"]
        for loop, how in (("open_loop", "each user's next as soon as the previous send is "
                                        "accepted"),
                          ("closed_loop", "each user's next when the previous reply arrived")):
            row = b[loop]
            c, p = row["commands"], row["plain"]
            lost = (f"; **{row['commands_lost']} of {c['sent']} never answered**"
                    if row["commands_lost"] else "")
            rows.append((f"command burst: {b['users']} users send {b['commands']:,} "
                         f"`{b['command']}` commands, {how}",
                         f"{c['per_s']} answered/s ({c['arrived']} in {c['seconds']} s{lost})",
                         f"same users and pattern, plain messages to one user: {p['per_s']} "
                         f"delivered/s ({p['arrived']} in {p['seconds']} s)",
                         f"{row['ratio']}", "—"))
    elif r["name"] == "appservice intake":
        rows.append((f"appservice intake ({r['events']:,} events, transactions of 100, "
                     "inbox persisted)", f"{r['commerce_events_per_s']:,} events/s",
                     f"bare aiohttp JSON handler: {r['bare_events_per_s']:,} events/s",
                     f"{r['ratio']}", _goals(r["goals"])))
        if "persisted_bare_events_per_s" in r:
            rows.append(("appservice intake against the persisting floor (same transactions)",
                         f"{r['commerce_events_per_s']:,} events/s; all of them handled at "
                         f"{r['handled_events_per_s']:,} events/s",
                         "the bare handler also writing each transaction to SQLite in one "
                         "durable commit (WAL, synchronous=FULL) before answering: "
                         f"{r['persisted_bare_events_per_s']:,} events/s",
                         f"{r['ratio_to_persisted']}", "—"))
        if "commerce_nothing_to_handle_events_per_s" in r:
            quiet = r["commerce_nothing_to_handle_events_per_s"]
            rows.append(("appservice intake with nothing new to handle (the same events "
                         "again under new txnIds: stored, deduplicated, committed)",
                         f"{quiet:,} events/s", "the bare JSON handler; the persisting "
                         f"bare handler: {r['persisted_bare_events_per_s']:,} events/s",
                         f"{round(quiet / r['bare_events_per_s'], 3)} of the bare handler; "
                         f"{round(quiet / r['persisted_bare_events_per_s'], 2)} of the "
                         "persisting one", "—"))
    elif r["name"] == "contact import":
        rows.append((f"contact import: {r['contacts']:,}-contact vCard ({r['identifiers']:,} "
                     f"numbers and emails) matched against {r['opted_in_users']:,} opted-in "
                     f"users with `mercato contacts import`, end to end ({r['matched']:,} "
                     "matched)",
                     f"{r['import_seconds']} s, {r['import_contacts_per_s']:,} contacts/s; "
                     f"peak memory {r['peak_rss_mb']} MB (VmHWM of the process)",
                     f"bare loop parsing, normalising and hashing the file in-process: "
                     f"{r['bare_seconds']} s, {r['bare_contacts_per_s']:,} contacts/s",
                     f"{r['ratio']}", _goals(r["goals"])))
        lk = r["lookup"]
        rows.append((f"identity-service lookup, {lk['hashes_per_request']:,} hashes per "
                     f"request ({lk['requests']} requests, half of them opted in)",
                     f"{lk['hashes_per_s']:,} hashes/s", "bare dictionary lookup of the same "
                     f"hashes: {lk['dict_hashes_per_s']:,} hashes/s", f"{lk['ratio']}", "—"))
    elif r["name"] == "follow storm":
        idle, during = r["post_latency_idle"], r["post_latency_storm"]
        where = " (scale profile)" if r.get("profile") == "scale" else ""
        rows.append((f"follow storm{where}: {r['followers']:,} joins to one channel, "
                     f"{r['concurrency']} at a time",
                     f"{r['joins_per_s']} joins/s ({r['join_seconds']} s)",
                     f"as many plain message sends, as many at a time: {r['sends_per_s']} "
                     f"sends/s", f"{r['ratio']}", "—"))
        rows.append(("channel post latency during the storm (campaign scheduled until sampled "
                     "followers' /sync has it)",
                     f"during: p50 {during.get('p50_ms')} ms, max {during.get('max_ms')} ms "
                     f"({during['posts']} posts)",
                     f"idle: p50 {idle['p50_ms']} ms, max {idle['max_ms']} ms "
                     f"({idle['posts']} posts)", f"p50 {r.get('latency_ratio_p50')}×", "—"))
    elif r["name"] == "order burst":
        rows += orders.rows(r)
    elif r["name"] == "flash sale":
        rows += flash_sale.rows(r)
    elif r["name"] == "storefront page":
        rows += storefront.rows(r)
    elif r["name"] == "circle fan-out":
        rows += circle.rows(r)
    elif r["name"] == "cards and catalog import":
        rows.append((f"product card rendering (`render_card`, {r['cards']:,} cards, "
                     "in-process)", f"{r['cards_per_s']:,} cards/s",
                     f"trivial jinja2 template: {r['plain_cards_per_s']:,} renders/s",
                     f"{r['cards_ratio']}", "—"))
        rows.append((f"catalog CSV read and checked (`CatalogFile`, {r['rows']:,} rows, no "
                     "database)", f"{r['import_rows_per_s']:,} rows/s",
                     f"`csv.reader` on the same file: {r['csv_rows_per_s']:,} rows/s",
                     f"{r['import_ratio']}", "—"))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def write_markdown(results: list[dict[str, Any]], images: list[Path]) -> Path:
    results = sorted(results, key=lambda r: (ORDER.index(r["name"]) if r["name"] in ORDER
                                             else 99, r.get("database", "") != "sqlite",
                                             r.get("mode", "")))
    latest = max((r for r in results if "machine" in r), key=lambda r: r["machine"]["date"],
                 default=None)
    lines = [
        "# Benchmarks",
        "",
        "Every figure is a ratio against a reference measured in the same run, on the same",
        "machine and the same Synapse, because the machines are shared and noisy; absolute",
        "numbers are given for context only. Re-run with `make bench` (quick mode, SQLite,",
        "about 10 minutes; `BENCH_ARGS=--postgres` adds the PostgreSQL runs;",
        "`BENCH_ARGS=--full` is the full mode on both databases, hours on a 2-core machine",
        "since the 10,000-follower runs register 10,000 accounts each;",
        "`BENCH_ARGS='--only fanout --database sqlite'` picks). Results are kept in",
        "`bench/results/*.json`, one per benchmark, database and mode; the table shows the",
        "latest of each, and its last column says which mode and run it comes from.",
        "",
        "**Synapse on PostgreSQL** means the single-process profile (one Synapse process, no",
        "workers) with Synapse, the commerce appservice and the contacts bridge each on a",
        "PostgreSQL database of the run's own on the local server (dropped afterwards);",
        "**SQLite** is the embedded default of `make run`.",
        "",
    ]
    if latest:
        m = latest["machine"]
        lines += [
            "## Machine",
            "",
            f"- CPU: {m['cpu']}, {m['cores']} cores ({m['arch']}), RAM {m['ram_gb']} GB, "
            f"Python {m['python']}",
            "- Shared with other engineers' test runs while measuring: each row gives the "
            "1-minute load average when its benchmark started (2 cores: a load above 2 means "
            "work was waiting for a CPU).",
            f"- Latest run: {m['date']}.",
            "",
        ]
    lines += [
        "## Results",
        "",
        "| benchmark | Synapse on | Mercato | reference | ratio | goals met | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.get("machine", {})
        run = f"{r.get('mode', '?')}, {m.get('date', '?')}, load {m.get('load_average', ['?'])[0]}"
        for bench, ours, ref, ratio, goals in rows_of(r):
            lines.append("| " + " | ".join(_cell(c) for c in (
                bench, ON[r.get("database", "")], ours, ref, ratio, goals, run)) + " |")
    lines += ["", "## Plots", ""]
    for image in images:
        lines += [f"![{image.stem}](img/{image.name})", ""]
    fanouts = [r for r in results if r["name"] == "broadcast fan-out"]
    if fanouts:
        lines += ["## Where a channel post's time goes", "",
                  "The same post sent two ways to the same N followers: the campaign "
                  "(API → outbox → the appservice's send), and the same text sent straight to "
                  "Synapse as the shop, split into the send request (creating the event, "
                  "evaluating every member's push rules, persisting) and its delivery to the "
                  "sampled clients' /sync.", "",
                  "| Synapse on | mode | followers | " + " | ".join(
                      fanouts[0]["sizes"][0]["breakdown_ms"]) + " |",
                  "|---|---|---|" + "---|" * len(fanouts[0]["sizes"][0]["breakdown_ms"])]
        for r in fanouts:
            for row in r["sizes"]:
                if "breakdown_ms" in row:
                    lines.append(f"| {ON[r.get('database', '')]} | {r.get('mode', '?')} | "
                                 f"{row['followers']:,} | "
                                 + " | ".join(f"{v} ms" for v in row["breakdown_ms"].values())
                                 + " |")
        lines.append("")
    notes = ROOT / "bench" / "notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    path = ROOT / "docs" / "benchmarks.md"
    path.write_text("\n".join(lines))
    return path


def result_file(name: str, database: str | None, mode: str) -> Path:
    """bench/results/NAME[-DATABASE][-full].json: a quick run does not replace a full one."""
    parts = [name, *([database] if database else []), *(["full"] if mode == "full" else [])]
    return RESULTS / f"{'-'.join(parts)}.json"


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--full", action="store_true",
                        help="larger runs (slower), on SQLite and PostgreSQL")
    parser.add_argument("--postgres", action="store_true",
                        help="run the network benchmarks on PostgreSQL too")
    parser.add_argument("--database", choices=DATABASES, action="append",
                        help="run the network benchmarks on this database only (repeatable)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--page-only", action="store_true",
                        help="redraw the page and plots from bench/results without running")
    args = parser.parse_args()
    setup_logging("WARNING")
    mode = "full" if args.full else "quick"
    databases = args.database or (list(DATABASES) if args.full or args.postgres
                                  else ["sqlite"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in [] if args.page_only else (args.only or sorted(BENCHMARKS)):
        run, networked = BENCHMARKS[name]
        for database in databases if networked else [None]:
            started = machine()
            with tempfile.TemporaryDirectory(prefix=f"mercato-bench-{name}-") as workdir:
                options = {"database": database} if database else {}
                result = run(Path(workdir), quick=not args.full, **options)
            result["mode"] = mode
            result["machine"] = started
            result_file(name, database, mode).write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps({k: v for k, v in result.items() if k != "samples_ms"}, indent=2))
    latest = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]
    latest = [r for r in latest if "name" in r]
    images = plots.draw_all(latest, IMAGES)
    print(f"wrote {write_markdown(latest, images)} and {', '.join(str(p) for p in images)}")


if __name__ == "__main__":
    main()
