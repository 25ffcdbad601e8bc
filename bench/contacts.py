"""Contact import: a big vCard matched against opted-in users, and identity-service lookups.

- Import: `mercato contacts import FILE --user …` (the operator's CLI: reads the file with
  the bridge's streaming importer, hashes on this machine, looks the hashes up through
  the bridge's service API) as a subprocess, timed end to end, its peak memory the
  resident-set high-water mark the kernel keeps for that process (VmHWM). The
  reference, in the same run: a bare loop in this process that reads the same file
  line by line, normalises each number with phonenumbers (parse, validity, E.164) and
  each email (lower case), and computes the spec's lookup hash. Each side runs twice,
  interleaved, and its best time counts.
- Lookups: POST /_matrix/identity/v2/lookup with 10,000 hashes per request (half of
  them opted in), as a client with an identity-service token; versus a bare dictionary
  lookup of the same hashes in this process.

The opted-in users are seeded straight into the bridge's database through its own
discovery layer (`Discovery.opt_in`, which keeps only the keyed digest), on a
connection of the benchmark's own that skips fsync: the seed is set-up, not measured.
Half the file's numbers belong to an opted-in user; the other opted-in users own
numbers outside the file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import phonenumbers
from mautrix.util.logging import TraceLogger
from phonenumbers import PhoneNumberFormat

from bench.common import bench_network, register
from bridges.contacts.db.upgrade import upgrade_table as contacts_upgrade_table
from bridges.contacts.discovery import Discovery
from bridges.contacts.hashing import IdentifierHasher, address_of, lookup_hash
from bridges.contacts.importers import Medium
from bridges.contacts.policy import Limits
from mercato.db import Database

LOOKUP_BATCH = 10_000
GOALS = {"ratio": 0.5, "peak_mb": 200}
ROUNDS = 2
IMPORTER = "@importer:localhost"


def _numbers(count: int, seed: int) -> list[str]:
    """`count` distinct, valid, scattered Norwegian mobile numbers in E.164."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        first = rng.choice("49")
        number = f"+47{first}{rng.randrange(10_000_000):07d}"
        if number not in found and phonenumbers.is_valid_number(phonenumbers.parse(number)):
            found[number] = None
    return list(found)


def write_vcard(path: Path, phones: list[str]) -> None:
    """One card per number, as a phone exports it: a name, the number written loosely, an
    email address."""
    with path.open("w", encoding="utf-8", newline="") as out:
        for n, phone in enumerate(phones):
            written = f"{phone[:3]} {phone[3:6]} {phone[6:8]} {phone[8:]}"
            out.write(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Contact {n}\r\nN:{n};Contact;;;\r\n"
                      f"TEL;TYPE=CELL:{written}\r\n"
                      f"EMAIL;TYPE=INTERNET:Contact.{n}@Example.org\r\nEND:VCARD\r\n")


def bare_loop(path: Path, pepper: str) -> dict[str, str]:
    """Parse, normalise and hash the file with nothing else: the floor for an import."""
    hashes: dict[str, str] = {}
    name = ""
    with path.open("rb") as f:
        for raw in f:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("FN:"):
                name = line[3:]
                continue
            if line.startswith("TEL"):
                number = phonenumbers.parse(line.split(":", 1)[1], "NO")
                if not phonenumbers.is_valid_number(number):
                    continue
                address = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
                medium = "msisdn"
            elif line.startswith("EMAIL"):
                address, medium = line.split(":", 1)[1].strip().lower(), "email"
            else:
                continue
            digest = hashlib.sha256(f"{address} {medium} {pepper}".encode()).digest()
            hashes.setdefault(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), name)
    return hashes


# mautrix wants its own logger class, which structlog's set-up replaces for new loggers.
_DB_LOG = TraceLogger("mercato.db.bench")


