"""What the bot answers to an import, and the links that start chats. Pure.

The text body is complete on its own; the HTML adds matrix.to links (clients show
them as user pills). Contacts are named by their label and position, numbers never.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import quote

from bridges.contacts.discovery import ImportOutcome
from mercato.commands import Reply

CONFIRM_KEY = "✅"
CONFIRM_KEYS = frozenset({"✅", "✔️", "✔", "☑️", "👍"})
MAX_LISTED_MATCHES = 50
MAX_LISTED_PROBLEMS = 15
MAX_LISTED_COLUMNS = 4


def matrix_to(user_id: str) -> str:
    return f"https://matrix.to/#/{quote(user_id, safe='@:')}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def import_summary(outcome: ImportOutcome, filename: str) -> Reply:
    report = outcome.report
    name = filename or "your file"
    kind = f"{report.format}, {report.encoding}" if report.format else report.encoding
    head = (f"I read {_count(report.contacts, 'contact', 'contacts')} from {name} ({kind}): "
            f"{report.with_identifiers:,} with a phone number or email")
    extras = []
    if report.duplicates_merged:
        extras.append(f"{report.duplicates_merged:,} duplicates merged")
    if report.without_identifiers:
        extras.append(f"{report.without_identifiers:,} with nothing I can look up")
    head += (f" ({', '.join(extras)})." if extras else ".")
    text = [head]
    body = [html.escape(head)]
    if columns := columns_used(report.columns):
        text.append(columns)
        body.append(html.escape(columns))
    if outcome.refused:
        line = (f"I did not look any of them up: {outcome.refused}. Nothing was kept. "
                "If this is a real address book, send a smaller part of it.")
        text.append(line)
        body.append(html.escape(line))
    elif outcome.matches:
        line = f"{_count(len(outcome.matches), 'of them is', 'of them are')} on Mercato:"
        text.append(line)
        items = []
        for match in outcome.matches[:MAX_LISTED_MATCHES]:
            who = f" — your contact “{match.label}”" if match.label else ""
            text.append(f"• {match.user_id}{who}")
            items.append(f'<li><a href="{html.escape(matrix_to(match.user_id))}">'
                         f"{html.escape(match.user_id)}</a>{html.escape(who)}</li>")
        if len(outcome.matches) > MAX_LISTED_MATCHES:
            more = f"… and {len(outcome.matches) - MAX_LISTED_MATCHES:,} more"
            text.append(more)
            items.append(f"<li>{html.escape(more)}</li>")
        body.append(f"{html.escape(line)}<ul>{''.join(items)}</ul>")
        prompt = (f"React with {CONFIRM_KEY} to this message, or type `dm all` (or "
                  "`dm @someone:server`), and I will open a chat with each and keep them "
                  "in a “Contacts” space for you. They chose to be found, by a phone "
                  "number or address that was verified.")
        text.append(prompt)
        body.append(html.escape(prompt))
    else:
        line = ("None of them is on Mercato yet (or they have not chosen to be found). "
                "Nothing from your file was kept.")
        text.append(line)
        body.append(html.escape(line))
    problems = _problem_lines(outcome)
    if problems:
        title = f"What I could not read ({report.problems_total:,}):"
        text.append(title)
        text += [f"• {p}" for p in problems]
        body.append(f"{html.escape(title)}<ul>"
                    + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    return Reply("\n".join(text), "<br>".join(body))


def columns_used(columns: dict[str, list[str]]) -> str:
    """Which CSV columns were read: "Read names from 姓名, phone numbers from 手机, emails
    from 邮箱." (so a user whose export was half understood sees which half)."""
    parts = [f"{what} from {_listed(columns[kind])}"
             for kind, what in (("name", "names"), ("phone", "phone numbers"),
                                ("email", "emails")) if columns.get(kind)]
    if not parts:
        return ""
    several = any(len(names) > 1 for names in columns.values())
    return f"Read {('; ' if several else ', ').join(parts)}."


def _listed(headers: list[str]) -> str:
    shown = headers[:MAX_LISTED_COLUMNS]
    if len(headers) > len(shown):
        return f"{', '.join(shown)} and {len(headers) - len(shown)} more columns"
    return " and ".join([", ".join(shown[:-1]), shown[-1]]) if len(shown) > 1 else shown[0]


def _problem_lines(outcome: ImportOutcome) -> list[str]:
    report = outcome.report
    lines = [p.describe() for p in report.problems[:MAX_LISTED_PROBLEMS]]
    if report.problems_total > len(lines):
        lines.append(f"… and {report.problems_total - len(lines):,} more")
    lines += report.notes
    return lines


def chat_links(matches: Sequence[str], server_hint: str = "") -> Reply:
    """The reply to ✅ or `dm …`: one link per person; the user's client opens the chat."""
    if not matches:
        return Reply("There is no one to start a chat with from that import.")
    intro = ("Tap a name to open their profile in your Matrix client, then choose "
             "“Message” (or “Start chat”). The chat is between the two of you: I am not in it.")
    text = [intro] + [f"• {user} — {matrix_to(user)}" for user in matches]
    items = "".join(f'<li><a href="{html.escape(matrix_to(user))}">{html.escape(user)}</a></li>'
                    for user in matches)
    return Reply("\n".join(text), f"{html.escape(intro)}<ul>{items}</ul>")


def room_link(room_id: str, server_name: str) -> str:
    return f"https://matrix.to/#/{quote(room_id, safe='!:')}?via={quote(server_name)}"


def opened_chats(opened: dict[str, str], asked: int, server_name: str) -> Reply:
    """The reply once the bridge opened chats: one per person, all in the Contacts space."""
    if not opened:
        return Reply("There is no one to start a chat with from that import.")
    intro = ("I opened a chat with each of them and invited you both; you find the chats "
             "in your invitations and in the “Contacts” space I keep for you. I leave as "
             "soon as neither of you needs me to get in: the chat is between the two of "
             "you.")
    text = [intro]
    items = []
    for user, room in opened.items():
        text.append(f"• {user} — {matrix_to(user)} — chat: {room_link(room, server_name)}")
        items.append(f'<li><a href="{html.escape(matrix_to(user))}">{html.escape(user)}</a>'
                     f' — <a href="{html.escape(room_link(room, server_name))}">open the chat'
                     "</a></li>")
    if asked > len(opened):
        more = (f"That is {len(opened)} of {asked}: type `dm @someone:server` for each of "
                "the others.")
        text.append(more)
        items.append(f"<li>{html.escape(more)}</li>")
    return Reply("\n".join(text), f"{html.escape(intro)}<ul>{''.join(items)}</ul>")
