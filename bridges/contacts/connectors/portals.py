"""Ghosts and portal rooms: a network contact as a Matrix user, and one DM per contact.

A ghost is `@<prefix><network>_<escaped address>` in the bridge's own namespace. A
portal is a direct chat the ghost creates and invites its user to. Contacts whose
address (or an identifier their profile gives) matches an opted-in Mercato user go
through the same private matching as file imports and are offered as a native DM
instead; when a contact opts in later, both sides are told where to continue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from mautrix.appservice import ASStateStore, IntentAPI
from mautrix.errors import MatrixError, MatrixRequestError
from mautrix.types import (
    RoomCreatePreset,
    UserID,
)

from bridges.contacts.connectors import store
from bridges.contacts.connectors.base import Connector, RemoteContact, RemoteID
from bridges.contacts.db import store as contacts_store
from bridges.contacts.discovery import ContactImport, Discovery
from bridges.contacts.importers import Contact, Medium
from bridges.contacts.importers.model import safe_label
from bridges.contacts.links import matrix_to
from bridges.contacts.normalise import InvalidIdentifier, normalise_email, normalise_phone
from bridges.contacts.space import ContactsSpaces
from bridges.contacts.summary import room_link
from mercato.config import MercatoConfig
from mercato.db import Database
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, Outbox
from mercato.matrix.sending import create_room_once

log = get_logger(__name__)

_KEPT = set("abcdefghijklmnopqrstuvwxyz0123456789._/+-")
# Portals opened by one roster import; the other contacts get theirs when they write
# (or with `<network> chat`), so a large roster does not flood the user with invites.
MAX_PORTALS_PER_IMPORT = 100
NOTICE = "network_notice"  # the outbox's kind of what the bot or a ghost tells the user


class BridgeSide(Protocol):
    """What the core needs from the running appservice."""

    config: MercatoConfig
    db: Database
    discovery: Discovery
    spaces: ContactsSpaces  # opens native chats, kept in each user's Contacts space
    outbox: Outbox  # every message sent: recorded first, sent once, in each room's order

    @property
    def state_store(self) -> ASStateStore: ...  # memberships, as the homeserver sent them

    @property
    def bot(self) -> IntentAPI: ...

    def intent_for(self, user_id: UserID) -> IntentAPI: ...

    def http_session(self) -> aiohttp.ClientSession: ...


def escape_address(address: str) -> str:
    """An address as Matrix localpart characters, reversibly: '@' becomes '=40'."""
    return "".join(ch if ch in _KEPT else "".join(f"={b:02x}" for b in ch.encode("utf-8"))
                   for ch in address)


@dataclass
class RosterOutcome:
    # (contact, Matrix ID, the native chat opened between them or None)
    on_mercato: list[tuple[str, str, str | None]] = field(default_factory=list)
    portals: list[str] = field(default_factory=list)  # names of contacts with a portal
    later: int = 0  # contacts over MAX_PORTALS_PER_IMPORT without a new portal
    refused: str | None = None


class Portals:
    def __init__(self, bridge: BridgeSide) -> None:
        self.bridge = bridge
        self.rooms: set[str] = set()
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    @property
    def db(self) -> Database:
        return self.bridge.db

    async def load(self) -> None:
        self.rooms = await store.portal_rooms(self.db)

    def ghost_id(self, connector: Connector, remote_id: RemoteID) -> UserID:
        config = self.bridge.config
        localpart = (f"{config.contacts.user_prefix}{connector.network}_"
                     f"{escape_address(remote_id)}")
        return UserID(config.user_id(localpart))

    def digests(self, connector: Connector, emails: Iterable[str],
                phones: Iterable[str] = ()) -> list[str]:
        """Keyed hashes of a contact's identifiers, as the file-import matching keeps them."""
        hasher = self.bridge.discovery.hasher
        found: list[str] = []
        for medium, values, normalise in ((Medium.EMAIL, emails, normalise_email),
                                          (Medium.PHONE, phones, normalise_phone)):
            for value in values:
                try:
                    found.append(hasher.digest(medium, normalise(value)))
                except InvalidIdentifier:
                    continue
        return found

    # -- ghosts ---------------------------------------------------------------------------

    async def ensure_ghost(self, connector: Connector, contact: RemoteContact) -> IntentAPI:
        ghost = self.bridge.intent_for(self.ghost_id(connector, contact.remote_id))
        await ghost.ensure_registered()
        name = safe_label(contact.name) or contact.remote_id
        try:
            await ghost.set_displayname(f"{name} ({connector.label})")
            if contact.avatar:
                mxc = await ghost.upload_media(contact.avatar, contact.avatar_type or None)
                await ghost.set_avatar_url(mxc)
        except MatrixRequestError as e:  # a profile is cosmetic: the chat works without it
            log.warning("network.ghost_profile_failed", network=connector.network,
                        errcode=e.errcode)
        return ghost

    # -- portals --------------------------------------------------------------------------

    async def ensure_portal(self, connector: Connector, login: store.Login,
                            contact: RemoteContact) -> store.Portal:
        key = (connector.network, login.user_id, str(contact.remote_id))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = await store.portal(self.db, *key)
            if found is not None:
                return found
            ghost = await self.ensure_ghost(connector, contact)
            name = safe_label(contact.name) or contact.remote_id
            # The ghost is in one room per local user who has this contact: finding a
            # portal created just before a crash (a roster import, a message caught up
            # again) costs little, and a second portal would split the conversation.
            room_id = await create_room_once(
                ghost, f"portal:{connector.network}:{login.user_id}:{contact.remote_id}",
                adopt=True,
                preset=RoomCreatePreset.PRIVATE, is_direct=True,
                invitees=[UserID(login.user_id)],
                topic=f"{connector.label} chat with {contact.remote_id}, bridged by Mercato")
            emails, phones = connector.identifiers(contact.remote_id)
            digests = self.digests(connector, emails, phones)
            portal = store.Portal(connector.network, login.user_id, contact.remote_id,
                                  room_id, ghost.mxid, name, digests[0] if digests else None,
                                  None)
            await store.add_portal(self.db, portal)
            self.rooms.add(room_id)
            log.info("network.portal_created", network=connector.network, user_id=login.user_id,
                     room_id=room_id)
        await self.into_space(login.user_id, room_id)
        return portal

    async def into_space(self, user_id: str, room_id: str, *, recovering: bool = False) -> None:
        """The portal among the user's chats in their Contacts space (retried at start-up,
        `recovering`)."""
        try:
            await self.bridge.spaces.add_child(user_id, room_id, recovering=recovering)
        except (MatrixError, aiohttp.ClientError, OSError) as e:  # the chat works without it
            log.warning("network.portal_not_in_space", user_id=user_id, error=str(e))
            return
        await store.mark_portal_in_space(self.db, room_id)

    async def space_catch_up(self) -> None:
        """Portals whose place in the space was not recorded (a crash, the homeserver away,
        or made before portals went into spaces)."""
        for user_id, room_id in await store.portals_not_in_space(self.db):
            await self.into_space(user_id, room_id, recovering=True)

    async def import_roster(self, connector: Connector, login: store.Login,
                            contacts: list[RemoteContact]) -> RosterOutcome:
        """Ghosts for every contact; a portal for each one not matched to a Mercato user."""
        outcome = RosterOutcome()
        discovery = self.bridge.discovery
        matching = ContactImport(discovery.hasher.digest, discovery.limits)
        as_contacts: list[Contact] = []
        for position, contact in enumerate(contacts, 1):
            emails, phones = connector.identifiers(contact.remote_id)
            as_contacts.append(Contact(position, safe_label(contact.name) or contact.remote_id,
                                       phones=_valid(normalise_phone, (*phones, *contact.phones)),
                                       emails=_valid(normalise_email, (*emails,
                                                                       *contact.emails))))
        matching.add(as_contacts)
        matching.report.contacts = len(as_contacts)
        result = await discovery.finish_import(matching, login.user_id, source=connector.network)
        outcome.refused = result.refused
        owners: dict[int, str] = {}
        if not result.refused:
            digests = {c.position: self.digests(connector, c.emails, c.phones)
                       for c in as_contacts}
            found = await contacts_store.owners_of(self.db, [d for ds in digests.values()
                                                             for d in ds])
            for position, ds in digests.items():
                owner = next((found[d] for d in ds if d in found and found[d] != login.user_id),
                             None)
                if owner:
                    owners[position] = owner
        for contact, as_contact in zip(contacts, as_contacts, strict=True):
            owner = owners.get(as_contact.position)
            if owner is not None:
                await self.ensure_ghost(connector, contact)
                outcome.on_mercato.append((as_contact.label, owner,
                                           await self._open_chat(login.user_id, owner)))
                continue
            if len(outcome.portals) >= MAX_PORTALS_PER_IMPORT and await store.portal(
                    self.db, connector.network, login.user_id, contact.remote_id) is None:
                await self.ensure_ghost(connector, contact)
                outcome.later += 1
                continue
            await self.ensure_portal(connector, login, contact)
            outcome.portals.append(as_contact.label)
        return outcome

    async def _open_chat(self, user_id: str, other: str) -> str | None:
        """A native Matrix chat between the two (the one the bridge opened before, if any)."""
        try:
            return await self.bridge.spaces.open_chat(user_id, other)
        except MatrixRequestError as e:  # a link still lets them start one themselves
            log.warning("network.chat_not_opened", user_id=user_id, errcode=e.errcode)
            return None

    # -- moving over ----------------------------------------------------------------------

    async def check_moves(self, connectors: dict[str, Connector],
                          since_ms: int | None = None) -> int:
        """Tell both sides of every portal whose contact has opted in on Mercato: all
        portals (at start-up), or those matching opt-ins made since `since_ms`."""
        moved = 0
        if since_ms is not None:
            for digest, owner in await store.opted_in_since(self.db, since_ms):
                for portal in await store.unmoved_portals_of(self.db, digest):
                    moved += await self._maybe_moved(connectors, portal, owner)
            return moved
        after = ""
        while True:
            batch = await store.unmoved_portals(self.db, after, 500)
            if not batch:
                return moved
            after = batch[-1].room_id
            owners = await contacts_store.owners_of(self.db, [p.digest for p in batch
                                                              if p.digest])
            for portal in batch:
                if portal.digest in owners:
                    moved += await self._maybe_moved(connectors, portal, owners[portal.digest])

    async def _maybe_moved(self, connectors: dict[str, Connector], portal: store.Portal,
                           owner: str) -> int:
        connector = connectors.get(portal.network)
        if owner == portal.user_id or connector is None:
            return 0
        await self._moved(connector, portal, owner)
        return 1

    async def _moved(self, connector: Connector, portal: store.Portal, owner: str) -> None:
        chat = await self._open_chat(portal.user_id, owner)
        server = self.bridge.config.server_name
        where = (f"I opened a Matrix chat between you: {room_link(chat, server)} (accept the "
                 "invitation)" if chat else f"start a Matrix chat with them: {matrix_to(owner)}")
        text = (f"{portal.name} is on Mercato now as {owner}. Continue there — {where}. This "
                f"chat still reaches them on {connector.label} as long as they use it.")
        await self.bridge.outbox.record(Message(
            txn_id=f"mercato.contacts.moved.{portal.room_id}", room_id=portal.room_id,
            sender=portal.ghost_id, content={"msgtype": "m.notice", "body": text}, kind=NOTICE))
        dm_room = await self.db.fetchval("SELECT dm_room_id FROM bridge_user WHERE user_id=$1",
                                         owner)
        if dm_room:
            told = (f"{portal.user_id}, who writes to you on {connector.label} as "
                    f"{portal.remote_id}, is on Mercato too"
                    + (f": I opened a chat between you, {room_link(chat, server)} — accept the "
                       "invitation." if chat else f": {matrix_to(portal.user_id)}."))
            # If they left the chat with the bot, the outbox gives up on it (`outbox.parked`).
            await self.bridge.outbox.record(Message(
                txn_id=f"mercato.contacts.moved.{portal.room_id}.{owner}", room_id=dm_room,
                sender=self.bridge.bot.mxid, content={"msgtype": "m.notice", "body": told},
                kind=NOTICE))
        await store.set_moved(self.db, portal.room_id, owner)
        log.info("network.contact_moved", network=portal.network, user_id=portal.user_id,
                 moved_to=owner)


def _valid(normalise: Any, values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        try:
            out.append(normalise(value))
        except InvalidIdentifier:
            continue
    return tuple(dict.fromkeys(out))