def _seed_db(url: str) -> Database:
    """The bridge's database, on a connection that skips fsync (seeding only)."""
    if url.startswith("sqlite:"):
        return Database.create(f"sqlite:///{url.removeprefix('sqlite:')}",
                               upgrade_table=contacts_upgrade_table,
                               db_args={"init_commands": ["PRAGMA journal_mode=WAL",
                                                          "PRAGMA busy_timeout=10000",
                                                          "PRAGMA synchronous=OFF"]},
                               log=_DB_LOG)
    return Database.create(url, upgrade_table=contacts_upgrade_table,
                           db_args={"min_size": 1, "max_size": 8,
                                    "server_settings": {"synchronous_commit": "off"}},
                           log=_DB_LOG)


async def seed(network: Any, owners: list[tuple[str, str]]) -> float:
    """Opt every (user, phone) in through the bridge's discovery layer; returns seconds."""
    config = network.config
    db = _seed_db(config.database_url("contacts"))
    await db.start()
    try:
        discovery = Discovery(db, IdentifierHasher(config.contacts.hmac_secret,
                                                   config.contacts.lookup_pepper),
                              Limits.of(config.contacts))
        limit = asyncio.Semaphore(8)
        start = time.perf_counter()

        async def one(user_id: str, phone: str) -> None:
            async with limit:
                outcome = await discovery.opt_in(user_id, Medium.PHONE, phone)
                if outcome != "added":
                    raise RuntimeError(f"seeding {user_id}: {outcome}")

        await asyncio.gather(*(one(u, p) for u, p in owners))
        return time.perf_counter() - start
    finally:
        await db.stop()


def _peak_kb(pid: int) -> int | None:
    """The process's resident-set high-water mark (VmHWM), or None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_import(network: Any, vcard: Path) -> tuple[float, float, dict[str, Any]]:
    """The CLI import as its own process: (seconds, peak RSS in MB, its JSON).

    The peak is the kernel's VmHWM of the process, read every 10 ms while it runs (the
    rusage of a child also counts the parent's pages it was forked with, so it is not
    used).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mercato_ops", "--config", str(network.config_path), "contacts",
         "import", str(vcard), "--user", IMPORTER, "--region", "NO", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=network.base_dir)
    peak_kb = 0
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    while proc.poll() is None:
        peak_kb = max(peak_kb, _peak_kb(proc.pid) or 0)
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    reader.join()
    if proc.returncode != 0:
        raise RuntimeError(f"mercato contacts import exited with {proc.returncode}: "
                           f"{b''.join(output)[-2000:]!r}")
    return seconds, peak_kb / 1024, json.loads(b"".join(output))


async def identity_token(http: aiohttp.ClientSession, network: Any) -> str:
    """An identity-service token, the way a client gets one (OpenID from the homeserver)."""
    config, hs = network.config, network.hs_url
    token = await register(http, hs, config.synapse.registration_shared_secret, "idlookup")
    user_id = config.user_id("idlookup")
    async with http.post(f"{hs}/_matrix/client/v3/user/{user_id}/openid/request_token",
                         json={}, headers={"Authorization": f"Bearer {token}"}) as resp:
        openid = await resp.json()
    base = f"http://127.0.0.1:{config.contacts.port}/_matrix/identity/v2"
    async with http.post(f"{base}/account/register", json=openid) as resp:
        data = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"identity registration refused: {data}")
    return str(data["token"])


