"""Where a benchmark's time goes: `python -m bench.profile intake|contacts|orders|storm
[--database D]`.

- intake: py-spy samples the commerce appservice process (subprocesses included)
  while the intake benchmark's transactions are pushed to it.
- orders: py-spy samples the commerce appservice while the order burst runs (its
  buyers, shop and claims set up first, as the benchmark does).
- storm: py-spy samples Synapse (single profile) while the follow storm's people join
  the channel (`--followers`, 2,000 by default), posts going out meanwhile.
- contacts: pyinstrument runs `mercato contacts import` on the benchmark's vCard, and
  py-spy samples the contacts bridge meanwhile.

Writes bench/results/profile-*.txt: pyinstrument's call tree of the CLI, and for the
sampled services the share of samples under each frame that matters (from py-spy's
collapsed stacks); docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import contacts, intake, orders, storm
from bench.common import bench_network

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
PY_SPY = Path(sys.executable).with_name("py-spy")


def _pid_where(matches: Callable[[list[str]], bool], what: str) -> int:
    """The one running process whose command line `matches`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if matches(argv):
            return int(proc.name)
    raise RuntimeError(f"no running {what}")


def component_pid(config_path: Path, component: str) -> int:
    """The process of `mercato --config CONFIG … run <component>` (this network's only)."""
    return _pid_where(lambda argv: str(config_path) in argv and argv[-2:] == ["run", component],
                      f"{component} process of {config_path}")


def synapse_pid(config_path: Path) -> int:
    """The single profile's Synapse process of this network."""
    homeserver = str(config_path.parent / "data" / "synapse" / "homeserver.yaml")
    return _pid_where(lambda argv: "synapse.app.homeserver" in argv and homeserver in argv,
                      f"Synapse of {config_path}")


def spy(pid: int, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "250", "--nonblocking", "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


OURS = ("mercato/", "appservices/", "bridges/", "mautrix/", "aiosqlite", "asyncpg",
        "aiohttp/web", "json/")


def summarise(raw: Path, title: str, top: int = 40, ours: tuple[str, ...] = OURS,
              what: str = "Mercato, mautrix, the database drivers, aiohttp") -> str:
    """py-spy's collapsed stacks as text: the share of samples under each frame of ours
    (inclusive) and the frames samples were in (self), largest first."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf[frames[-1]] += n
        for frame in set(frames):
            if any(part in frame for part in ours):
                inclusive[frame] += n
    lines = [title, f"{total} samples (py-spy, 250 Hz, all threads)", "",
             f"inclusive share, frames of {what}:"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "self share (where the samples were):"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in leaf.most_common(15)]
    return "\n".join(lines) + "\n"


def profile_intake(database: str) -> None:
    bodies = [intake.synthetic_transaction(i) for i in range(300)]
    with tempfile.TemporaryDirectory(prefix="mercato-profile-") as workdir, \
            bench_network(Path(workdir), database) as network:
        asyncio.run(intake._push(network.commerce_url, network.config.commerce.hs_token,
                                 bodies[:20]))  # warm up
        raw = Path(workdir) / "intake.raw"
        recorder = spy(component_pid(network.config_path, "commerce"), raw)
        time.sleep(1.0)
        seconds = asyncio.run(intake._push(network.commerce_url,
                                           network.config.commerce.hs_token, bodies[20:]))
        time.sleep(3.0)  # the inbox worker handles what was stored
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        recorder.wait()
        rate = len(bodies[20:]) * intake.EVENTS_PER_TXN / seconds
        text = summarise(raw, f"commerce appservice, {len(bodies) - 20} transactions of 100 "
                              f"events pushed and handled, Synapse on {database}; intake "
                              f"{rate:.0f} events/s while sampled")
    out = OUT / f"profile-intake-{database}.txt"
    out.write_text(text)
    print(text)


class LateSpy:
    """py-spy on a process from the moment a benchmark's hook calls `start` (when the part
    worth sampling begins) until `stop`."""

    def __init__(self, pid_of: Callable[[], int], raw: Path) -> None:
        self.pid_of, self.raw = pid_of, raw
        self.recorder: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.recorder = spy(self.pid_of(), self.raw)

    def stop(self) -> None:
        if self.recorder is not None:
            self.recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            self.recorder.wait()


def profile_orders(database: str, buyers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mercato-profile-") as workdir, \
            bench_network(Path(workdir), database) as network:
        raw = Path(workdir) / "orders.raw"
        sampler = LateSpy(lambda: component_pid(network.config_path, "commerce"), raw)
        result, _ = asyncio.run(orders._run(network, buyers, before_burst=sampler.start))
        sampler.stop()
        text = summarise(raw, f"commerce appservice from the order burst on (the burst, the "
                              f"cards, the second claims), {buyers} buyers, Synapse and "
                              f"commerce on {database}; {result['orders_per_s']} orders/s")
    out = OUT / f"profile-orders-{database}.txt"
    out.write_text(text)
    print(text)


def profile_storm(database: str, followers: int) -> None:
    """Synapse (single profile) while N people join one channel: where a join's time goes."""
    with tempfile.TemporaryDirectory(prefix="mercato-profile-") as workdir, \
            bench_network(Path(workdir), database) as network:
        raw = Path(workdir) / "storm.raw"
        sampler = LateSpy(lambda: synapse_pid(network.config_path), raw)
        result = asyncio.run(storm._storm(network, followers, idle_posts=3,
                                          before_joins=sampler.start))
        sampler.stop()
        text = summarise(raw, f"Synapse (single profile, {database}) during a follow storm of "
                              f"{followers:,} joins, {result['concurrency']} at a time, posts "
                              f"going out meanwhile; {result['joins_per_s']} joins/s",
                         top=60, ours=("synapse/",), what="Synapse")
    out = OUT / f"profile-storm-{database}.txt"
    out.write_text(text)
    print(text)


