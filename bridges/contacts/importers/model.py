"""What an import yields: contacts with normalised identifiers, and what could not be read.

A `Contact` lives only while an import runs; nothing here is ever stored or logged.
Problems name a contact by its place in the file and a display label, never by the
phone number or address that failed (those are masked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

MAX_LABEL_CHARS = 60
# Scripts whose names are written family name first, without a space (山田太郎).
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "|", "%")
# Invisible characters that are part of how a name is written, kept in labels: the zero-width
# joiner and non-joiner (emoji sequences such as 👨\u200d👩\u200d👧, Persian and Indic names).
# Variation selectors are marks, printable already; bidi overrides and other controls go.
KEPT_INVISIBLE = "\u200c\u200d"


class Medium(StrEnum):
    """The third-party ID kinds of the Matrix spec (`msisdn` is a phone number)."""

    PHONE = "msisdn"
    EMAIL = "email"


class ImportFailed(Exception):
    """The file cannot be read at all; the message says why and what to send instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Contact:
    """One contact of the file: where it was, what to call it, how to reach it."""

    position: int  # 1-based: the n-th contact of the file
    label: str  # a display name safe to show (see `safe_label`)
    phones: tuple[str, ...]  # E.164, e.g. +4741234567
    emails: tuple[str, ...]  # lower-cased
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContactProblem:
    position: int
    label: str
    problem: str

    def describe(self) -> str:
        return f"contact {self.position} “{self.label}”: {self.problem}"


MAX_PROBLEMS_KEPT = 200


@dataclass
class ImportReport:
    """Counts and problems of one import; safe to show to the person who sent the file."""

    format: str = ""
    encoding: str = ""
    contacts: int = 0  # cards or rows seen, empty ones included
    with_identifiers: int = 0  # contacts with at least one usable phone or email
    without_identifiers: int = 0  # contacts with nothing to look up
    duplicates_merged: int = 0  # contacts whose every identifier appeared before
    identifiers: int = 0  # distinct phones and emails
    phones: int = 0
    emails: int = 0
    stopped_at_limit: int = 0  # the contact cap, when the file held more
    problems: list[ContactProblem] = field(default_factory=list)
    problems_total: int = 0
    notes: list[str] = field(default_factory=list)  # file-level remarks
    # CSV: the headers each was read from, as written ("name", "phone", "email" → 姓名 …)
    columns: dict[str, list[str]] = field(default_factory=dict)

    def add_problem(self, position: int, label: str, problem: str) -> None:
        self.problems_total += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(ContactProblem(position, label, problem))

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 20:
            self.notes.append(text)


def personal_name(given: str, family: str, additional: str = "", prefix: str = "",
                  suffix: str = "") -> str:
    """A name from its parts as people write it: 山田太郎, but Ola Nordmann."""
    if CJK.search(family + given):
        return f"{family}{given}".strip()
    return " ".join(p for p in (prefix, given, additional, family, suffix) if p)


def safe_label(name: str) -> str:
    """A name fit to echo back: one line, short, and never a spreadsheet formula."""
    text = " ".join("".join(c if c.isprintable() or c in KEPT_INVISIBLE else " "
                            for c in name).split())
    if len(text) > MAX_LABEL_CHARS:
        text = text[:MAX_LABEL_CHARS - 1] + "…"
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return text


def mask_phone(raw: str) -> str:
    """A hint at which number failed without repeating it: its last two digits."""
    digits = [c for c in raw if c.isdigit()]
    return f"ending …{''.join(digits[-2:])}" if len(digits) >= 4 else ""


def mask_email(raw: str) -> str:
    local, _, domain = raw.strip().partition("@")
    if not local or not domain:
        return ""
    shown = safe_label(domain)[:30]
    return f"at {shown}"