async def lookups(network: Any, batches: list[list[str]]) -> tuple[float, int]:
    """POST every batch to the identity service in turn: (seconds, mappings found)."""
    base = f"http://127.0.0.1:{network.config.contacts.port}/_matrix/identity/v2"
    pepper = network.config.contacts.lookup_pepper
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        token = await identity_token(http, network)
        headers = {"Authorization": f"Bearer {token}"}
        found = 0
        start = time.perf_counter()
        for batch in batches:
            async with http.post(f"{base}/lookup", headers=headers, json={
                    "algorithm": "sha256", "pepper": pepper, "addresses": batch}) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"lookup refused: {resp.status} {data}")
                found += len(data["mappings"])
        return time.perf_counter() - start, found


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    contacts = 10_000 if quick else 100_000
    lookup_requests = 5 if quick else 20
    phones = _numbers(2 * contacts, seed=10)
    in_file, outside = phones[:contacts], phones[contacts:]
    vcard = workdir / "contacts.vcf"
    write_vcard(vcard, in_file)
    # User k opts in with the file's k-th number when k is even, else with one outside it.
    owners = [(f"@optin{k}:localhost", in_file[k] if k % 2 == 0 else outside[k])
              for k in range(contacts)]
    generous = {"max_contacts_per_import": 10 * contacts,
                "max_identifiers_per_import": 10 * contacts,
                "lookups_per_user_per_day": 1_000_000_000,
                "lookups_per_ip_per_day": 1_000_000_000}
    with bench_network(workdir, database, contacts=generous) as network:
        seed_seconds = asyncio.run(seed(network, owners))
        pepper = network.config.contacts.lookup_pepper
        import_times, bare_times, peaks = [], [], []
        result: dict[str, Any] = {}
        for _ in range(ROUNDS):  # interleaved, so a noisy neighbour hits both alike
            seconds, peak_mb, result = run_import(network, vcard)
            import_times.append(seconds)
            peaks.append(peak_mb)
            start = time.perf_counter()
            bare = bare_loop(vcard, pepper)
            bare_times.append(time.perf_counter() - start)
        matched = len(result["matches"])
        if matched != contacts // 2 + contacts % 2:
            raise RuntimeError(f"the import matched {matched} users, expected {contacts // 2}")

        # Lookups: each request 10,000 hashes, half of them of opted-in users.
        seeded = {lookup_hash(address_of(Medium.PHONE, p), Medium.PHONE, pepper): u
                  for u, p in owners}
        hits = list(seeded)
        misses = [h for h in bare if h not in seeded]
        rng = random.Random(11)
        batches = []
        for _ in range(lookup_requests):
            batch = rng.sample(hits, LOOKUP_BATCH // 2) + rng.sample(
                misses, min(len(misses), LOOKUP_BATCH // 2))
            rng.shuffle(batch)
            batches.append(batch)
        lookup_seconds, lookup_found = asyncio.run(lookups(network, batches))
    start = time.perf_counter()
    dict_found = sum(1 for batch in batches for h in batch if seeded.get(h) is not None)
    dict_seconds = time.perf_counter() - start
    if dict_found != lookup_found:
        raise RuntimeError(f"the identity service found {lookup_found}, the dictionary "
                           f"{dict_found}")

    identifiers = result["report"]["identifiers"]
    import_rate = contacts / min(import_times)
    bare_rate = contacts / min(bare_times)
    looked_up = sum(len(b) for b in batches)
    lookup_rate = looked_up / lookup_seconds
    dict_rate = looked_up / dict_seconds
    peak = max(peaks)
    return {
        "name": "contact import",
        "database": database,
        "contacts": contacts, "identifiers": identifiers, "opted_in_users": len(owners),
        "matched": matched, "seed_seconds": round(seed_seconds, 1),
        "import_seconds": round(min(import_times), 2),
        "bare_seconds": round(min(bare_times), 2),
        "import_contacts_per_s": round(import_rate), "bare_contacts_per_s": round(bare_rate),
        "ratio": round(import_rate / bare_rate, 3),
        "peak_rss_mb": round(peak, 1),
        "peak_measured_as": "VmHWM (resident-set high-water mark) of the `mercato contacts "
                            "import` process, read from /proc every 10 ms while it runs",
        "lookup": {"requests": len(batches), "hashes_per_request": LOOKUP_BATCH,
                   "found": lookup_found, "seconds": round(lookup_seconds, 2),
                   "hashes_per_s": round(lookup_rate),
                   "dict_hashes_per_s": round(dict_rate),
                   "ratio": round(lookup_rate / dict_rate, 5)},
        "goals": {"ratio >= 0.50": import_rate / bare_rate >= GOALS["ratio"],
                  "peak memory < 200 MB": peak < GOALS["peak_mb"]},
        "rounds": ROUNDS,
    }
