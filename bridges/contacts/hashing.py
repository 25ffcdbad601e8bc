"""The two hashes of an identifier. Pure.

1. The identity-service lookup hash (Matrix spec, identity service v2 `/lookup`):
   unpadded URL-safe base64 of SHA-256 over `"<address> <medium> <pepper>"`, where a
   phone's address is its E.164 digits without the plus. Clients send these.
2. What the bridge stores and compares: HMAC-SHA256 under the server's secret, of the
   lookup hash. Chaining them lets one stored value answer both a file import (the
   bridge computes the lookup hash itself) and a spec lookup (the client did), while
   the database alone — without the secret — holds nothing a dictionary of phone
   numbers could be run against. The pepper must therefore stay fixed: changing it
   would need every plain identifier, and those are never kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import NewType

from bridges.contacts.importers.model import Medium
from bridges.contacts.normalise import msisdn_address

LookupHash = NewType("LookupHash", str)  # spec: base64url(sha256("address medium pepper"))
StoredDigest = NewType("StoredDigest", str)  # hex HMAC-SHA256(secret, lookup hash)


def lookup_hash(address: str, medium: Medium | str, pepper: str) -> LookupHash:
    """The spec's hash; `address` is an email or a phone's digits (no plus)."""
    digest = hashlib.sha256(f"{address} {medium} {pepper}".encode()).digest()
    return LookupHash(base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def address_of(medium: Medium, normalised: str) -> str:
    """The spec's address of a normalised identifier (E.164 → digits without +)."""
    return msisdn_address(normalised) if medium is Medium.PHONE else normalised


class IdentifierHasher:
    """Turns identifiers or clients' lookup hashes into what the database holds."""

    def __init__(self, secret: str, pepper: str) -> None:
        self._key = secret.encode("utf-8")
        self.pepper = pepper

    def lookup_hash(self, medium: Medium, normalised: str) -> LookupHash:
        return lookup_hash(address_of(medium, normalised), medium, self.pepper)

    def stored(self, hashed: LookupHash | str) -> StoredDigest:
        return StoredDigest(hmac.new(self._key, hashed.encode("ascii", errors="replace"),
                                     hashlib.sha256).hexdigest())

    def digest(self, medium: Medium, normalised: str) -> StoredDigest:
        return self.stored(self.lookup_hash(medium, normalised))

    def code_hash(self, user_id: str, digest: str, code: str) -> str:
        """A verification code as stored: keyed, and bound to who asked and for what."""
        message = "\0".join(("verification-code", user_id, digest, code)).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
