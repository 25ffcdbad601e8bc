"""Lifecycle edges: rejections, wrong transitions, renames, staff added before approval."""

from __future__ import annotations

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import (
    CommerceApi,
    new_user,
    open_shop,
    profile,
    unique_slug,
    wait_for_invite,
)


async def test_reject_and_wrong_transitions(network: RunningNetwork,
                                            http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = unique_slug("reject")
    await api.apply(owner.user_id, slug, f"Rejected {slug[-8:]}", website="https://r.example")

    for decision in ("suspend", "reinstate"):
        wrong = await api.post(f"/shops/{slug}/{decision}", api.operator())
        assert wrong.status == 409 and wrong.errcode == "MERCATO_WRONG_STATUS", wrong
        assert wrong.error == f"Cannot {decision} the shop '{slug}': it is pending."
    early = await api.post(f"/shops/{slug}/verify", api.operator())
    assert early.status == 409 and early.error == \
        f"Only an approved shop can be verified; '{slug}' is pending."

    rejected = await api.post(f"/shops/{slug}/reject", api.operator(),
                              {"reason": "Not a real shop"})
    assert rejected.status == 200, rejected
    assert (rejected.body["status"], rejected.body["status_reason"]) == \
        ("rejected", "Not a real shop")
    assert rejected.body["staff_room_id"] is None
    assert (await api.get(f"/shops/{slug}")).status == 404
    # The applicant still sees the decision and why.
    own = await api.get(f"/shops/{slug}", api.acting_as(owner.user_id))
    assert own.status == 200 and own.body["status_reason"] == "Not a real shop"
    again = await api.post(f"/shops/{slug}/reject", api.operator())
    assert again.status == 409 and again.error == \
        f"Cannot reject the shop '{slug}': it is rejected."
    # Nothing was created on Matrix for a rejected shop.
    try:
        await profile(owner, f"@shop_{slug}:localhost")
        raise AssertionError("a rejected shop has a Matrix user")
    except Exception as e:  # noqa: BLE001
        assert getattr(e, "status", None) == 404, e
    missing = await api.post("/shops/no-such-shop-here/approve", api.operator())
    assert missing.status == 404 and missing.error == "There is no shop 'no-such-shop-here'."
    actions = [e["action"] for e in reversed(await api.audit(slug))]
    assert actions == ["applied", "reject"]


async def test_renames_are_shown_and_cannot_imitate(network: RunningNetwork,
                                                    http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    suffix = unique_slug("x")[-8:]
    famous = await open_shop(api, owner.user_id, "famous", name=f"Famous Shoes {suffix}",
                             website="https://famous.example")
    assert (await api.post(f"/shops/{famous}/verify", api.operator())).status == 200

    other_owner = await new_user(network, http, "other")
    as_other = api.acting_as(other_owner.user_id)
    slug = await open_shop(api, other_owner.user_id, "plain", name=f"Plain Shoes {suffix}",
                           website="https://plain.example")
    shop_mxid = f"@shop_{slug}:localhost"
    channel = await other_owner.resolve_alias(f"#shop_{slug}:localhost")

    renamed = await api.patch(f"/shops/{slug}", as_other, {"name": f"Plainer Shoes {suffix}"})
    assert renamed.status == 200, renamed
    assert (await profile(other_owner, shop_mxid))["displayname"] == f"Plainer Shoes {suffix}"
    assert (await other_owner.state(channel, "m.room.name"))["name"] == \
        f"Plainer Shoes {suffix}"
    assert "Official channel of Plainer Shoes" in \
        (await other_owner.state(channel, "m.room.topic"))["topic"]

    # An open shop may not rename itself into a verified shop's name.
    before = await api.shop(slug)
    imitation = await api.patch(f"/shops/{slug}", as_other, {"name": f"FAM0US Shoes {suffix}"})
    assert imitation.status == 409 and imitation.errcode == "MERCATO_NAME_IMITATES", imitation
    assert imitation.error == (f"The name 'FAM0US Shoes {suffix}' looks like the verified "
                               f"shop '{famous}'; choose a name buyers cannot mistake.")
    assert await api.shop(slug) == before
    assert (await profile(other_owner, shop_mxid))["displayname"] == f"Plainer Shoes {suffix}"

    # A pending application may take such a name, flagged for the operator who reviews it.
    pending = unique_slug("pending")
    await api.apply(other_owner.user_id, pending, f"Pending Shoes {suffix}")
    flagged = await api.patch(f"/shops/{pending}", as_other, {"name": f"Famous Shoe$ {suffix}"})
    assert flagged.status == 200, flagged
    assert flagged.body["flagged"] == f"name looks like the verified shop '{famous}'"
    assert (await api.audit(pending))[0]["action"] == "flagged"
    cleared = await api.patch(f"/shops/{pending}", as_other, {"name": f"Other Shoes {suffix}"})
    assert cleared.body["flagged"] is None

    # Nor may any name carry the check mark that only verification gives.
    for fake in (f"Plain Shoes {suffix} ✓", f"Plain ✔ Shoes {suffix}", f"✅ Shoes {suffix}"):
        marked = await api.patch(f"/shops/{slug}", as_other, {"name": fake})
        assert marked.status == 400 and marked.errcode == "MERCATO_INVALID", marked
        assert marked.error == ("name: must not contain check marks; Mercato adds ✓ to "
                                "verified shops")
        applied = await api.post("/shops", as_other, {"slug": unique_slug("mark"), "name": fake})
        assert applied.status == 400 and applied.error == marked.error
    assert await api.shop(slug) == before

    # A new website is not the verified one: the mark goes everywhere at once.
    verified_before = await api.shop(famous)
    assert verified_before["verified"] is True
    moved = await api.patch(f"/shops/{famous}", api.acting_as(owner.user_id),
                            {"website": "https://elsewhere.example"})
    assert moved.status == 200 and moved.body["verified"] is False, moved
    assert (await profile(owner, f"@shop_{famous}:localhost"))["displayname"] == \
        f"Famous Shoes {suffix}"
    famous_channel = await owner.resolve_alias(f"#shop_{famous}:localhost")
    assert "Verified" not in (await owner.state(famous_channel, "m.room.topic"))["topic"]
    state = await owner.state(famous_channel, "org.mercato.shop")
    assert state["verified"] is False and state["verification"] is None


async def test_staff_added_before_approval(network: RunningNetwork,
                                           http: aiohttp.ClientSession) -> None:
    """Staff named while the shop waits are invited when it opens; an unreachable server
    among them does not block the approval."""
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    editor = await new_user(network, http, "editor")
    slug = unique_slug("early")
    await api.apply(owner.user_id, slug, f"Early Staff {slug[-8:]}")
    as_owner = api.acting_as(owner.user_id)
    for user_id, role in ((editor.user_id, "editor"), ("@bob:unreachable.example", "support")):
        added = await api.add_staff(slug, as_owner, user_id, role)
        assert added.status == 201 and added.body["staff_room_invite"] == "after_approval", added

    approved = await api.post(f"/shops/{slug}/approve", api.operator())
    assert approved.status == 200, approved
    staff_room = approved.body["staff_room_id"]
    await wait_for_invite(owner, staff_room)
    await wait_for_invite(editor, staff_room)
    assert await api.staff(slug) == {owner.user_id: "owner", editor.user_id: "editor",
                                     "@bob:unreachable.example": "support"}


async def test_audit_log_pages(network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "audit")
    for n in range(3):
        assert (await api.patch(f"/shops/{slug}", api.acting_as(owner.user_id),
                                {"description": f"Version {n}"})).status == 200
    everything = await api.audit(slug)
    assert [e["action"] for e in everything] == ["updated"] * 3 + ["approve", "applied"]
    first = await api.get(f"/shops/{slug}/audit?limit=2", api.operator())
    assert [e["id"] for e in first.body["entries"]] == [e["id"] for e in everything[:2]]
    rest = await api.get(f"/shops/{slug}/audit?before={everything[1]['id']}", api.operator())
    assert [e["id"] for e in rest.body["entries"]] == [e["id"] for e in everything[2:]]
    for query, field in (("limit=0", "limit"), ("limit=-1", "limit"), ("limit=many", "limit"),
                         ("before=abc", "before")):
        bad = await api.get(f"/shops/{slug}/audit?{query}", api.operator())
        assert bad.status == 400 and bad.errcode == "MERCATO_INVALID", (query, bad)
        assert bad.error.startswith(f"{field}: "), (query, bad)
