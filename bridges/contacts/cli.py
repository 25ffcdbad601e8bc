"""`mercato contacts`: find a user's contacts on the network from an address-book file.

The file is read here, on the operator's machine, by the same streaming importers the
bridge bot uses; only the identity service's peppered hashes go to the bridge (its
service API, with the appservice's as_token), charged to the user named. The bridge
never sees a number, an address or a name from the file.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mercato.console import output_console

CHUNK_BYTES = 256 * 1024
LOOKUP_BATCH = 1000

console = Console(stderr=True)


@click.group(name="contacts")
def contacts() -> None:
    """The contacts bridge: who of an address book is on Mercato, and its stats."""


def _bridge(obj: Any, bridge_url: str | None) -> tuple[str, str]:
    """The bridge's base URL and the token of its service API, from mercato.yaml."""
    if obj is None or not hasattr(obj, "config"):
        raise click.ClickException("Run it as `mercato contacts …` next to mercato.yaml.")
    config = obj.config()
    if bridge_url is None:
        from mercato.config import reachable_host
        bridge_url = f"http://{reachable_host(config.contacts.bind_address)}:{config.contacts.port}"
    return bridge_url.rstrip("/"), config.contacts.as_token


async def _call(session: Any, method: str, url: str, token: str,
                body: Any = None) -> dict[str, Any]:
    import aiohttp

    try:
        async with session.request(method, url, json=body,
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
            data = await resp.json(content_type=None)
    except aiohttp.ClientError as e:
        raise click.ClickException(f"The contacts bridge does not answer at {url} ({e}); is "
                                   "the network running (`make run`)?") from None
    except json.JSONDecodeError:
        raise click.ClickException(f"The contacts bridge answered {url} with something "
                                   "that is not JSON.") from None
    if resp.status >= 400:
        raise click.ClickException(f"{data.get('error')} ({data.get('errcode')})")
    return data


@contacts.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "user_id", required=True,
              help="The Matrix user whose address book this is, such as @ola:example.org; "
                   "their daily lookup quota is charged.")
@click.option("--region", default=None,
              help="Country code (NO, DE, US …) for numbers written without +country. "
                   "Default: the user's own (`region` with the bot), else the server's.")
@click.option("--encoding", default=None,
              help="The file's encoding, if it is read wrongly (utf-8, gbk, cp1252, utf-16).")
@click.option("--bridge-url", envvar="MERCATO_CONTACTS_URL", default=None,
              help="The contacts bridge, such as http://127.0.0.1:8091. Default: this "
                   "network's, from the configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.pass_obj
def import_contacts(obj: Any, file: Path, user_id: str, region: str | None,
                    encoding: str | None, bridge_url: str | None, as_json: bool) -> None:
    """Read FILE (vCard, or CSV from Google, Outlook or name,phone,email) and list who of
    its contacts is on Mercato, with what could not be read.

    Exits with status 1 when the file cannot be read or the lookup is refused.
    """
    from mercato.commands import ArgumentError, matrix_user_id

    try:
        matrix_user_id(user_id)
    except ArgumentError as e:
        raise click.BadParameter(str(e), param_hint="--user") from None
    if encoding:
        import codecs
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise click.BadParameter(f"unknown encoding {encoding!r}",
                                     param_hint="--encoding") from None
    base, token = _bridge(obj, bridge_url)
    result = asyncio.run(_import(file, user_id, region, encoding, base, token))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_result(result, file.name)
    if result["refused"] or result.get("unreadable"):
        sys.exit(1)


async def _import(file: Path, user_id: str, region: str | None, encoding: str | None,
                  base: str, token: str) -> dict[str, Any]:
    import aiohttp

    from bridges.contacts.discovery import ContactImport
    from bridges.contacts.hashing import address_of, lookup_hash
    from bridges.contacts.importers import ImportFailed, Medium
    from bridges.contacts.normalise import InvalidIdentifier, parse_region
    from bridges.contacts.policy import Limits

    service = f"{base}/_mercato/contacts/v1"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        details = await _call(session, "GET",
                              f"{service}/hash_details?user_id={quote(user_id, safe='')}",
                              token)
        try:
            region = parse_region(region) if region else details.get("region")
        except InvalidIdentifier as e:
            raise click.BadParameter(str(e), param_hint="--region") from None
        pepper = details["lookup_pepper"]
        limits = Limits(max_contacts=details["max_contacts"],
                        max_identifiers=details["max_identifiers"], per_user_per_day=0,
                        per_ip_per_day=0, max_upload_bytes=details["max_upload_bytes"])

        def spec_hash(medium: Medium, value: str) -> str:
            return lookup_hash(address_of(medium, value), medium, pepper)

        contact_import = ContactImport(spec_hash, limits, region=region, encoding=encoding)
        size = file.stat().st_size
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   DownloadColumn(), TimeRemainingColumn())
        try:
            with Progress(*columns, console=console, transient=True) as progress, \
                    file.open("rb") as f:
                task = progress.add_task(f"reading {file.name}", total=size)
                while not contact_import.done and (chunk := f.read(CHUNK_BYTES)):
                    contact_import.feed(chunk)
                    progress.advance(task, len(chunk))
                contact_import.close()
        except ImportFailed as e:
            return {"refused": None, "unreadable": e.message, "matches": [], "report": None}
        report = _report_json(contact_import.report)
        refused = contact_import.refusal()
        if refused:
            return {"refused": refused, "matches": [], "report": report}
        labels = contact_import.labels
        hashes = list(labels)
        mappings: dict[str, str] = {}
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), console=console, transient=True) as progress:
            task = progress.add_task("looking up", total=len(hashes))
            for start in range(0, len(hashes), LOOKUP_BATCH):
                batch = hashes[start:start + LOOKUP_BATCH]
                answer = await _call(session, "POST", f"{service}/lookup", token,
                                     {"user_id": user_id, "addresses": batch,
                                      "pepper": pepper, "source": "cli"})
                mappings.update(answer.get("mappings", {}))
                progress.advance(task, len(batch))
    by_user: dict[str, str] = {}
    for hashed, owner in mappings.items():
        if owner != user_id:
            by_user.setdefault(owner, labels.get(hashed, ""))
    matches = [{"user_id": owner, "contact": label, "link": f"https://matrix.to/#/{owner}"}
               for owner, label in sorted(by_user.items(), key=lambda i: (i[1].casefold(), i[0]))]
    return {"refused": None, "matches": matches, "report": report, "region": region}


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "format": report.format, "encoding": report.encoding, "contacts": report.contacts,
        "with_identifiers": report.with_identifiers,
        "without_identifiers": report.without_identifiers,
        "duplicates_merged": report.duplicates_merged, "identifiers": report.identifiers,
        "stopped_at_limit": report.stopped_at_limit, "problems_total": report.problems_total,
        "problems": [{"contact": p.position, "name": p.label, "problem": p.problem}
                     for p in report.problems],
        "notes": list(report.notes),
    }


