"""Domain proof: the shop publishes a token on its HTTPS website and becomes verified.

The website is a local HTTPS server with a self-signed certificate that the session
network trusts (commerce.domain_proof_ca_file); a second certificate it does not
trust shows that the check does not accept just any TLS server.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import CommerceApi, new_user, unique_slug
from tests.integration.local_https import (
    WELL_KNOWN,
    Certificate,
    self_signed_certificate,
    shop_website,
)


async def test_domain_proof_verifies_the_shop(network: RunningNetwork,
                                              http: aiohttp.ClientSession,
                                              shop_certificate: Certificate) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    as_owner = api.acting_as(owner.user_id)
    slug = unique_slug("proof")
    shop_mxid = f"@shop_{slug}:localhost"

    async with shop_website(shop_certificate) as website:
        # The port is part of the website, and of where the proof is fetched.
        applied = await api.apply(owner.user_id, slug, f"Proof Shop {slug[-8:]}",
                                  website=f"{website.url}/")
        assert applied["website"] == website.url
        await api.approve(slug)

        early = await api.post(f"/shops/{slug}/domain-proof/check", as_owner)
        assert early.status == 409 and early.errcode == "MERCATO_NO_DOMAIN_PROOF", early
        assert early.error == "Start the domain proof first; it gives you the token to publish."

        started = await api.post(f"/shops/{slug}/domain-proof", as_owner)
        assert started.status == 200, started
        token, url = started.body["token"], started.body["url"]
        assert url == f"{website.url}{WELL_KNOWN}"
        assert token.startswith("mercato-verify-") and len(token) > 30
        again = await api.post(f"/shops/{slug}/domain-proof", as_owner)
        assert again.body["token"] == token, "starting again keeps the published token"

        before = await api.shop(slug)
        # Nothing published yet: the check says where it looked and what it got.
        missing = await api.post(f"/shops/{slug}/domain-proof/check", as_owner)
        assert missing.status == 422 and missing.errcode == "MERCATO_DOMAIN_PROOF_UNREACHABLE"
        assert missing.error.startswith(f"Could not read {url}: HTTP 404."), missing
        # The wrong token: refused, and the shop is not verified.
        website.published = "mercato-verify-somebody-elses-token\n"
        wrong = await api.post(f"/shops/{slug}/domain-proof/check", as_owner)
        assert wrong.status == 422 and wrong.errcode == "MERCATO_DOMAIN_PROOF_MISMATCH", wrong
        assert wrong.error == f"{url} does not contain the token {token}."
        assert await api.shop(slug) == before
        profile = await owner.request("GET", f"/_matrix/client/v3/profile/{quote(shop_mxid)}")
        assert not profile["displayname"].endswith("✓")
        assert website.requests == 2
        failures = [e["detail"] for e in (await api.audit(slug))[:2]]
        assert [(f["url"], f["reason"]) for f in failures] == \
            [(url, "mismatch"), (url, "unreachable")]
        assert failures[1]["error"] == "HTTP 404"

        # The right token: verified by domain proof, visible in the profile and channel.
        website.published = f"{token}\n"
        checked = await api.post(f"/shops/{slug}/domain-proof/check", as_owner)
        assert checked.status == 200, checked
        assert checked.body["verified"] is True
        verification = checked.body["verification"]
        assert verification["method"] == "domain" and verification["website"] == website.url

    profile = await owner.request("GET", f"/_matrix/client/v3/profile/{quote(shop_mxid)}")
    assert profile["displayname"] == f"Proof Shop {slug[-8:]} ✓"
    channel = await owner.resolve_alias(f"#shop_{slug}:localhost")
    topic = (await owner.state(channel, "m.room.topic"))["topic"]
    assert topic.startswith(f"✓ Verified shop — {website.url}, verified by domain proof "
                            "checked by localhost on "), topic
    state = await owner.state(channel, "org.mercato.shop")
    assert state["verified"] is True
    assert state["verification"]["method"] == "domain"
    assert state["verification"]["website"] == website.url
    entry = (await api.audit(slug))[0]
    assert (entry["action"], entry["actor"], entry["detail"]) == \
        ("verified", owner.user_id, {"method": "domain", "website": website.url})


async def test_domain_proof_needs_a_trusted_certificate(network: RunningNetwork,
                                                        http: aiohttp.ClientSession,
                                                        tmp_path) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    as_owner = api.acting_as(owner.user_id)
    slug = unique_slug("untrusted")
    untrusted = self_signed_certificate(tmp_path, "untrusted")

    async with shop_website(untrusted) as website:
        await api.apply(owner.user_id, slug, f"Untrusted {slug[-8:]}", website=website.url)
        await api.approve(slug)
        token = (await api.post(f"/shops/{slug}/domain-proof", as_owner)).body["token"]
        website.published = token
        before = await api.shop(slug)
        refused = await api.post(f"/shops/{slug}/domain-proof/check", as_owner)
        assert refused.status == 422, refused
        assert refused.errcode == "MERCATO_DOMAIN_PROOF_UNREACHABLE"
        assert "certificate verify failed" in refused.error, refused
        assert refused.error.endswith("Publish the token there over HTTPS and try again.")
        assert website.requests == 0, "nothing may be read over an untrusted connection"
        assert await api.shop(slug) == before

        # Only staff who may edit the shop can run the proof.
        helper = await new_user(network, http, "helper")
        added = await api.add_staff(slug, as_owner, helper.user_id, "support")
        assert added.status == 201, added
        for path in (f"/shops/{slug}/domain-proof", f"/shops/{slug}/domain-proof/check"):
            denied = await api.post(path, api.acting_as(helper.user_id))
            assert denied.status == 403, denied
            assert denied.error == f"Your role in '{slug}' is support, which may not edit shop."
