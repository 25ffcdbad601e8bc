"""`make bench`: run the benchmarks, write bench/results/*.json and docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from bench import cards, fanout, intake, roundtrip

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = {"intake": intake.run, "fanout": fanout.run, "roundtrip": roundtrip.run,
              "cards": cards.run}


def write_markdown(results: list[dict], mode: str) -> Path:
    lines = [
        "# Benchmarks",
        "",
        "Every figure is a ratio against a reference measured in the same run, because the",
        "machines are shared and noisy; absolute numbers are given for context only.",
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {mode} mode, "
        f"{platform.machine()}, Python {platform.python_version()}. Re-run with `make bench` "
        "(`BENCH_ARGS=--full` for the full mode).",
        "",
        "| benchmark | Mercato | reference | ratio | goals met |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r["name"] == "appservice intake":
            goals = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in r["goals"].items())
            lines.append(f"| appservice intake ({r['events']} events, transactions of 100, "
                         f"inbox persisted) | {r['commerce_events_per_s']} events/s | bare "
                         f"aiohttp JSON handler: {r['bare_events_per_s']} events/s | "
                         f"{r['ratio']} | {goals} |")
        if r["name"] == "broadcast fan-out":
            for row in r["sizes"]:
                lines.append(
                    f"| broadcast fan-out to {row['followers']} followers (until sampled "
                    f"followers' /sync has it) | one channel post: {row['channel_seconds']} s "
                    f"| {row['followers']} DMs, SMS-style: {row['dm_seconds']} s | "
                    f"{row['speedup']}× faster | — |")
            lines.append(f"| fan-out growth | time(largest) / time(smallest) = "
                         f"{r['channel_time_growth']} | | | goal ≤ 5: "
                         f"{'yes' if r['channel_time_growth'] <= 5 else 'NO'} |")
        if r["name"] == "command round trip":
            echo = r["echo"]
            for word, row in r["commands"].items():
                goals = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in row["goals"].items())
                lines.append(
                    f"| command round trip, `{word}` to the shop bot until the reply is in the "
                    f"sender's /sync ({row['samples']} samples) | p50 {row['p50_ms']} ms, "
                    f"p95 {row['p95_ms']} ms | plain message to another user until the "
                    f"receiver's /sync: p50 {echo['p50_ms']} ms, p95 {echo['p95_ms']} ms | "
                    f"p50 {row['p50_ratio']}×, p95 {row['p95_ratio']}× | {goals} |")
            b = r["burst"]
            for loop, how in (("open_loop", "each user's next as soon as the previous send "
                                            "is accepted"),
                              ("closed_loop", "each user's next when the previous reply "
                                              "arrived")):
                row = b[loop]
                c, p = row["commands"], row["plain"]
                lost = (f"; **{row['commands_lost']} of {c['sent']} commands never answered**"
                        if row["commands_lost"] else "")
                lines.append(
                    f"| command burst: {b['users']} users send {b['commands']} "
                    f"`{b['command']}` commands, {how} | {c['per_s']} commands answered/s "
                    f"({c['arrived']} in {c['seconds']} s{lost}) | same users, same "
                    f"pattern, plain messages to one user: {p['per_s']} delivered/s "
                    f"({p['arrived']} in {p['seconds']} s) | {row['ratio']} | — |")
        if r["name"] == "cards and catalog import":
            lines.append(
                f"| product card rendering (`render_card`, {r['cards']} cards, in-process) | "
                f"{r['cards_per_s']} cards/s | trivial jinja2 template: "
                f"{r['plain_cards_per_s']} renders/s | {r['cards_ratio']} | — |")
            lines.append(
                f"| catalog CSV read and checked (`CatalogFile`, {r['rows']} rows, no "
                f"database) | {r['import_rows_per_s']} rows/s | `csv.reader` on the same "
                f"file: {r['csv_rows_per_s']} rows/s | {r['import_ratio']} | — |")
    path = ROOT / "docs" / "benchmarks.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--full", action="store_true", help="larger runs (slower)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    results = []
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or sorted(BENCHMARKS):
        with tempfile.TemporaryDirectory(prefix=f"mercato-bench-{name}-") as workdir:
            result = BENCHMARKS[name](Path(workdir), quick=not args.full)
        result["mode"] = mode
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        results.append(result)
    # The table shows the latest result of every benchmark, not only those run now.
    latest = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    print(f"wrote {write_markdown(latest, mode)}")


if __name__ == "__main__":
    main()
