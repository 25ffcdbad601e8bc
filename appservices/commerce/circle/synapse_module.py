"""Who a user already has a direct chat with, for the Circle: a Synapse module.

Synapse loads this (homeserver.yaml's `modules:`, rendered by `mercato config render`); no
Mercato process imports it. The Circle invites "people they already have a DM with" when a
user turns it on, but commerce is in nobody's DMs and cannot read anyone's account data, so
it asks the homeserver through one narrow endpoint:

    GET /_synapse/client/mercato/direct_partners?user=@ola:example.org

It answers only the commerce appservice's own user (its `as_token`), only about this
server's users, and only with Matrix IDs: the partners the user's own client lists in
`m.direct` (what Element, FluffyChat and nheko call a direct chat), who are still joined to
such a room with the user, leaving out anyone the user ignores (`m.ignored_user_list`).
Room IDs and everything else in the account data stay on the homeserver.
"""

from __future__ import annotations

from typing import Any

from synapse.module_api import DirectServeJsonResource, ModuleApi
from synapse.module_api.errors import Codes, ConfigError, SynapseError

PATH = "/_synapse/client/mercato/direct_partners"
ROOMS_CHECKED_PER_PARTNER = 5  # a client may list many old rooms for one partner
MAX_PARTNERS = 1000


class DirectPartners:
    """The module: `config: {asker: "@mercato:<server_name>"}`."""

    def __init__(self, config: dict[str, str], api: ModuleApi) -> None:
        api.register_web_resource(PATH, DirectPartnersResource(api, config["asker"]))

    @staticmethod
    def parse_config(config: dict[str, Any]) -> dict[str, str]:
        asker = config.get("asker") if isinstance(config, dict) else None
        if not isinstance(asker, str) or not asker.startswith("@") or ":" not in asker:
            raise ConfigError("mercato direct_partners: `asker` must be the commerce "
                              "appservice's Matrix ID, such as @mercato:example.org")
        return {"asker": asker}


class DirectPartnersResource(DirectServeJsonResource):
    def __init__(self, api: ModuleApi, asker: str) -> None:
        super().__init__()
        self.api = api
        self.asker = asker

    async def _async_render_GET(self, request: Any) -> tuple[int, dict[str, Any]]:
        requester = await self.api.get_user_by_req(request)
        if requester.user.to_string() != self.asker:
            raise SynapseError(403, "Only Mercato's commerce appservice may ask this",
                               Codes.FORBIDDEN)
        values = request.args.get(b"user") or [b""]  # `user_id` is the appservice's own
        user_id = values[0].decode("utf-8", "replace")
        local = user_id.startswith("@") and ":" in user_id and self.api.is_mine(user_id)
        if not local:
            raise SynapseError(400, "user must be a user of this homeserver",
                               Codes.INVALID_PARAM)
        return 200, {"partners": await self.partners(user_id)}

    async def partners(self, user_id: str) -> list[str]:
        accounts = self.api.account_data_manager
        direct = await accounts.get_global(user_id, "m.direct") or {}
        ignored = (await accounts.get_global(user_id, "m.ignored_user_list") or {}).get(
            "ignored_users") or {}
        found: list[str] = []
        for partner, rooms in direct.items():
            if len(found) >= MAX_PARTNERS:
                break
            if (not isinstance(partner, str) or not partner.startswith("@")
                    or partner == user_id or partner in ignored
                    or not isinstance(rooms, (list, tuple))):  # Synapse hands it frozen
                continue
            for room_id in rooms[:ROOMS_CHECKED_PER_PARTNER]:
                if isinstance(room_id, str) and await self.both_joined(room_id, user_id, partner):
                    found.append(partner)
                    break
        return sorted(found)

    async def both_joined(self, room_id: str, user_id: str, partner: str) -> bool:
        try:
            state = await self.api.get_room_state(
                room_id, [("m.room.member", user_id), ("m.room.member", partner)])
        except Exception:  # an unknown or malformed room ID: not a direct chat
            return False
        members = [state.get(("m.room.member", who)) for who in (user_id, partner)]
        return all(m is not None and m.content.get("membership") == "join" for m in members)
