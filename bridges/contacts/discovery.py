"""Who is on Mercato, privately: opt-ins, matching an import, spec lookups, quotas.

The domain layer both the bot's handlers and the HTTP API call. Identifiers arrive
normalised (or already hashed by a client) and leave this module only as keyed
digests; an import keeps its contacts' digests and display labels in memory while it
runs and returns Matrix IDs of opted-in users. Logs carry counts and user IDs only.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from bridges.contacts import policy, verification
from bridges.contacts.db import store
from bridges.contacts.db.store import QuotaExceeded
from bridges.contacts.hashing import IdentifierHasher, LookupHash
from bridges.contacts.importers import Contact, ContactReader, ImportReport, Medium
from bridges.contacts.policy import Limits
from mercato.db import Database
from mercato.logging import get_logger

log = get_logger(__name__)

__all__ = ["ContactImport", "Discovery", "ImportOutcome", "Match", "QuotaExceeded",
           "Refused", "Verified"]


class Refused(Exception):
    """An upload or lookup that looks like enumeration; the message says why (no numbers)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """An identifier a code verified: its kind, keyed hash, and the opt-in's outcome."""

    medium: Medium
    digest: str
    outcome: str  # as Discovery.opt_in


@dataclass(frozen=True)
class Match:
    user_id: str
    label: str  # the contact's name in the importer's file ("" for hashed lookups)


@dataclass
class ImportOutcome:
    report: ImportReport
    matches: list[Match] = field(default_factory=list)
    refused: str | None = None
    quota_retry_after_s: int | None = None


class ContactImport:
    """One file being read: contacts in, their hashes and labels kept, nothing plain.

    `key` hashes an identifier: the stored digest in the bridge, the spec's lookup hash
    in the CLI (which sends only those).
    """

    def __init__(self, key: Callable[[Medium, str], str], limits: Limits, *,
                 region: str | None = None, encoding: str | None = None) -> None:
        self.key = key
        self.limits = limits
        self.reader = ContactReader(region=region, max_contacts=limits.max_contacts,
                                    encoding=encoding)
        self.labels: dict[str, str] = {}
        self.identifiers = 0
        self._numbers: list[int] = []

    @property
    def done(self) -> bool:
        return self.reader.done

    @property
    def report(self) -> ImportReport:
        return self.reader.report

    def feed(self, data: bytes) -> None:
        self.add(self.reader.feed(data))

    def close(self) -> None:
        self.add(self.reader.close())

    def add(self, contacts: Iterable[Contact]) -> None:
        for contact in contacts:
            for medium, values in ((Medium.PHONE, contact.phones),
                                   (Medium.EMAIL, contact.emails)):
                for value in values:
                    self.identifiers += 1
                    if self.identifiers > self.limits.max_identifiers:
                        continue  # refused anyway; keep memory flat
                    if medium is Medium.PHONE:
                        self._numbers.append(int(value[1:]))
                    self.labels.setdefault(self.key(medium, value), contact.label)

    def refusal(self) -> str | None:
        reason = policy.too_many(self.identifiers, self.limits)
        if reason is None:
            reason = policy.looks_like_number_sweep(self._numbers)
        self._numbers = []
        return reason


