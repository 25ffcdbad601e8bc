"""Where a benchmark's time goes: `python -m bench.profile intake|contacts [--database D]`.

- intake: py-spy samples the commerce appservice process (subprocesses included)
  while the intake benchmark's transactions are pushed to it.
- contacts: pyinstrument runs `mercato contacts import` on the benchmark's vCard, and
  py-spy samples the contacts bridge meanwhile.

Writes collapsed stacks (py-spy's raw format, or pyinstrument's text) to
bench/results/profile-*.txt and prints the share of samples under each frame that
matters, which is what docs/benchmarks.md quotes.
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
from pathlib import Path

from bench import contacts, intake
from bench.common import bench_network

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
PY_SPY = Path(sys.executable).with_name("py-spy")


def component_pid(config_path: Path, component: str) -> int:
    """The process of `mercato --config CONFIG … run <component>` (this network's only)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if str(config_path) in argv and argv[-2:] == ["run", component]:
            return int(proc.name)
    raise RuntimeError(f"no running {component} process of {config_path}")


def spy(pid: int, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "250", "--nonblocking", "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=open(f"{path}.log", "wb"))


def summarise(path: Path, top: int = 25) -> list[tuple[str, float]]:
    """Share of samples whose stack passes through each frame (inclusive), largest first."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] += n
    return [(frame, n / total) for frame, n in inclusive.most_common(top)] if total else []


def profile_intake(database: str) -> None:
    bodies = [intake.synthetic_transaction(i) for i in range(300)]
    with tempfile.TemporaryDirectory(prefix="mercato-profile-") as workdir, \
            bench_network(Path(workdir), database) as network:
        asyncio.run(intake._push(network.commerce_url, network.config.commerce.hs_token,
                                 bodies[:20]))  # warm up
        out = OUT / f"profile-intake-{database}.txt"
        recorder = spy(component_pid(network.config_path, "commerce"), out)
        time.sleep(1.0)
        seconds = asyncio.run(intake._push(network.commerce_url,
                                           network.config.commerce.hs_token, bodies[20:]))
        time.sleep(3.0)  # the inbox worker handles what was stored
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        recorder.wait()
    print(f"{len(bodies[20:]) * intake.EVENTS_PER_TXN / seconds:.0f} events/s while sampled")
    for frame, share in summarise(out):
        print(f"{share:6.1%}  {frame}")


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
        bridge_out = OUT / f"profile-contacts-bridge-{database}.txt"
        recorder = spy(component_pid(network.config_path, "contacts"), bridge_out)
        cli_out = OUT / f"profile-contacts-cli-{database}.txt"
        subprocess.run([sys.executable, "-m", "pyinstrument", "--outfile", str(cli_out),
                        "-m", "mercato", "--config", str(network.config_path), "contacts",
                        "import", str(vcard), "--user", contacts.IMPORTER, "--region", "NO",
                        "--json"], check=True, stdout=subprocess.DEVNULL, cwd=workdir)
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        recorder.wait()
    print(cli_out.read_text()[:6000])
    print("contacts bridge while the import ran:")
    for frame, share in summarise(bridge_out):
        print(f"{share:6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=["intake", "contacts"])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "intake":
        profile_intake(args.database)
    else:
        profile_contacts(args.database, args.contacts)


if __name__ == "__main__":
    main()
