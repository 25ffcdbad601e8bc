"""The link rules every shop text follows, and strict URL parsing. Pure functions."""

from __future__ import annotations

import pytest

from appservices.commerce import links
from appservices.commerce.catalog import products
from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.links import LinkPolicy, LinkRefused, check_links, clean_https_url
from appservices.commerce.shops import storage as store
from mercato.types import MerchantSlug, UserID

VERIFIED = LinkPolicy(allowed_hosts=("shops.example.org", "greengrocer.example"), verified=True)
UNVERIFIED = LinkPolicy(allowed_hosts=("shops.example.org",), verified=False)


@pytest.mark.parametrize(("text", "found"), [
    ("see https://evil.example/login now", ["https://evil.example/login"]),
    ("see evil.example/login now", ["evil.example/login"]),
    ("go to evil.com.", ["evil.com"]),
    ("www.evil.example/x", ["www.evil.example/x"]),
    ("bücher.de/angebot", ["bücher.de/angebot"]),
    ("evil.co:8443/x", ["evil.co:8443/x"]),
    # Not links: an e-mail address, numbers, abbreviations, a file name with another ending.
    ("write to orders@greengrocer.example", []),
    ("1.5 kg for 2.90, v2.0", []),
    ("e.g. apples, i.e. fruit", []),
    ("manual.pdf inside", []),
    # Two letters that are no country's domain: clients leave these alone.
    ("runs on Node.js and the .js files", []),
    ("shop.co.uk/x and evil.ru", ["shop.co.uk/x", "evil.ru"]),
    ("data:text/html;base64,PHN", []),
])
def test_links_are_found_as_clients_linkify_them(text: str, found: list[str]) -> None:
    assert links.find_links(text) == found


@pytest.mark.parametrize(("text", "sentence"), [
    ("Buy at https://evil.example/login",
     "The link https://evil.example/login points to evil.example; posts may only link to "
     "shops.example.org, greengrocer.example."),
    ("Buy at evil.example/login",
     "The link evil.example/login points to evil.example; posts may only link to "
     "shops.example.org, greengrocer.example."),
    ("https://greengrocer.example@evil.example/x",
     "The link https://greengrocer.example@evil.example/x points to evil.example; posts may "
     "only link to shops.example.org, greengrocer.example."),
    ("https://bit.ly/3xYz", "The link https://bit.ly/3xYz uses a link shortener, which hides "
                            "where it leads; link to the page itself."),
    ("http://greengrocer.example/p",
     "The link http://greengrocer.example/p is not https://; links in posts must be secure."),
    ("greengrocer.example/p",
     "The link greengrocer.example/p is not https://; links in posts must be secure."),
    ("https://greengr0cer.example/deal",
     "The link https://greengr0cer.example/deal looks like one of your addresses but is a "
     "different site; posts cannot carry look-alike links."),
])
def test_refusals_say_which_link_and_why(text: str, sentence: str) -> None:
    with pytest.raises(LinkRefused) as refused:
        check_links(["fine text", text], VERIFIED)
    assert refused.value.message == sentence
    assert (refused.value.status, refused.value.errcode) == (422, "MERCATO_POST_REFUSED")


def test_an_unverified_shop_links_only_to_mercato() -> None:
    check_links(["https://shops.example.org/p/green/ORANGE"], UNVERIFIED)
    with pytest.raises(LinkRefused, match="has no verified website yet"):
        check_links(["evil.example/login"], UNVERIFIED)


def test_the_verified_site_and_its_subdomains_are_allowed() -> None:
    check_links(["Order at https://greengrocer.example/p/1 or https://m.greengrocer.example",
                 "orders@greengrocer.example, 1.5 kg"], VERIFIED)


def test_the_policy_follows_the_verified_website() -> None:
    shop = store.Merchant(slug=MerchantSlug("green"), name="Green", description="",
                          website="https://greengrocer.example", mxid=UserID("@shop_green:x"),
                          owner_mxid=UserID("@o:x"), status="approved", created_at=0)
    assert links.policy_for(shop, ("shops.example.org",)) == UNVERIFIED
    verified = store.Merchant(**{**shop.__dict__, "verified_at": 1,
                                 "verified_website": "https://greengrocer.example"})
    assert links.policy_for(verified, ("shops.example.org",)) == VERIFIED


