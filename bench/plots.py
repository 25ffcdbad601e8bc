"""The benchmark page's plots (PNG, matplotlib), drawn from bench/results/*.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"sqlite": "#1f77b4", "postgres": "#d62728"}
FULL_COLOURS = {"sqlite": "#08306b", "postgres": "#67000d"}  # darker: the full mode
LABEL = {"sqlite": "Synapse on SQLite", "postgres": "Synapse on PostgreSQL"}
ON_SHORT = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _by_name(results: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in results if r["name"] == name]


def fanout(results: list[dict[str, Any]], path: Path) -> Path | None:
    runs = _by_name(results, "broadcast fan-out")
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for run in runs:
        db = run.get("database", "sqlite")
        full = run.get("mode") == "full"
        how = f"{LABEL[db]}, {run.get('mode', 'quick')}"
        colour = FULL_COLOURS[db] if full else COLOURS[db]
        sizes = [row["followers"] for row in run["sizes"]]
        ax.plot(sizes, [row["channel_seconds"] for row in run["sizes"]],
                "D-" if full else "o-", color=colour, linewidth=2.2 if full else 1.4,
                label=f"one channel post ({how})")
        ax.plot(sizes, [row["dm_seconds"] for row in run["sizes"]], "s--", color=colour,
                alpha=0.6, label=f"N direct messages ({how})")
        for row in run["sizes"]:
            if row.get("dm_measured_on", row["followers"]) < row["followers"]:
                ax.annotate(f"scaled from {row['dm_measured_on']:,}",
                            (row["followers"], row["dm_seconds"]), textcoords="offset points",
                            xytext=(-10, -4), ha="right", va="top", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("followers N")
    ax.set_ylabel("seconds until sampled followers' /sync has it")
    ax.set_title("Broadcast fan-out: one channel post vs N DMs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def roundtrip(results: list[dict[str, Any]], path: Path) -> Path | None:
    runs = [r for r in _by_name(results, "command round trip") if "samples_ms" in r]
    if not runs:
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.5), dpi=110,
                             squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        samples = run["samples_ms"]
        kinds = [("echo", "plain message (reference)"), ("ping", "`ping` to the shop bot"),
                 ("shops", "`shops` to the shop bot")]
        data = [samples[k] for k, _ in kinds]
        ax.boxplot(data, whis=(5, 95), showfliers=True)
        ax.set_xticks(range(1, len(kinds) + 1), [label for _, label in kinds], fontsize=8)
        ax.set_ylabel("ms until the reply is in the sender's /sync")
        ax.set_title(f"Command round trip, {LABEL[run.get('database', 'sqlite')]}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.suptitle("Boxes: p25–p75 with the median; whiskers: p5–p95", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def ratios(results: list[dict[str, Any]], path: Path) -> Path | None:
    bars: list[tuple[str, float, float | None, str]] = []  # label, ratio, goal, database
    for r in results:
        db = r.get("database", "")
        full = "\n(full)" if r.get("mode") == "full" else ""
        if r["name"] == "appservice intake":
            bars.append(("appservice intake\nvs bare handler", r["ratio"], 0.30, db))
            if "ratio_to_persisted" in r:
                bars.append(("appservice intake\nvs persisting handler",
                             r["ratio_to_persisted"], None, db))
        elif r["name"] == "contact import":
            bars.append((f"contact import\nvs bare loop{full}", r["ratio"], 0.50, db))
        elif r["name"] == "follow storm":
            scale = " (scale)" if r.get("profile") == "scale" else ""
            bars.append((f"joins/s\nvs sends/s{scale}{full}", r["ratio"], None, db))
        elif r["name"] == "command round trip":
            for loop in ("open_loop", "closed_loop"):
                bars.append((f"command burst\n({loop.replace('_', ' ')})",
                             r["burst"][loop]["ratio"], None, db))
        elif r["name"] == "cards and catalog import":
            bars.append(("catalog CSV\nvs csv.reader", r["import_ratio"], None, ""))
            bars.append(("card rendering\nvs trivial template", r["cards_ratio"], None, ""))
    if not bars:
        return None
    bars.sort(key=lambda bar: (bar[0], bar[3]))
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(bars) + 1.4), dpi=110)
    for n, (_, ratio, goal, db) in enumerate(bars):
        ax.barh(n, ratio, color=COLOURS.get(db, "#7f7f7f"), height=0.7)
        ax.text(ratio, n, f" {ratio:.2f}", va="center", fontsize=8)
        if goal is not None:
            ax.plot([goal, goal], [n - 0.45, n + 0.45], color="black", linewidth=2.5)
    ax.set_yticks(range(len(bars)), [label.replace("\n", " ") + (f" [{db}]" if db else "")
                                     for label, _, _, db in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Mercato / reference (higher is better)")
    ax.set_title("Throughput ratios against the same-run reference\n(blue: Synapse on "
                 "SQLite, red: on PostgreSQL, grey: no server; black bar: the goal)",
                 fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlim(0, max(1.0, max(bar[1] for bar in bars) * 1.15))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def storm(results: list[dict[str, Any]], path: Path) -> Path | None:
    runs = sorted(_by_name(results, "follow storm"),
                  key=lambda r: (r["followers"], r.get("database", "") != "sqlite",
                                 r.get("profile") == "scale"))
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    data, labels, colours = [], [], []
    for run in runs:
        db = run.get("database", "sqlite")
        for key, when in (("post_latency_idle", "idle"), ("post_latency_storm", "storm")):
            data.append(run[key].get("all_ms", []))
            where = "scale, PG" if run.get("profile") == "scale" else ON_SHORT[db]
            labels.append(f"{when}\n{where}\n{run['followers']:,} joins")
            colours.append("#2ca02c" if run.get("profile") == "scale" else COLOURS[db])
    boxes = ax.boxplot(data, whis=(5, 95), patch_artist=True)
    for box, colour in zip(boxes["boxes"], colours, strict=True):
        box.set_facecolor(colour)
        box.set_alpha(0.35)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms from schedule call until sampled followers' /sync (log)")
    ax.set_title("Channel post latency: idle, and while N people join the channel "
                 "(boxes p25–p75, whiskers p5–p95)", fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_all(results: list[dict[str, Any]], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    drawn = [fanout(results, directory / "bench-fanout.png"),
             roundtrip(results, directory / "bench-roundtrip.png"),
             ratios(results, directory / "bench-ratios.png"),
             storm(results, directory / "bench-storm.png")]
    return [p for p in drawn if p is not None]
