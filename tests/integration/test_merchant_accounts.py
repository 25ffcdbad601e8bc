"""Merchant accounts end to end (issue 3), as the people involved see them.

A Matrix user applies through the API, the operator approves and verifies, the shop
user and its rooms appear in every client, staff answer a buyer from the staff room
and the buyer sees the answer from the shop; a suspended shop is refused.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixError
from tests.integration.commerce_api import (
    CommerceApi,
    accept_invite,
    commerce_rows,
    from_sender,
    invites,
    is_threaded_in,
    joined,
    new_user,
    open_shop,
    profile,
    thread_reply,
    unique_slug,
    wait_for_invite,
)


async def test_whole_story(network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    buyer = await new_user(network, http, "buyer")
    slug = unique_slug("story")
    name = f"Story Bikes {slug[-8:]}"
    shop_mxid = f"@shop_{slug}:localhost"

    # -- apply: pending, recorded in the audit log, invisible to the public -------------
    applied = await api.apply(owner.user_id, slug, name, description="Bikes and repairs.",
                              website="https://story-bikes.example/")
    assert applied["status"] == "pending"
    assert applied["owner"] == owner.user_id and applied["user_id"] == shop_mxid
    assert applied["website"] == "https://story-bikes.example"
    assert applied["flagged"] is None and applied["verified"] is False
    entries = await api.audit(slug)
    assert [(e["action"], e["actor"]) for e in entries] == [("applied", owner.user_id)]
    assert entries[0]["detail"]["name"] == name
    assert (await api.get(f"/shops/{slug}")).status == 404, "a pending shop is not public"
    mine = await api.get("/me/shops", api.acting_as(owner.user_id))
    assert {"slug": slug, "role": "owner"} in mine.body["shops"]
    # Nothing exists on Matrix before approval.
    try:
        await profile(buyer, shop_mxid)
        raise AssertionError("the shop user exists before approval")
    except MatrixError as e:
        assert e.status == 404

    # -- approve: the shop user, its channel and its private staff room --------------------
    approved = await api.approve(slug)
    assert approved["status"] == "approved"
    assert approved["channels"] == [f"#shop_{slug}:localhost"]
    staff_room = approved["staff_room_id"]
    assert staff_room and staff_room.startswith("!")
    assert (await profile(buyer, shop_mxid))["displayname"] == name
    channel = await buyer.resolve_alias(f"#shop_{slug}:localhost")
    assert (await buyer.state(channel, "m.room.name"))["name"] == name
    create = next(e for e in await buyer.full_state(channel) if e["type"] == "m.room.create")
    assert create["sender"] == shop_mxid
    invite = await wait_for_invite(owner, staff_room)
    invite_state = {e["type"]: e for e in invite["invite_state"]["events"]}
    assert invite_state["m.room.name"]["content"]["name"] == f"{name} — staff"
    try:
        await buyer.join(staff_room)
        raise AssertionError("a buyer joined the private staff room")
    except MatrixError as e:
        assert e.status == 403
    assert (await api.get(f"/shops/{slug}")).body["status"] == "approved"

    # -- verify: profile, channel topic and a state event every client can read ---------
    verified = (await api.post(f"/shops/{slug}/verify", api.operator())).body
    assert verified["verified"] is True
    assert verified["verification"]["website"] == "https://story-bikes.example"
    assert verified["verification"]["method"] == "operator"
    assert (await profile(buyer, shop_mxid))["displayname"] == f"{name} ✓"
    topic = (await buyer.state(channel, "m.room.topic"))["topic"]
    assert topic.startswith("✓ Verified shop — https://story-bikes.example, verified by "
                            "the operator of localhost on "), topic
    shop_state = await buyer.state(channel, "org.mercato.shop")
    assert shop_state["slug"] == slug and shop_state["verified"] is True
    assert shop_state["verification"]["website"] == "https://story-bikes.example"
    assert shop_state["verification"]["verified_by"] == "the operator of localhost"
    assert shop_state["verification"]["verified_at"] == verified["verification"]["verified_at"]
    directory = (await api.get("/shops", None)).body["shops"]
    assert next(s for s in directory if s["slug"] == slug)["verified"] is True

    # -- staff: the owner and a support member join the staff room -------------------------
    await owner.join(staff_room)
    helper = await new_user(network, http, "helper")
    added = await api.add_staff(slug, api.acting_as(owner.user_id), helper.user_id, "support")
    assert added.status == 201 and added.body["role"] == "support", added
    await accept_invite(helper, staff_room)
    staff_state = await owner.state(staff_room, "org.mercato.shop")
    assert staff_state["verified"] is True

    # -- customer service --------------------------------------------------------------
    welcome = "Welcome to Story Bikes! We answer within the hour."
    patched = await api.patch(f"/shops/{slug}", api.acting_as(owner.user_id),
                              {"welcome_message": welcome})
    assert patched.status == 200 and patched.body["welcome_message"] == welcome, patched
    dm = await buyer.create_dm(shop_mxid)
    await buyer.wait_for_message(dm, joined(shop_mxid))
    question = "Hello, is the blue bike still available?"
    await buyer.send_text(dm, question)

    root_event = await owner.wait_for_message(
        staff_room, from_sender(shop_mxid, contains=f"New conversation with {buyer.user_id}"))
    root = root_event["event_id"]
    relayed = await owner.wait_for_message(
        staff_room, lambda e: is_threaded_in(root)(e) and e["sender"] == shop_mxid
        and e["content"]["body"] == f"{buyer.user_id}: {question}")
    await buyer.wait_for_message(dm, from_sender(shop_mxid, body=welcome))
    await owner.wait_for_message(staff_room, lambda e: is_threaded_in(root)(e)
                                 and "welcome auto-reply sent" in e["content"]["body"])

    answer = "Yes, it is! Come by before six."
    await owner.send(staff_room, thread_reply(root, answer, relayed["event_id"]))
    got = await buyer.wait_for_message(dm, from_sender(shop_mxid, body=answer))
    assert "m.relates_to" not in got["content"]
    support_answer = "We can also deliver it tomorrow."
    await helper.send(staff_room, thread_reply(root, support_answer, relayed["event_id"]))
    await buyer.wait_for_message(dm, from_sender(shop_mxid, body=support_answer))
    dm_senders = {e["sender"] for e in await buyer.messages(dm)}
    assert dm_senders == {buyer.user_id, shop_mxid}, "staff must never appear in the DM"

    # -- suspend: the shop is refused everywhere, and its channel says so -----------------
    suspended = await api.post(f"/shops/{slug}/suspend", api.operator(),
                               {"reason": "Reported for fake listings"})
    assert suspended.status == 200 and suspended.body["status"] == "suspended", suspended
    assert suspended.body["status_reason"] == "Reported for fake listings"
    topic = (await buyer.state(channel, "m.room.topic"))["topic"]
    assert topic.startswith("⚠ Suspended: this shop cannot post on Mercato right now."), topic
    assert (await buyer.state(channel, "org.mercato.shop"))["status"] == "suspended"
    assert all(s["slug"] != slug for s in (await api.get("/shops")).body["shops"])

    await buyer.send_text(dm, "Hello? Are you there?")
    notice = await buyer.wait_for_message(dm, from_sender(shop_mxid, contains="is suspended"))
    assert notice["content"]["msgtype"] == "m.notice"
    refused_text = "Sorry for the wait!"
    refused = await owner.send(staff_room, thread_reply(root, refused_text, root))
    await owner.wait_for_message(
        staff_room, lambda e: e["sender"] == shop_mxid
        and e["content"].get("body") == "Not sent: the shop is suspended."
        and e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == refused)
    assert not any(e["content"].get("body") == refused_text
                   for e in await buyer.messages(dm)), "a suspended shop's reply was relayed"

    # -- reinstate: everything works again ---------------------------------------------------
    reinstated = await api.post(f"/shops/{slug}/reinstate", api.operator())
    assert reinstated.status == 200 and reinstated.body["status"] == "approved", reinstated
    topic = (await buyer.state(channel, "m.room.topic"))["topic"]
    assert "Suspended" not in topic and topic.startswith("✓ Verified shop"), topic
    back = "We are back. The bike is yours."
    await owner.send(staff_room, thread_reply(root, back, root))
    await buyer.wait_for_message(dm, from_sender(shop_mxid, body=back))

    actions = [e["action"] for e in reversed(await api.audit(slug))]
    assert actions == ["applied", "approve", "verified", "staff_added", "updated", "suspend",
                       "reinstate"]


async def test_staff_roles_are_enforced(network: RunningNetwork,
                                        http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    editor = await new_user(network, http, "editor")
    slug = await open_shop(api, owner.user_id, "roles")
    staff_room = (await api.shop(slug))["staff_room_id"]
    as_owner = api.acting_as(owner.user_id)

    added = await api.add_staff(slug, as_owner, editor.user_id, "Editor")
    assert added.status == 201, added
    assert added.body["role"] == "editor" and added.body["added_by"] == owner.user_id
    await wait_for_invite(editor, staff_room)

    # An editor may not manage staff, nor change the shop's profile or keys.
    outsider = await new_user(network, http, "outsider")
    as_editor = api.acting_as(editor.user_id)
    before = await api.staff(slug)
    refused = await api.add_staff(slug, as_editor, outsider.user_id, "support")
    assert refused.status == 403 and refused.errcode == "M_FORBIDDEN"
    assert refused.error == f"Your role in '{slug}' is editor, which may not manage staff."
    refused = await api.remove_staff(slug, as_editor, owner.user_id)
    assert refused.status == 403
    refused = await api.patch(f"/shops/{slug}", as_editor, {"name": "Taken over"})
    assert refused.status == 403 and "may not edit shop" in refused.error
    assert (await api.post(f"/shops/{slug}/keys", as_editor, {"label": "x"})).status == 403
    assert (await api.get(f"/shops/{slug}/audit", as_editor)).status == 403
    assert await api.staff(slug) == before
    assert (await api.shop(slug))["name"] == f"Shop {slug}"
    assert not await invites(outsider)

    # Bad role and bad user IDs are refused with what to type instead.
    wrong = await api.add_staff(slug, as_owner, outsider.user_id, "boss")
    assert wrong.status == 400 and wrong.errcode == "MERCATO_INVALID"
    assert wrong.error == "role: unknown role 'boss'; use one of: owner, editor, support, analyst"
    wrong = await api.add_staff(slug, as_owner, "alice", "support")
    assert wrong.status == 400 and "Matrix user ID such as @alice:example.org" in wrong.error
    assert await api.staff(slug) == before

    # Staff of shop A can do nothing to shop B, whichever way they sign.
    other_owner = await new_user(network, http, "other")
    other = await open_shop(api, other_owner.user_id, "other")
    other_before = (await api.shop(other), await api.staff(other), await api.audit(other))
    key = (await api.post(f"/shops/{slug}/keys", as_owner, {"label": "a", "role": "owner"}))
    assert key.status == 201, key
    for auth in (as_owner, api.key(key.body["key"])):
        for method, path, body in (
            ("POST", f"/shops/{other}/staff", {"user_id": owner.user_id, "role": "owner"}),
            ("DELETE", f"/shops/{other}/staff/{quote(other_owner.user_id)}", None),
            ("PATCH", f"/shops/{other}", {"name": "Mine now"}),
            ("GET", f"/shops/{other}/staff", None),
            ("GET", f"/shops/{other}/keys", None),
            ("POST", f"/shops/{other}/keys", {"label": "steal"}),
            ("GET", f"/shops/{other}/audit", None),
            ("POST", f"/shops/{other}/domain-proof", None),
            ("POST", f"/shops/{other}/approve", None),
            ("POST", f"/shops/{other}/suspend", None),
            ("POST", f"/shops/{other}/verify", None),
        ):
            answer = await api.call(method, path, auth, json=body)
            assert answer.status == 403, (method, path, answer)
            assert answer.errcode == "M_FORBIDDEN", answer
            assert (answer.error == f"You are not staff of the shop '{other}'."
                    or answer.error == "Only the operator of this Mercato server may do "
                                       "this."), answer
    assert (await api.shop(other), await api.staff(other), await api.audit(other)) == \
        other_before

    # The last owner can neither leave nor be demoted; nothing changes.
    audit_before = await api.audit(slug)
    last = await api.remove_staff(slug, as_owner, owner.user_id)
    assert last.status == 409 and last.errcode == "MERCATO_LAST_OWNER", last
    assert last.error == "This is the shop's last owner; add another owner first."
    demoted = await api.add_staff(slug, as_owner, owner.user_id, "editor")
    assert demoted.status == 409 and demoted.errcode == "MERCATO_LAST_OWNER", demoted
    assert await api.staff(slug) == before
    assert await api.audit(slug) == audit_before
    # With a second owner the first may go; the second is then the last.
    assert (await api.add_staff(slug, as_owner, editor.user_id, "owner")).status == 201
    assert (await api.remove_staff(slug, as_owner, owner.user_id)).status == 200
    assert await api.staff(slug) == {editor.user_id: "owner"}
    last = await api.remove_staff(slug, api.acting_as(editor.user_id), editor.user_id)
    assert last.status == 409 and last.errcode == "MERCATO_LAST_OWNER"
    assert await api.staff(slug) == {editor.user_id: "owner"}
    # Removing someone who is not staff says so.
    gone = await api.remove_staff(slug, api.acting_as(editor.user_id), owner.user_id)
    assert gone.status == 404 and gone.error == f"{owner.user_id} is not staff of '{slug}'."


async def test_staff_on_other_homeservers(network: RunningNetwork,
                                          http: aiohttp.ClientSession) -> None:
    """A user of another server becomes staff even when their server cannot be reached."""
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "remote")
    as_owner = api.acting_as(owner.user_id)
    remote = "@alice:other.example"

    added = await api.add_staff(slug, as_owner, remote, "support")
    assert added.status == 201, added
    assert added.body["user_id"] == remote and added.body["role"] == "support"
    assert added.body["staff_room_invite"] == "failed", added
    assert "other.example" in added.body["warning"], added
    assert (await api.staff(slug))[remote] == "support"
    actions = [(e["action"], e["detail"].get("user_id")) for e in await api.audit(slug)]
    assert ("staff_added", remote) in actions and ("staff_invite_failed", remote) in actions
    # The remote staff member acts through the shop bot with their own role.
    mine = await api.get("/me/shops", api.acting_as(remote))
    assert mine.body["shops"] == [{"slug": slug, "role": "support"}]

    # Removing them works although they never reached the staff room.
    removed = await api.remove_staff(slug, as_owner, remote)
    assert removed.status == 200, removed
    assert remote not in await api.staff(slug)

    # A local user gets the invite, and the answer says so.
    local = await new_user(network, http, "local")
    added = await api.add_staff(slug, as_owner, local.user_id, "analyst")
    assert added.status == 201 and added.body["staff_room_invite"] == "sent", added
    staff_room = (await api.shop(slug))["staff_room_id"]
    await accept_invite(local, staff_room)
    await accept_invite(owner, staff_room)
    # Adding them again changes the role without a second invite.
    again = await api.add_staff(slug, as_owner, local.user_id, "support")
    assert again.status == 201 and again.body["staff_room_invite"] == "already_member", again
    assert again.body["role"] == "support" and again.body["warning"] is None
    # A user of this server who does not exist is refused, and nothing changes.
    before = (await api.staff(slug), await api.audit(slug))
    nobody = await api.add_staff(slug, as_owner, "@nobody-at-all:localhost", "support")
    assert nobody.status == 400 and nobody.errcode == "MERCATO_INVALID", nobody
    assert nobody.error == ("user_id: there is no user @nobody-at-all:localhost on this "
                            "server; check the spelling")
    assert (await api.staff(slug), await api.audit(slug)) == before
    # Removal takes them out of the staff room.
    assert (await api.remove_staff(slug, as_owner, local.user_id)).status == 200
    member = await owner.request(
        "GET", f"/_matrix/client/v3/rooms/{quote(staff_room)}/members")
    memberships = {e["state_key"]: e["content"]["membership"] for e in member["chunk"]}
    assert memberships[local.user_id] == "leave"


async def test_api_keys(network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "keys")
    as_owner = api.acting_as(owner.user_id)

    created = await api.post(f"/shops/{slug}/keys", as_owner, {"label": "till"})
    assert created.status == 201, created
    secret, key_id = created.body["key"], created.body["key_id"]
    assert secret.startswith(f"mk_{key_id}_") and len(secret) > 40
    assert created.body["role"] == "editor" and created.body["revoked"] is False

    listed = await api.get(f"/shops/{slug}/keys", as_owner)
    assert listed.status == 200
    assert [(k["key_id"], k["label"], k["role"]) for k in listed.body["keys"]] == \
        [(key_id, "till", "editor")]
    assert all("key" not in k for k in listed.body["keys"])
    assert secret not in str(listed.body) and secret not in str(await api.audit(slug))
    stored = commerce_rows(network, "SELECT key_hash FROM api_key WHERE key_id=?", key_id)
    assert len(stored) == 1 and secret not in stored[0][0], "keys are stored hashed"

    own = await api.get("/merchant", api.key(secret))
    assert own.status == 200 and own.body["slug"] == slug, own
    assert own.body["channels"][0]["alias"] == f"#shop_{slug}:localhost"
    # An editor key may not make keys for itself.
    escalate = await api.post(f"/shops/{slug}/keys", api.key(secret),
                              {"label": "more", "role": "owner"})
    assert escalate.status == 403 and "may not manage keys" in escalate.error

    revoked = await api.delete(f"/shops/{slug}/keys/{key_id}", as_owner)
    assert revoked.status == 200, revoked
    after = await api.get("/merchant", api.key(secret))
    assert after.status == 401 and after.errcode == "M_UNKNOWN_TOKEN"
    assert "unknown or the API key was revoked" in after.error
    listed = await api.get(f"/shops/{slug}/keys", as_owner)
    assert [k["revoked"] for k in listed.body["keys"]] == [True]
    again = await api.delete(f"/shops/{slug}/keys/{key_id}", as_owner)
    assert again.status == 404 and again.error == f"No active API key '{key_id}' in '{slug}'."
    actions = [e["action"] for e in await api.audit(slug)]
    assert actions[:2] == ["api_key_revoked", "api_key_created"]
