"""Ways round the link rules and loose URLs that were tried (issue 15), refused at every door.

Each shop-supplied text that buyers read goes through the same rules as a post; each URL
field a shop supplies goes through the same strict parser. No network: the doors are the
validators and the catalog reader the API calls (the API itself: tests/integration/
test_link_rules.py).
"""

from __future__ import annotations

import io

import pytest

from appservices.commerce.campaigns import rules as campaigns
from appservices.commerce.catalog import products
from appservices.commerce.catalog.import_file import CatalogFile
from appservices.commerce.links import LinkPolicy, LinkRefused, check_links
from appservices.commerce.shops import rules as shop_rules
from mercato.values import InvalidValue

POLICY = LinkPolicy(allowed_hosts=("shops.example.org", "greengrocer.example"), verified=True)

# Text that clients show as a link to another site.
BYPASSES = [
    "https://evil.example/login",
    "evil.example/login",
    "Evil.Example/login",
    "www.evil.example",
    "http://evil.example",
    "https://greengrocer.example@evil.example/login",
    "https://greengrocer.example.evil.example/",
    "https://evil.example:443/x",
    "https://evil.com",
    "evil.com/x",
    "shop.xyz",
    "bit.ly/3xYz",
    "https://xn--grengrocer-7db.example/",
    "see (https://evil.example/x).",
    "bücher.de/angebot",
]

# URL fields: what must never be stored.
UNCLEAN_URLS = [
    'https://greengrocer.example/x" onmouseover="alert(1)',
    "https://greengrocer.example/x' onfocus='alert(1)",
    "https://greengrocer.example/<script>",
    "https://greengrocer.example@evil.example",
    "https://user:pw@greengrocer.example/",
    "https://greengrocer.example\\@evil.example/",
    "https://greengrocer.example/\u202egnp.exe",
    "https://greengrocer.example/\u200b",
    "https://greengrocer.example/\x00",
    "https://greengrocer.example/a b",
    "https://greengrocer.example:0/",
    "https://greengrocer.example:65536/",
    "https://greengrocer.example/%zz",
    "https://greengrocer.example/%",
    "https://gr_eengrocer.example/",
    "https://[::1/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.example/x",
    "http://greengrocer.example/",
]


@pytest.mark.parametrize("link", BYPASSES)
def test_no_link_to_another_site_gets_through(link: str) -> None:
    for text in (link, f"Cheaper at {link} today", f"{link}\nsecond line"):
        with pytest.raises(LinkRefused):
            check_links(["plain words", text], POLICY)


@pytest.mark.parametrize("url", UNCLEAN_URLS)
def test_no_unclean_url_is_stored_anywhere(url: str) -> None:
    with pytest.raises(InvalidValue) as product:
        products.validate_product({"sku": "A", "title": "T", "price": "1.00",
                                   "currency": "EUR", "url": url})
    assert product.value.field == "url"
    with pytest.raises(InvalidValue) as campaign:
        campaigns.validate_fields("text", {"title": "T", "text": "x", "link": url})
    assert campaign.value.field == "link"
    with pytest.raises(InvalidValue) as website:
        shop_rules.validate_website(url)
    assert website.value.field == "website"


@pytest.mark.parametrize("url", UNCLEAN_URLS)
def test_no_unclean_url_is_imported(url: str) -> None:
    quoted = url.replace('"', '""')
    data = f'sku,title,price,currency,url\nA-1,Mug,5.00,EUR,"{quoted}"\n'.encode()
    (row,) = list(CatalogFile(io.BytesIO(data), link_policy=POLICY))
    assert row.fields is None and row.refused.startswith("url: "), row


@pytest.mark.parametrize("link", BYPASSES)
def test_no_imported_row_links_to_another_site(link: str) -> None:
    data = f'sku,title,description,price,currency\nA-1,Mug,"Also at {link}",5.00,EUR\n'.encode()
    (row,) = list(CatalogFile(io.BytesIO(data), link_policy=POLICY))
    assert row.fields is None and row.refused.startswith("The link "), row