class Discovery:
    def __init__(self, db: Database, hasher: IdentifierHasher, limits: Limits,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.hasher = hasher
        self.limits = limits
        self.clock = clock

    # -- opting in and out --------------------------------------------------------------

    async def opt_in(self, user_id: str, medium: Medium, normalised: str) -> str:
        """A verified identifier: 'added', 'already' or 'taken' (another account's)."""
        return await self._opt_in_digest(user_id, medium.value,
                                         self.hasher.digest(medium, normalised))

    async def _opt_in_digest(self, user_id: str, medium: str, digest: str) -> str:
        outcome = await store.add_findable(self.db, digest, user_id, medium)
        log.info("findable.opt_in", user_id=user_id, medium=medium, outcome=outcome)
        return outcome

    def owner(self, medium: Medium, normalised: str) -> Awaitable[str | None]:
        """Who can be found by this identifier (verified opt-ins only)."""
        return store.findable_owner(self.db, self.hasher.digest(medium, normalised))

    # -- verification codes ---------------------------------------------------------------

    async def new_code(self, user_id: str, medium: Medium, normalised: str) -> str:
        """A code to send to the identifier, stored as an HMAC; QuotaExceeded past the
        day's codes for this user or this identifier."""
        digest = self.hasher.digest(medium, normalised)
        now = self.clock()
        await store.charge(self.db, [
            ("codes", f"codes:{user_id}", verification.CODES_PER_USER_PER_DAY),
            ("codes", f"codes:{digest}", verification.CODES_PER_IDENTIFIER_PER_DAY),
        ], policy.window_start(now), 1, policy.retry_after(now))
        code = verification.new_code()
        await store.add_code(self.db, user_id, digest, medium.value,
                             self.hasher.code_hash(user_id, digest, code),
                             store.now_ms() + verification.CODE_TTL_MS)
        return code

    async def forget_code(self, user_id: str, medium: Medium, normalised: str) -> None:
        await store.remove_code(self.db, user_id, self.hasher.digest(medium, normalised))

    async def check_code(self, user_id: str, code: str) -> Verified | None:
        """The identifier this code verifies (now findable), or None (a wrong try counted)."""
        pending = await store.pending_codes(self.db, user_id)
        matched = None
        for candidate in pending:  # every candidate compared, in constant time
            expected = self.hasher.code_hash(user_id, candidate.digest, code)
            if hmac.compare_digest(expected, candidate.code_hash) and matched is None:
                matched = candidate
        if matched is None:
            await store.count_wrong_code(self.db, user_id, verification.MAX_ATTEMPTS)
            log.info("verification.wrong_code", user_id=user_id, pending=len(pending))
            return None
        await store.remove_code(self.db, user_id, matched.digest)
        outcome = await self._opt_in_digest(user_id, matched.medium, matched.digest)
        log.info("verification.verified", user_id=user_id, medium=matched.medium)
        return Verified(Medium(matched.medium), matched.digest, outcome)

    async def tries_left(self, user_id: str) -> int:
        pending = await store.pending_codes(self.db, user_id)
        return max((verification.MAX_ATTEMPTS - p.attempts for p in pending), default=0)

    async def opt_out(self, user_id: str, medium: Medium | None = None,
                      normalised: str | None = None) -> int:
        digest = self.hasher.digest(medium, normalised) if medium and normalised else None
        removed = await store.remove_findable(self.db, user_id,
                                              medium.value if medium else None, digest)
        log.info("findable.opt_out", user_id=user_id, removed=removed)
        return removed

    async def convert_invites(self, user_id: str, medium: Medium,
                              normalised: str) -> list[store.Invite]:
        """Invites of this identifier that `user_id`, now findable by it, converts."""
        return await self.convert_invites_of(user_id, medium,
                                             self.hasher.digest(medium, normalised))

    async def convert_invites_of(self, user_id: str, medium: Medium,
                                 digest: str) -> list[store.Invite]:
        converted = await store.convert_invites(self.db, digest, user_id)
        for invite in converted:
            log.info("invite.converted", inviter=invite.inviter, user_id=user_id,
                     medium=medium.value)
        return converted

    async def status(self, user_id: str) -> dict[str, int]:
        return await store.findable_counts(self.db, user_id)

    # -- quotas -------------------------------------------------------------------------

    async def charge(self, user_id: str, amount: int, ip: str | None = None, *,
                     import_id: str | None = None,
                     run: tuple[str, str, int, int, int] | None = None) -> bool:
        """False when `import_id` was charged before (see `store.charge`)."""
        now = self.clock()
        charges = [("user", f"user:{user_id}", self.limits.per_user_per_day)]
        server = user_id.split(":", 1)[1] if ":" in user_id else ""
        if self.limits.local_server and server != self.limits.local_server:
            charges.append(("server", f"server:{server}",
                            self.limits.per_remote_server_per_day))
        if ip:
            charges.append(("ip", f"ip:{ip}", self.limits.per_ip_per_day))
        return await store.charge(self.db, charges, policy.window_start(now), amount,
                                  policy.retry_after(now), import_id=import_id, run=run)

    # -- matching -----------------------------------------------------------------------

    async def lookup(self, user_id: str, hashes: list[LookupHash], *, ip: str | None,
                     source: str) -> dict[str, str]:
        """The spec's lookup: client-hashed addresses → Matrix IDs of opted-in users."""
        reason = policy.too_many(len(hashes), self.limits)
        if reason:
            log.warning("lookup.refused", user_id=user_id, source=source, count=len(hashes),
                        reason="enumeration")
            await store.record_run(self.db, user_id, source, 0, len(hashes), 0, "enumeration")
            raise Refused(reason)
        try:
            await self.charge(user_id, len(hashes), ip)
        except QuotaExceeded as e:
            log.warning("lookup.refused", user_id=user_id, source=source, count=len(hashes),
                        reason=f"{e.subject_kind}_quota")
            await store.record_run(self.db, user_id, source, 0, len(hashes), 0, "quota")
            raise
        digests = {self.hasher.stored(h): h for h in hashes}
        owners = await store.owners_of(self.db, list(digests))
        mappings: dict[str, str] = {digests[d]: owner  # type: ignore[index]
                                    for d, owner in owners.items()}
        await store.record_run(self.db, user_id, source, 0, len(hashes), len(mappings))
        log.info("lookup.done", user_id=user_id, source=source, count=len(hashes),
                 matched=len(mappings))
        return mappings

    async def finish_import(self, contact_import: ContactImport, user_id: str, *,
                            source: str, import_id: str | None = None) -> ImportOutcome:
        """Refuse enumeration, charge the quota, and match an import that was read.

        The charge and the run's record are one database transaction, made once per
        `import_id`: an import handled again after a crash gets the same matches and
        changes nothing more.
        """
        report = contact_import.report
        outcome = ImportOutcome(report)
        count = contact_import.identifiers
        outcome.refused = contact_import.refusal()
        if outcome.refused:
            log.warning("import.refused", user_id=user_id, source=source, contacts=report.contacts,
                        identifiers=count, reason="enumeration")
            await store.record_run(self.db, user_id, source, report.contacts, count, 0,
                                   "enumeration")
            return outcome
        # Matched before charging, so the charge and the run's record go in one transaction;
        # nobody sees the matches of an import refused by quota.
        owners = await store.owners_of(self.db, list(contact_import.labels))
        by_user: dict[str, Match] = {}
        for digest, owner in owners.items():
            if owner != user_id and owner not in by_user:
                by_user[owner] = Match(owner, contact_import.labels[digest])
        contact_import.labels.clear()
        matches = sorted(by_user.values(), key=lambda m: (m.label.casefold(), m.user_id))
        try:
            charged = await self.charge(user_id, count, import_id=import_id, run=(
                user_id, source, report.contacts, count, len(matches)))
        except QuotaExceeded as e:
            outcome.refused = (
                f"the users of your homeserver have looked up {e.limit:,} phone numbers and "
                "addresses today between them, the most this server allows a day"
                if e.subject_kind == "server" else
                f"you have looked up {self.limits.per_user_per_day:,} phone "
                "numbers and addresses today, the most a day allows")
            outcome.quota_retry_after_s = e.retry_after_s
            log.warning("import.refused", user_id=user_id, source=source, identifiers=count,
                        reason="quota")
            await store.record_run(self.db, user_id, source, report.contacts, count, 0, "quota")
            return outcome
        outcome.matches = matches
        if not charged:
            log.info("import.already_charged", user_id=user_id, source=source,
                     import_id=import_id)
        log.info("import.done", user_id=user_id, source=source, contacts=report.contacts,
                 identifiers=count, matched=len(outcome.matches),
                 problems=report.problems_total)
        return outcome
