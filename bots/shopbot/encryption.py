"""The shop bot's end-to-end encryption: its key store, the key traffic between syncs.

The bot keeps its Olm account and room keys in a SQLite store under data/shopbot/, one
file per device, so a restart decrypts with the same identity. It trusts on first use:
replies are encrypted for every device in the room, verified or not (it cannot verify
buyers' devices interactively).

nio's `sync_forever` does the key traffic itself; the bot runs its own sync loop (to
save its sync token after handling events), so `exchange_keys` does the same work.
"""

from __future__ import annotations

from pathlib import Path

from nio import (
    AsyncClient,
    AsyncClientConfig,
    DeleteDevicesAuthResponse,
    DevicesResponse,
    ErrorResponse,
    LocalProtocolError,
    MegolmEvent,
    RoomKeyRequestError,
)
from nio.store import SqliteStore

from mercato.logging import get_logger

log = get_logger(__name__)

DEVICE_NAME = "Mercato shop bot"
UNREADABLE = ("I could not decrypt your message: my device did not receive its key. "
              "If it was meant for me, please send it again.")


def client_config() -> AsyncClientConfig:
    # The bot saves its own sync token (after handling the events), not nio.
    return AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False,
                             store=SqliteStore)


def store_file(state_dir: Path, user_id: str, device_id: str) -> Path:
    """Where nio keeps the keys of this device (MatrixStore's default database name)."""
    return state_dir / f"{user_id}_{device_id}.db"


def _failed(response: object, step: str) -> None:
    if isinstance(response, ErrorResponse):
        log.warning("shopbot.keys_failed", step=step, error=str(response))


async def exchange_keys(client: AsyncClient) -> None:
    """What nio's sync_forever does for encryption after a sync; a no-op without it.

    Upload our keys when the server runs low, learn the devices of the people in
    encrypted rooms, claim one-time keys for new Olm sessions, then send the queued
    to-device messages (room keys others asked for, session-repair messages the claim
    just queued). A failed step is retried after the next sync.
    """
    if client.should_upload_keys:
        _failed(await client.keys_upload(), "upload")
    if client.should_query_keys:
        _failed(await client.keys_query(), "query")
    if client.should_claim_keys:
        _failed(await client.keys_claim(client.get_users_for_key_claiming()), "claim")
    if client.outgoing_to_device_messages:
        for response in await client.send_to_device_messages():
            _failed(response, "to_device")


async def ask_for_room_key(client: AsyncClient, event: MegolmEvent) -> bool:
    """Request the key of an event we could not decrypt; False if requested already.

    nio asks the bot's own other devices and accepts keys only from them, so the key
    rarely comes: what recovers is the sender resending (their client then shares its
    session with this device). The request is kept in the key store, which makes it
    the record, across restarts, that the sender was told, once per session.
    """
    if event.session_id in client.outgoing_key_requests:
        return False
    try:
        response = await client.request_room_key(event, tx_id=f"keyreq.{event.session_id}")
    except LocalProtocolError:  # a request for this session is already out
        return False
    if isinstance(response, RoomKeyRequestError):
        log.warning("shopbot.key_request_failed", session_id=event.session_id,
                    error=response.message)
    return True


async def retire_old_devices(client: AsyncClient, password: str, state_dir: Path) -> None:
    """After logging in as a new device: delete the bot's earlier devices and their stores.

    Else buyers' clients keep encrypting for a device nobody reads. Best effort: a
    failure is logged, the bot works either way.
    """
    assert client.user_id and client.device_id
    devices = await client.devices()
    if not isinstance(devices, DevicesResponse):
        log.warning("shopbot.devices_failed", error=str(devices))
        return
    old = [d.id for d in devices.devices
           if d.id != client.device_id and d.display_name == DEVICE_NAME]
    if old:
        auth = {"type": "m.login.password", "password": password,
                "identifier": {"type": "m.id.user", "user": client.user_id}}
        deleted = await client.delete_devices(old, auth)
        if isinstance(deleted, ErrorResponse | DeleteDevicesAuthResponse):
            log.warning("shopbot.devices_not_deleted", devices=old, error=str(deleted))
            return
        log.info("shopbot.old_devices_deleted", devices=old)
    kept = {d.id for d in devices.devices if d.id not in old}
    prefix = f"{client.user_id}_"
    for path in state_dir.iterdir():
        device_id = path.name.removeprefix(prefix).split(".")[0]
        if path.name.startswith(prefix) and device_id not in kept:
            path.unlink(missing_ok=True)
            log.info("shopbot.old_store_removed", file=path.name)