def profile_contacts(database: str, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mercato-profile-") as workdir, \
            bench_network(Path(workdir), database, contacts={
                "max_contacts_per_import": 10 * count, "max_identifiers_per_import": 10 * count,
                "lookups_per_user_per_day": 10**9, "lookups_per_ip_per_day": 10**9}) as network:
        phones = contacts._numbers(2 * count, seed=10)
        vcard = Path(workdir) / "contacts.vcf"
        contacts.write_vcard(vcard, phones[:count])
        asyncio.run(contacts.seed(network, [(f"@optin{k}:localhost", phones[k * 2 % len(phones)])
                                            for k in range(count)]))
        raw = Path(workdir) / "bridge.raw"
        recorder = spy(component_pid(network.config_path, "contacts"), raw)
        cli_out = OUT / f"profile-contacts-cli-{database}.txt"
        subprocess.run([sys.executable, "-m", "pyinstrument", "--outfile", str(cli_out),
                        "-m", "mercato_ops", "--config", str(network.config_path), "contacts",
                        "import", str(vcard), "--user", contacts.IMPORTER, "--region", "NO",
                        "--json"], check=True, stdout=subprocess.DEVNULL, cwd=workdir)
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        recorder.wait()
        text = summarise(raw, f"contacts bridge while `mercato contacts import` of {count:,} "
                              f"contacts ran, Synapse on {database}")
    out = OUT / f"profile-contacts-bridge-{database}.txt"
    out.write_text(text)
    print(cli_out.read_text()[:6000])
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=["intake", "contacts", "orders", "storm"])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--buyers", type=int, default=300)
    parser.add_argument("--followers", type=int, default=2000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "intake":
        profile_intake(args.database)
    elif args.what == "orders":
        profile_orders(args.database, args.buyers)
    elif args.what == "storm":
        profile_storm(args.database, args.followers)
    else:
        profile_contacts(args.database, args.contacts)


if __name__ == "__main__":
    main()
