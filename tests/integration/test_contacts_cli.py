"""`mercato contacts import` against the running bridge: the file stays on this machine,
only peppered hashes reach the bridge, and the matches come back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import (
    assert_nowhere,
    become_findable,
    open_bridge_dm,
    unique_number,
)
from tests.verification_sinks import MailSink, SmsGateway


def mercato(network: RunningNetwork, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mercato_ops", "--config",
                           str(network.config_path), *args],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])


async def test_cli_import_lists_who_is_here(network: RunningNetwork,
                                            http: aiohttp.ClientSession, tmp_path: Path,
                                            code_sinks: tuple[SmsGateway, MailSink]) -> None:
    friend = await new_user(network, http, "clifriend")
    room_id = await open_bridge_dm(friend, network)
    e164, raw = unique_number("9")
    await become_findable(friend, network, room_id, code_sinks, f"findable phone {raw}", e164)
    other_e164, other_raw = unique_number("4")
    book = tmp_path / "book.csv"
    national = raw.removeprefix("+47 ")
    book.write_text(f"name,phone,email\nMy Friend,{national},\nNot Here,{other_raw},\n"
                    "=cmd|' /C calc'!A0,12,\n", encoding="utf-8")
    done = mercato(network, "contacts", "import", str(book), "--user", "@me:localhost",
                   "--region", "NO", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [(m["user_id"], m["contact"]) for m in result["matches"]] == [
        (friend.user_id, "My Friend")]
    assert result["report"]["contacts"] == 3 and result["report"]["problems_total"] == 1
    assert result["report"]["problems"][0]["name"] == "'=cmd|' /C calc'!A0"
    table = mercato(network, "contacts", "import", str(book), "--user", "@me:localhost",
                    "--region", "NO")
    assert table.returncode == 0 and friend.user_id in table.stdout
    assert "matrix.to" in table.stdout
    await assert_nowhere(network, [e164, raw, other_e164, other_raw, "Not Here"])
    stats = mercato(network, "contacts", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["imports"]["cli"]["runs"] >= 2
    table = mercato(network, "contacts", "stats")
    assert table.returncode == 0, table.stderr
    assert "conversion" in table.stdout and "Chats opened" in table.stdout


async def test_cli_refuses_a_sweep_before_sending_anything(network: RunningNetwork,
                                                           tmp_path: Path) -> None:
    book = tmp_path / "sweep.csv"
    book.write_text("name,phone,email\n" + "".join(f"n{i},+47 4123{i:04d},\n"
                                                   for i in range(100)), encoding="utf-8")
    done = mercato(network, "contacts", "import", str(book), "--user", "@me:localhost")
    assert done.returncode == 1
    assert "Not looked up" in done.stdout and "consecutive" in done.stdout


async def test_cli_says_what_is_wrong(network: RunningNetwork, tmp_path: Path) -> None:
    binary = tmp_path / "photo.vcf"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    done = mercato(network, "contacts", "import", str(binary), "--user", "@me:localhost")
    assert done.returncode == 1 and "not a text file" in done.stdout
    done = mercato(network, "contacts", "import", str(binary), "--user", "me")
    assert done.returncode == 2 and "Matrix ID" in done.stderr
