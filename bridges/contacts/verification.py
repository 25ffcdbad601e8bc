"""Checking that a phone number or email someone opts in with is theirs.

Two ways, in this order:

- the homeserver already verified it: Synapse's admin API lists the user's third-party
  IDs with when they were validated (read with the bridge's as_token, which works once
  the operator has made the bridge bot a server admin; otherwise this way is skipped);
- the bridge sends a code, by mail (SMTP) or by SMS (an HTTP gateway), and the user
  types `verify <code>`. Codes expire, allow a few wrong tries, are compared in
  constant time and stored only as an HMAC bound to the user and the identifier.

The senders get the plain identifier for the moment they send; nothing here keeps or
logs it.
"""

from __future__ import annotations

import asyncio
import secrets
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import aiohttp

from bridges.contacts.config import ContactsConfig
from bridges.contacts.importers import Medium
from bridges.contacts.normalise import InvalidIdentifier, normalise_email, normalise_phone
from mercato.logging import get_logger
from mercato.matrix import paths

log = get_logger(__name__)

CODE_DIGITS = 6
CODE_TTL_MS = 15 * 60 * 1000
MAX_ATTEMPTS = 5
# Codes sent per day: per user, and to any one identifier (no one is flooded with codes).
CODES_PER_USER_PER_DAY = 10
CODES_PER_IDENTIFIER_PER_DAY = 3


class SendFailed(Exception):
    """The code could not be sent; the message says why, without the identifier."""


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def code_text(code: str, server_name: str) -> str:
    return (f"Your Mercato code is {code}. Type `verify {code}` in your chat with the "
            f"contacts bot on {server_name}. It is valid for "
            f"{CODE_TTL_MS // 60_000} minutes. If you did not ask for it, ignore this.")


def not_configured(medium: Medium) -> str:
    """What a user is told when the bridge cannot send codes of this kind."""
    if medium is Medium.PHONE:
        what, key = "phone numbers", "contacts.sms_webhook_url (an SMS gateway)"
    else:
        what, key = "email addresses", "contacts.smtp.host and contacts.smtp.from_address"
    return (f"This server cannot verify {what} yet: its operator has not set {key} in "
            "mercato.yaml, and your homeserver account does not list it as verified. "
            "Nothing was kept. Ask the operator, or add it to your account in your Matrix "
            "client's settings and try again.")


@dataclass(frozen=True)
class CodeSender:
    """Sends codes by the channels the operator configured."""

    config: ContactsConfig
    server_name: str
    http: Callable[[], aiohttp.ClientSession]

    def __post_init__(self) -> None:
        missing = [key for medium, key in ((Medium.PHONE, "contacts.sms_webhook_url"),
                                           (Medium.EMAIL, "contacts.smtp.host"))
                   if not self.can_send(medium)]
        if missing:
            log.warning("verification.not_configured", missing=missing,
                        hint="opt-ins by that medium need the homeserver's verification "
                             "until these are set in mercato.yaml")

    def can_send(self, medium: Medium) -> bool:
        if medium is Medium.PHONE:
            return bool(self.config.sms_webhook_url)
        return bool(self.config.smtp.host)

    async def send(self, medium: Medium, address: str, code: str) -> None:
        text = code_text(code, self.server_name)
        if medium is Medium.PHONE:
            await self._sms(address, text)
        else:
            await asyncio.to_thread(self._mail, address, text)
        log.info("verification.sent", medium=medium.value)

    async def _sms(self, number: str, text: str) -> None:
        headers = {}
        if self.config.sms_webhook_token:
            headers["Authorization"] = f"Bearer {self.config.sms_webhook_token}"
        try:
            async with self.http().post(self.config.sms_webhook_url,
                                        json={"to": number, "text": text}, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=20)) as resp:
                if resp.status >= 300:
                    raise SendFailed(f"the SMS gateway answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SendFailed(f"the SMS gateway could not be reached ({type(e).__name__})") \
                from None

    def _mail(self, address: str, text: str) -> None:
        smtp = self.config.smtp
        message = EmailMessage()
        message["From"] = smtp.from_address
        message["To"] = address
        message["Subject"] = "Your Mercato code"
        message.set_content(text)
        try:
            client: smtplib.SMTP
            if smtp.security == "tls":
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=20,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=20)
            with client:
                if smtp.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.username:
                    client.login(smtp.username, smtp.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as e:
            raise SendFailed(f"the mail server did not take it ({type(e).__name__})") from None


def _threepid(medium: str, address: str) -> tuple[Medium, str] | None:
    try:
        if medium == "email":
            return Medium.EMAIL, normalise_email(address)
        if medium == "msisdn":
            return Medium.PHONE, normalise_phone("+" + address.lstrip("+"), None)
    except InvalidIdentifier:
        return None
    return None


@dataclass
class HomeserverThreepids:
    """A user's third-party IDs the homeserver validated, from Synapse's admin API."""

    homeserver_url: str
    server_name: str
    as_token: str
    http: Callable[[], aiohttp.ClientSession]
    _warned: bool = False

    async def verified(self, user_id: str) -> set[tuple[Medium, str]]:
        """Empty when the homeserver lists none, or will not tell (the bot is no admin)."""
        if not user_id.endswith(f":{self.server_name}"):
            return set()  # the admin API knows this server's users only
        url = paths.url(self.homeserver_url, paths.synapse_path("admin", "v2", "users", user_id))
        try:
            async with self.http().get(url, headers={
                    "Authorization": f"Bearer {self.as_token}"},
                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    if not self._warned:
                        self._warned = True
                        log.info("verification.homeserver_threepids_unavailable",
                                 status=resp.status, hint="make the contacts bot a server "
                                 "admin to accept identifiers the homeserver verified")
                    return set()
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            log.warning("verification.homeserver_threepids_failed", error=type(e).__name__)
            return set()
        found: set[tuple[Medium, str]] = set()
        for entry in body.get("threepids") or []:
            if isinstance(entry, dict) and entry.get("validated_at"):
                parsed = _threepid(str(entry.get("medium")), str(entry.get("address")))
                if parsed:
                    found.add(parsed)
        return found
