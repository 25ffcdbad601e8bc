"""Shared-secret registration: the MAC Synapse checks, computed independently here."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mercato.matrix.admin import registration_mac


def _documented_mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    # Synapse admin API docs, "Shared-Secret Registration": HMAC-SHA1 keyed with the
    # shared secret over nonce, user, password and "admin"/"notadmin", NUL-separated.
    mac = hmac.new(key=secret.encode("utf8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf8"))
    mac.update(b"\x00")
    mac.update(user.encode("utf8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize(("nonce", "user", "password"), [
    ("thisisanonce", "pepper_roni", "pizza"),
    ("n", "shop_demo", "correct horse battery staple"),
    ("nonce-ü", "bäcker", "pässwörd🔑"),
])
def test_mac_matches_the_documented_algorithm(nonce: str, user: str, password: str,
                                              admin: bool) -> None:
    secret = "registration-shared-secret"
    assert registration_mac(secret, nonce, user, password, admin) == \
        _documented_mac(secret, nonce, user, password, admin)


def test_known_value() -> None:
    # Computed once with the documented algorithm; pins the output format (lowercase hex).
    expected = hmac.new(b"s3cret", b"abc\x00alice\x00pw\x00notadmin", hashlib.sha1).hexdigest()
    mac = registration_mac("s3cret", "abc", "alice", "pw", False)
    assert mac == expected
    assert len(mac) == 40 and mac == mac.lower()


def test_every_input_changes_the_mac() -> None:
    base = registration_mac("secret", "nonce", "alice", "pw", False)
    assert registration_mac("other", "nonce", "alice", "pw", False) != base
    assert registration_mac("secret", "nonce2", "alice", "pw", False) != base
    assert registration_mac("secret", "nonce", "alicf", "pw", False) != base
    assert registration_mac("secret", "nonce", "alice", "pw2", False) != base
    assert registration_mac("secret", "nonce", "alice", "pw", True) != base


def test_fields_cannot_be_shifted_across_the_separator() -> None:
    assert registration_mac("secret", "n", "ab", "c", False) != \
        registration_mac("secret", "n", "a", "bc", False)