@pytest.mark.parametrize(("given", "kept"), [
    ("https://shop.example/x", "https://shop.example/x"),
    ("  https://Shop.Example:443/Mugs?c=1#top ", "https://shop.example/Mugs?c=1#top"),
    ("https://shop.example:8443/a%20b", "https://shop.example:8443/a%20b"),
    ("https://bücher.de/café", "https://xn--bcher-kva.de/caf%C3%A9"),
    ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ("", ""),
])
def test_clean_urls_are_kept_normalised(given: str, kept: str) -> None:
    assert clean_https_url("url", given) == kept


@pytest.mark.parametrize(("given", "error"), [
    ('https://shop.example/x" onmouseover="alert(1)',
     "url: must be one https:// address; '\"' cannot be part of it (write it %-encoded)"),
    ("https://shop.example/x'y", "url: must be one https:// address; ''' cannot be part of it "
                                 "(write it %-encoded)"),
    ("https://shop.example/<b>", "url: must be one https:// address; '<' cannot be part of it "
                                 "(write it %-encoded)"),
    ("https://shop.example\\@evil.example", "url: must be one https:// address; '\\' cannot "
                                            "be part of it (write it %-encoded)"),
    ("https://shop.example/a b", "url: must be one https:// address; U+0020 cannot be part of "
                                 "it (write it %-encoded)"),
    ("https://shop.example/\u202egnp", "url: must be one https:// address; U+202E cannot be "
                                       "part of it (write it %-encoded)"),
    ("https://shop.example/\x00", "url: must be one https:// address; U+0000 cannot be part "
                                  "of it (write it %-encoded)"),
    ("https://shop.example@evil.example/login", "url: must not contain a user name or "
                                                "password"),
    ("https://user:pw@shop.example/", "url: must not contain a user name or password"),
    ("http://shop.example/x", "url: must be an absolute https:// address"),
    ("javascript:alert(1)", "url: must be an absolute https:// address"),
    ("//shop.example/x", "url: must be an absolute https:// address"),
    ("https:///x", "url: must be an absolute https:// address"),
    ("https://shop.example:0/", "url: has a port that is not a number from 1 to 65535"),
    ("https://shop.example:65536/", "url: has a port that is not a number from 1 to 65535"),
    ("https://shop.example:http/", "url: has a port that is not a number from 1 to 65535"),
    ("https://shop.example/%zz", "url: has a % that is not followed by two hexadecimal digits"),
    ("https://shop.example/100%", "url: has a % that is not followed by two hexadecimal "
                                  "digits"),
    ("https://shop_x.example/", "url: has a host name that is not valid (shop_x.example)"),
    ("https://-shop.example/", "url: has a host name that is not valid (-shop.example)"),
    ("https://[zz]/", "url: has a host in [ ] that is not an IPv6 address"),
])
def test_unclean_urls_are_refused(given: str, error: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_https_url("url", given)
    assert refused.value.message == error


def test_a_product_url_is_stored_normalised() -> None:
    fields = products.validate_product({"sku": "A-1", "title": "Mug", "price": "5.00",
                                        "currency": "EUR", "url": "https://Shop.Example/mug"})
    assert fields["url"] == "https://shop.example/mug"


def test_every_text_of_a_product_is_checked() -> None:
    assert products.link_texts({"title": "T", "description": "D", "url": "U",
                                "tags": ["a", "b"], "price": "1.00"}) == ["T", "D", "U", "a", "b"]


def test_the_share_quota_says_when_it_resets() -> None:
    products.check_share_quota(2, 1, 1_000, 5_000)
    with pytest.raises(CommerceError) as refused:
        products.check_share_quota(2, 2, 1_795_612_605_000, 1_795_612_700_000)
    assert (refused.value.status, refused.value.errcode) == (429, "MERCATO_QUOTA_EXCEEDED")
    assert refused.value.message == (
        "Your shop may share 2 product cards a day and has used all of them. The next share "
        "is possible after 2026-11-26 13:16 UTC. The operator can raise the quota.")
