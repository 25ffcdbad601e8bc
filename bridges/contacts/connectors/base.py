"""What a network connector is: the one interface the bridge core talks to.

A connector knows one network (XMPP, …): how to read a user's address on it, how to
log in, what a roster holds, how to send and what arrives. It knows nothing of Matrix.
The core (`portals`, `messages`, `manager`) knows nothing of the network: it keeps the
logins (encrypted), the ghosts, the portal rooms and the message mapping for every
connector alike. docs/connectors.md says how to add a network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NewType, Protocol

from mercato.db import UpgradeTable

# A contact's address on its network, normalised (for XMPP: the bare JID).
RemoteID = NewType("RemoteID", str)
# A message's ID on its network (for XMPP: the stanza's origin-id or id).
RemoteMessageID = NewType("RemoteMessageID", str)


class LoginFailed(Exception):
    """The network refused the login; the message says why, for the user to read."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # True when the network could not be reached (try again later), False when the
        # credentials themselves were refused.
        self.retry = retry


class BadAddress(ValueError):
    """What the user typed is not an address on this network; the message says why."""


@dataclass(frozen=True)
class RemoteContact:
    remote_id: RemoteID
    name: str  # what the user's roster (or the contact's profile) calls them; "" if nothing
    # Identifiers the contact is known by, normalised, for the private matching.
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    avatar: bytes | None = None
    avatar_type: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message: where to fetch it, and what it claims to be."""

    url: str
    name: str = ""
    mimetype: str = ""


@dataclass(frozen=True)
class IncomingMessage:
    contact: RemoteID
    message_id: RemoteMessageID
    text: str
    reply_to: RemoteMessageID | None = None
    attachment: Attachment | None = None
    timestamp_ms: int | None = None  # when it was sent, if the network says (offline storage)
    # The user wrote it, from another of their apps on the network (`contact` is whom to).
    from_me: bool = False
    # Where it stands in the account's history on the server (XMPP: its archive ID). The
    # core keeps the last one it recorded, for the session to catch up from (`position`).
    position: str | None = None


@dataclass(frozen=True)
class OutgoingFile:
    """A file a Matrix user sent, read from the media repository."""

    name: str
    mimetype: str
    data: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    contact: RemoteID
    message_id: RemoteMessageID  # chosen by the core, so a resend carries the same ID
    text: str
    reply_to: RemoteMessageID | None = None
    # With a file, `text` is what to send if the network cannot take the file.
    file: OutgoingFile | None = None


class SessionEvents(Protocol):
    """What a session reports to the core. Each call may take its time (it persists)."""

    async def connected(self) -> None: ...

    async def disconnected(self, reason: str, *, refused: bool = False) -> None:
        """The connection dropped (the session reconnects by itself), or the network
        refused the stored credentials (`refused`: it stops until the user logs in)."""

    async def message(self, message: IncomingMessage) -> None: ...

    async def typing(self, contact: RemoteID, typing: bool) -> None: ...

    async def presence(self, contact: RemoteID, online: bool) -> None: ...

    async def position(self) -> str | None:
        """Where in the account's history the last message the core recorded stands ("":
        before the first one; None: never read): what the session catches up from."""

    async def reached(self, position: str) -> None:
        """The session read the history up to here without a message to bridge (one the
        bridge sent itself, or the end of the history at the first login)."""


class Session(ABC):
    """One user's login to the network, kept connected while the bridge runs."""

    @property
    @abstractmethod
    def account(self) -> RemoteID:
        """The user's own address on the network."""

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    async def connect(self, timeout: float) -> None:
        """Connect and log in; raises LoginFailed. Afterwards it reconnects by itself."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Log out and stay out."""

    @abstractmethod
    async def roster(self) -> list[RemoteContact]: ...

    @abstractmethod
    async def send(self, message: OutgoingMessage) -> None:
        """Hand a message to the network; raises when it could not be handed over."""

    async def set_typing(self, contact: RemoteID, typing: bool) -> None:  # noqa: B027
        """Tell the contact the user is typing; networks without it ignore it."""

    async def set_presence(self, state: str) -> None:  # noqa: B027
        """Show the user's Matrix presence (`online`, `unavailable` or `offline`) to their
        contacts, the session staying connected; networks without it ignore it."""


@dataclass(frozen=True)
class CredentialField:
    name: str
    help: str
    secret: bool = False


class Connector(ABC):
    """A network: its name, its settings and its sessions. One instance per bridge."""

    network: str = ""  # lower case; part of ghost IDs and command names, never changed
    label: str = ""  # how users call the network, e.g. "XMPP"
    # What `<network> login` asks for, in order; the first is the user's own address.
    credentials: tuple[CredentialField, ...] = ()
    # The connector's own tables, if it keeps any (its own version table).
    upgrade_table: UpgradeTable | None = None

    def __init__(self, settings: Mapping[str, Any]) -> None:
        """`settings` is the connector's section of contacts.networks; raise ConfigError."""
        self.raw_settings = dict(settings)

    @property
    def enabled(self) -> bool:
        return True

    @property
    def max_file_bytes(self) -> int:
        """Largest file from the network copied into the media repository."""
        return 20 * 1024 * 1024

    @property
    def files_from_private_addresses(self) -> bool:
        """Whether file links may point at loopback or private addresses (tests only):
        otherwise a contact could make the bridge fetch from inside the operator's network."""
        return False

    @abstractmethod
    def parse_address(self, text: str) -> RemoteID:
        """A contact's address as the user typed it, normalised; raises BadAddress."""

    @abstractmethod
    def session(self, credentials: Mapping[str, str], events: SessionEvents) -> Session:
        """A session for these credentials (not yet connected)."""

    def identifiers(self, remote_id: RemoteID) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The (emails, phones) an address itself is, for matching (XMPP: the JID)."""
        return (), ()
