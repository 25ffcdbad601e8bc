"""Phone numbers to E.164 and email addresses to lower case. Pure.

An identifier that cannot be normalised raises `InvalidIdentifier` with a reason
fit to show the user; the reason never repeats the value.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

MAX_RAW_PHONE_CHARS = 64
MAX_EMAIL_CHARS = 254
_ATOM = r"[^@\s\"(),:;<>\[\]\\]"
_EMAIL = re.compile(rf"^{_ATOM}{{1,64}}@{_ATOM}+\.[^@\s\"(),:;<>\[\]\\.]+$")
_REGION = re.compile(r"^[A-Z]{2}$")


class InvalidIdentifier(ValueError):
    """Why a phone number or email cannot be used; safe to show (names no value)."""


def parse_region(value: str) -> str:
    """A country code for numbers written without +country, such as NO or US."""
    region = value.strip().upper()
    if not _REGION.match(region) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidIdentifier(f"'{value[:10]}' is not a country code; write two letters "
                                "such as NO, DE or US")
    return region


def normalise_phone(raw: str, region: str | None = None) -> str:
    """The number in E.164 (+4741234567); `region` places numbers without +country."""
    text = raw.strip()
    if not text:
        raise InvalidIdentifier("the phone number is empty")
    if len(text) > MAX_RAW_PHONE_CHARS:
        raise InvalidIdentifier("the phone number is too long")
    if text[:4].lower() == "tel:":
        text = "tel:" + text[4:]  # phonenumbers reads RFC 3966 only with a lower-case scheme
    if not any(c.isdigit() for c in text):
        raise InvalidIdentifier("there is no phone number in it")
    try:
        number = phonenumbers.parse(text, region or None)
    except NumberParseException as e:
        if e.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if region:
                raise InvalidIdentifier("the country code is not valid") from None
            raise InvalidIdentifier("the number has no country code; set your region "
                                    "(for example: region NO) or write it as +47…") from None
        if e.error_type in (NumberParseException.TOO_SHORT_NSN,
                            NumberParseException.TOO_SHORT_AFTER_IDD):
            raise InvalidIdentifier("the phone number is too short") from None
        if e.error_type == NumberParseException.TOO_LONG:
            raise InvalidIdentifier("the phone number is too long") from None
        raise InvalidIdentifier("it is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("it is not a valid phone number"
                                + ("" if region or text.startswith(("+", "00", "tel:+"))
                                   else " (no country code given)"))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """The address trimmed and lower-cased (as Matrix identity servers compare them)."""
    text = raw.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    text = text.strip().strip("<>").lower()
    if not text:
        raise InvalidIdentifier("the email address is empty")
    if len(text) > MAX_EMAIL_CHARS or not _EMAIL.match(text):
        raise InvalidIdentifier("it is not an email address")
    return text


def msisdn_address(e164: str) -> str:
    """The Matrix `msisdn` form of a number: E.164 without the plus (4741234567)."""
    return e164.removeprefix("+")
