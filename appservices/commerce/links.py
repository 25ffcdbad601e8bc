"""Link rules for everything a shop writes that buyers read, and strict parsing of its URLs.

Links are what SMS fraud runs on. Posts, product URLs and descriptions, the shop's
description, its welcome, away and keyword replies, imported catalog rows and shared
cards all pass the same rules, so no door is left open beside the front one: a link
may point only to Mercato's own pages and to the shop's verified website, over https,
never through a shortener or a look-alike host. Sans I/O.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import phonenumbers

from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.shops import rules as shop_rules  # the module: rules uses clean_https_url
from appservices.commerce.shops import storage as store

# Link shorteners hide where a link leads: the very thing SMS fraud relies on.
SHORTENERS = frozenset({
    "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly",
    "cutt.ly", "shorturl.at", "rb.gy", "t.ly", "s.id", "tiny.cc", "bl.ink", "lnkd.in",
    "short.io", "v.gd", "qr.ae", "x.co", "soo.gd", "clck.ru", "shorte.st", "adf.ly",
})

# Clients linkify bare host names too (Element turns "evil.com/x" into a link). A bare
# name counts as a link when its last label is a country's domain (every region the
# phone-number library knows, plus the few country domains that are not regions) or one of
# these generic top-level domains; "example" and "test" are the reserved names. Two
# letters alone would also catch "Node.js", which no client linkifies.
COUNTRY_TLDS = frozenset(
    {region.lower() for region in phonenumbers.SUPPORTED_REGIONS}
    | {"uk", "eu", "su", "ac", "aq", "bv", "gs", "hm", "pn", "tf"})
GENERIC_TLDS = (
    "com", "net", "org", "info", "biz", "edu", "gov", "mil", "int", "name", "pro", "mobi",
    "app", "dev", "io", "shop", "store", "online", "site", "website", "web", "xyz", "top",
    "club", "live", "link", "click", "win", "vip", "icu", "buzz", "fun", "space", "tech",
    "page", "blog", "cloud", "digital", "email", "network", "world", "today", "life", "news",
    "market", "sale", "deals", "money", "finance", "bank", "pay", "gift", "gifts", "coupons",
    "delivery", "express", "support", "help", "services", "center", "group", "company",
    "business", "agency", "media", "social", "chat", "zone", "one", "asia", "africa", "eu",
    "example", "test",
)
_TLDS = "|".join(sorted(COUNTRY_TLDS | set(GENERIC_TLDS), key=lambda t: (-len(t), t)))
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_BARE = (rf"(?<![\w@./-])(?:{_LABEL}\.)+(?:{_TLDS})"
         r"(?![\w-])(?::\d{1,5})?(?:[/?#][^\s<>\"']*)?")
URL = re.compile(rf"(?i)\b(?:https?://|www\.)[^\s<>\"']+|{_BARE}")


class LinkRefused(CommerceError):
    """A link breaks the link rules: the same answer wherever the shop wrote it."""

    status = 422
    errcode = "MERCATO_POST_REFUSED"


@dataclass(frozen=True)
class LinkPolicy:
    """Where a shop's text may link: its verified site and Mercato's own pages."""

    allowed_hosts: tuple[str, ...]
    verified: bool


def policy_for(merchant: store.Merchant, mercato_hosts: tuple[str, ...]) -> LinkPolicy:
    hosts = list(mercato_hosts)
    if merchant.verified and merchant.verified_website:
        hosts.append(urlsplit(merchant.verified_website).hostname or "")
    return LinkPolicy(allowed_hosts=tuple(h for h in hosts if h), verified=merchant.verified)


def find_links(text: str) -> list[str]:
    """Everything in `text` a client could turn into a link."""
    return [url.rstrip(".,;:!?)") for url in URL.findall(text)]


def _host(url: str) -> str:
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        return (parts.hostname or "").rstrip(".").lower()
    except ValueError:  # a broken bracketed host: nothing to allow
        return url.lower()


def _is_within(host: str, allowed: str) -> bool:
    return host == allowed or host.endswith("." + allowed)


def _check_link(url: str, policy: LinkPolicy) -> None:
    host = _host(url)
    secure = url.lower().startswith("https://")
    if not secure and "://" in url:
        raise LinkRefused(f"The link {url} is not https://; links in posts must be secure.")
    if host in SHORTENERS:
        raise LinkRefused(f"The link {url} uses a link shortener, which hides where it "
                          "leads; link to the page itself.")
    if any(_is_within(host, allowed) for allowed in policy.allowed_hosts):
        if not secure:  # a bare name or www.: clients open it as http://
            raise LinkRefused(f"The link {url} is not https://; links in posts must be "
                              "secure.")
        return
    if host.startswith("xn--") or ".xn--" in host or any(
            shop_rules.name_skeleton(host) == shop_rules.name_skeleton(a)
            for a in policy.allowed_hosts):
        raise LinkRefused(f"The link {url} looks like one of your addresses but is a "
                          "different site; posts cannot carry look-alike links.")
    where = ", ".join(policy.allowed_hosts) or "Mercato's own pages"
    if not policy.verified:
        raise LinkRefused(f"The link {url} points outside Mercato and your shop has no "
                          "verified website yet; verify it to link to it.")
    raise LinkRefused(f"The link {url} points to {host}; posts may only link to {where}.")


def check_links(texts: list[str], policy: LinkPolicy) -> None:
    """Refuse any link that is not https to an allowed host, with the reason why."""
    for text in texts:
        for url in find_links(text):
            _check_link(url, policy)


# -- strict URLs -------------------------------------------------------------------------

_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NEVER_IN_URLS = "\"'<>\\`{}|^"


def _named(ch: str) -> str:
    return f"'{ch}'" if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"


def _clean_host(field: str, host: str) -> str:
    try:
        return f"[{ipaddress.IPv6Address(host).compressed}]"
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidInput(field, f"has a host name that is not valid ({host})") from None
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise InvalidInput(field, f"has a host name that is not valid ({host})")
    return ascii_host.rstrip(".")


def _encode_non_ascii(part: str) -> str:
    return "".join(ch if ord(ch) < 128 else quote(ch, safe="") for ch in part)


def clean_https_url(field: str, value: Any, limit: int = 500) -> str:
    """One clean absolute https:// URL, normalised; empty stays empty.

    Refused: anything but https, white space, quotes, angle brackets, backslashes and
    control or invisible characters, a user name before the host (https://shop.example@
    evil.example leads to evil.example), a bad host or port, and broken %-escapes.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    text = value.strip()
    if not text:
        return ""
    if len(text) > limit:
        raise InvalidInput(field, f"is {len(text)} characters long; the limit is {limit}")
    if not text.lower().startswith("https://"):
        raise InvalidInput(field, "must be an absolute https:// address")
    bad = next((ch for ch in text if ch.isspace() or ch in _NEVER_IN_URLS
                or unicodedata.category(ch).startswith("C")), None)
    if bad is not None:
        raise InvalidInput(field, f"must be one https:// address; {_named(bad)} cannot be "
                                  "part of it (write it %-encoded)")
    if _BAD_PERCENT.search(text):
        raise InvalidInput(field, "has a % that is not followed by two hexadecimal digits")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        raise InvalidInput(field, "has a host in [ ] that is not an IPv6 address") from None
    if parts.scheme.lower() != "https" or not host:
        raise InvalidInput(field, "must be an absolute https:// address")
    if "@" in parts.netloc:
        raise InvalidInput(field, "must not contain a user name or password")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidInput(field, "has a port that is not a number from 1 to 65535")
    netloc = _clean_host(field, host)
    if port not in (None, 443):
        netloc = f"{netloc}:{port}"
    return urlunsplit(("https", netloc, *(_encode_non_ascii(p) for p in (
        parts.path, parts.query, parts.fragment))))
