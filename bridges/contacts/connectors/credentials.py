"""Logins to other networks, encrypted at rest.

Fernet (AES-128-CBC with HMAC-SHA256) under a key derived with HKDF from
`contacts.credentials_secret`, bound to the user and the network: a row copied to
another user's login does not decrypt.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Unreadable(Exception):
    """Stored credentials that this secret cannot decrypt (the secret changed)."""


class Vault:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("utf-8")

    def _fernet(self, network: str, user_id: str) -> Fernet:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mercato contacts credentials",
                   info=f"{network}\n{user_id}".encode()).derive(self._secret)
        return Fernet(base64.urlsafe_b64encode(key))

    def seal(self, network: str, user_id: str, credentials: Mapping[str, str]) -> str:
        plain = json.dumps(dict(credentials)).encode("utf-8")
        return self._fernet(network, user_id).encrypt(plain).decode("ascii")

    def open(self, network: str, user_id: str, sealed: str) -> dict[str, str]:
        try:
            plain = self._fernet(network, user_id).decrypt(sealed.encode("ascii"))
        except (InvalidToken, ValueError):
            raise Unreadable(f"the stored {network} login of {user_id} cannot be decrypted "
                             "with contacts.credentials_secret") from None
        return dict(json.loads(plain))