def _print_result(result: dict[str, Any], filename: str) -> None:
    out = output_console()
    if result.get("unreadable"):
        out.print(f"{filename} could not be read: {result['unreadable']}", markup=False,
                  highlight=False)
        return
    report = result["report"]
    out.print(f"{filename} ({report['format']}, {report['encoding']}): {report['contacts']:,} "
              f"contacts, {report['with_identifiers']:,} with a phone number or email, "
              f"{report['duplicates_merged']:,} duplicates merged", markup=False,
              highlight=False)
    if result["refused"]:
        out.print(f"Not looked up: {result['refused']}. Nothing was sent to the bridge.",
                  markup=False, highlight=False)
    elif result["matches"]:
        table = Table("contact", "Matrix user", "start a chat", title="On Mercato")
        for match in result["matches"]:
            table.add_row(Text(match["contact"]), Text(match["user_id"]), Text(match["link"]))
        out.print(table)
    else:
        out.print("None of them is on Mercato yet (or they have not chosen to be found).")
    if report["problems"]:
        table = Table("contact", "name", "could not be read", title="Not read")
        for problem in report["problems"]:
            table.add_row(str(problem["contact"]), Text(problem["name"]),
                          Text(problem["problem"]))
        out.print(table)
    for note in report["notes"]:
        out.print(f"Note: {note}", markup=False, highlight=False)


@contacts.command(name="stats")
@click.option("--bridge-url", envvar="MERCATO_CONTACTS_URL", default=None,
              help="The contacts bridge. Default: this network's, from the configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_obj
def stats(obj: Any, bridge_url: str | None, as_json: bool) -> None:
    """Opt-ins, imports, matches and refusals (counts only: the bridge keeps no contacts)."""
    import aiohttp

    base, token = _bridge(obj, bridge_url)

    async def fetch() -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            return await _call(session, "GET", f"{base}/_mercato/contacts/v1/stats", token)

    data = asyncio.run(fetch())
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    out = output_console()
    findable = data["findable"]
    out.print(f"{data['findable_users']:,} users can be found: {findable.get('msisdn', 0):,} "
              f"phone numbers, {findable.get('email', 0):,} email addresses")
    table = Table("source", "runs", "contacts", "identifiers", "matched", "refused")
    for source, row in sorted(data["imports"].items()):
        table.add_row(source, *(f"{row[k]:,}" for k in ("runs", "contacts", "identifiers",
                                                        "matched", "refused")))
    out.print(table)
    invites = data.get("invites", {})
    out.print(f"Invites: {invites.get('created', 0):,} created "
              f"({invites.get('named', 0):,} naming someone), {invites.get('opened', 0):,} "
              f"opened, {invites.get('converted', 0):,} converted — conversion "
              f"{invites.get('conversion', 0.0):.0%} of the invites naming someone")
    chats = data.get("chats", {})
    out.print(f"Chats opened by the bridge: {chats.get('opened', 0):,}, in "
              f"{chats.get('spaces', 0):,} Contacts spaces")
