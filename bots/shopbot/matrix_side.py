"""What commands may ask of the Matrix side (`context.BotMatrix`), answered with the shop
bot's own client: a file's bytes (decrypted when it came encrypted), the attachment of an
event, a room's power levels. A failure is a CommandError in words the sender can act on."""

from __future__ import annotations

from typing import Any

from nio import AsyncClient, DownloadError, RoomGetEventError, RoomGetStateError
from nio.crypto.attachments import decrypt_attachment

from bots.shopbot.context import Attachment
from bots.shopbot.events import power_levels_of
from mercato.commands import CommandError
from mercato.logging import get_logger

log = get_logger(__name__)


class ClientMatrix:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def download(self, attachment: Attachment) -> bytes:
        response = await self.client.download(mxc=attachment.mxc)
        if isinstance(response, DownloadError):
            log.warning("shopbot.download_failed", mxc=attachment.mxc, error=response.message)
            raise CommandError(f"I could not fetch {attachment.shown_name} from the homeserver "
                               f"({response.message}); send it again.")
        data = bytes(response.body)
        secret = attachment.encryption
        if secret:
            try:
                data = decrypt_attachment(data, secret["key"]["k"], secret["hashes"]["sha256"],
                                          secret["iv"])
            except (KeyError, TypeError, ValueError) as e:
                raise CommandError(f"{attachment.shown_name} could not be decrypted ({e}); send "
                                   "it again.") from None
        return data

    async def attachment_of(self, room_id: str, event_id: str) -> Attachment | None:
        response = await self.client.room_get_event(room_id, event_id)
        if isinstance(response, RoomGetEventError):
            return None
        return Attachment.of(response.event.source.get("content") or {})

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        response = await self.client.room_get_state(room_id)
        if isinstance(response, RoomGetStateError):
            log.warning("shopbot.power_levels_failed", room_id=room_id, error=response.message)
            raise CommandError("I could not read this room's power levels from the homeserver "
                               f"({response.message}); try again in a moment.")
        return power_levels_of(response.events)
