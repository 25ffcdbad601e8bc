"""The shop bot: an ordinary Matrix account that answers commands in any room it is in.

Login that survives restarts (one device and its encryption keys, not a new one per
start), a sync loop that resumes where it stopped, encrypted rooms read and answered
like the others (`encryption`), invites accepted, and commands: declared in
`bots.shopbot.commands`, run by `mercato.commands`, answered here as notices that
reply to the command. The commands call the commerce HTTP API for the sender.

Besides commands: a pasted product link is answered with the product's card; a
question the bot asks (`buttons`) is answered by a reaction or a typed yes/no; a
file the bot asked for completes the command that asked for it, and a file sent alone
in a direct chat is answered with what to do with it (`files`). A message too long
for any command gets a short answer, unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any, Literal

import aiohttp
from aiohttp import web
from nio import (
    AsyncClient,
    Event,
    JoinResponse,
    LoginResponse,
    MegolmEvent,
    RoomLeaveError,
    RoomSendError,
    SyncError,
    SyncResponse,
    WhoamiResponse,
)
from prometheus_client import Counter

from bots.shopbot import buttons, circle_commands
from bots.shopbot.api import CommerceApi, commerce_api_url
from bots.shopbot.buttons import WaitingCommands, now_ms
from bots.shopbot.commands import ShopContext, registry
from bots.shopbot.config import ShopbotConfig
from bots.shopbot.context import Attachment, AwaitFile, CardReply, LeaveRoom, Question
from bots.shopbot.encryption import (
    DEVICE_NAME,
    UNREADABLE,
    ask_for_room_key,
    client_config,
    exchange_keys,
    retire_old_devices,
    store_file,
)
from bots.shopbot.events import (
    caption_of,
    command_text,
    links_to_answer,
    reaction_content,
    reaction_of,
    replied_to,
    reply_content,
)
from bots.shopbot.files import file_answer
from bots.shopbot.journal import EventJournal
from bots.shopbot.matrix_side import ClientMatrix
from bots.shopbot.session import SessionFile
from mercato.commands import CommandError, Outcome, Reply, parse_command
from mercato.config import MercatoConfig
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.types import MerchantSlug, Sku
from mercato.web import add_health_routes, serve

log = get_logger(__name__)

# Synapse returns 10 events per room by default and marks the rest "limited": commands
# sent in a burst would be lost. 500 covers any realistic burst between two syncs.
SYNC_FILTER = {"room": {"timeline": {"limit": 500}}}

__all__ = ["ShopBot", "command_text", "reply_content"]

COMMANDS = Counter("mercato_shopbot_commands_total", "Commands answered", ["command", "ok"])
CARDS = Counter("mercato_shopbot_link_cards_total", "Product links answered with a card")
API_TIMEOUT = aiohttp.ClientTimeout(total=30)
DIGEST_EVERY_SECONDS = 600  # how often the Circle's due digests are asked for
INTERRUPTED = ("I was restarted while doing this, so it may or may not have been done. Check "
               "(with the status or list command) before you try again.")
NOTHING_WAITING = ("Nothing is waiting for a yes or no from you here (questions expire after "
                   "15 minutes). Type the command again.")


class ShopBot:
    def __init__(self, config: MercatoConfig) -> None:
        self.config = config
        self.settings = ShopbotConfig.of(config)
        self.user_id = config.user_id(self.settings.localpart)
        self.state_dir = config.data_path / "shopbot"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # the session token and the encryption keys
        self.client = AsyncClient(config.homeserver_url, self.user_id,
                                  store_path=str(self.state_dir), config=client_config())
        self.commands = registry.with_prefix(self.settings.prefix)
        # The commerce section: read by name, the bot knows commerce only through its API.
        self.public_url: str = config.commerce.site_url
        self.waiting = WaitingCommands()
        self.session = SessionFile(self.state_dir)
        self.waiting.load(self.session.waiting(), now_ms())
        self.journal = EventJournal(self.state_dir / "journal.json")
        self.http: aiohttp.ClientSession | None = None
        self.api: CommerceApi | None = None
        self.ready = False
        self.app = web.Application()
        add_health_routes(self.app, "shopbot", lambda: self.ready)

    @property
    def matrix(self) -> ClientMatrix:
        """What commands may ask of the Matrix side, through the bot's client."""
        return ClientMatrix(self.client)

    def _batch_done(self, since: str) -> None:
        """Every event before `since` is handled: the token and the questions waiting are
        saved together (SessionFile.save_batch says why), then the journal moves on."""
        self.session.save_batch(since, self.waiting.dump())
        self.journal.batch_done()

    async def login(self) -> None:
        """Resume the saved device with its keys, or log in as a new device."""
        session = self.session.load()
        token, device_id = session.get("access_token"), session.get("device_id")
        if token and device_id and await self._still_our_device(token, device_id):
            self.client.restore_login(self.user_id, device_id, token)  # loads the key store
            return
        # Not the old device ID: the server would reuse it, with keys the store lacks.
        self.client.access_token, self.client.device_id = "", None
        response = await self.client.login(self.settings.password,
                                           device_name=DEVICE_NAME)
        if not isinstance(response, LoginResponse):
            raise RuntimeError(f"shop bot could not log in as {self.user_id}: {response}")
        self.session.save(access_token=response.access_token, device_id=response.device_id,
                           since="")
        log.info("shopbot.new_device", device_id=response.device_id)
        await retire_old_devices(self.client, self.settings.password, self.state_dir)

    async def _still_our_device(self, token: str, device_id: str) -> bool:
        """True if the saved login still works and its key store is here.

        Without its keys the old device is worse than a new one: buyers' clients would
        see its identity change, and their room keys for it would be unreadable.
        """
        if not store_file(self.state_dir, self.user_id, device_id).exists():
            log.warning("shopbot.key_store_missing", device_id=device_id)
            return False
        self.client.access_token = token
        for attempt in range(5):
            whoami = await self.client.whoami()
            if isinstance(whoami, WhoamiResponse):
                if whoami.user_id == self.user_id and whoami.device_id in (None, device_id):
                    return True
                log.warning("shopbot.session_mismatch", device_id=whoami.device_id)
                return False
            if whoami.status_code in ("M_UNKNOWN_TOKEN", "M_FORBIDDEN"):
                log.warning("shopbot.session_expired", device_id=device_id)
                return False
            log.warning("shopbot.whoami_failed", error=str(whoami), attempt=attempt)
            await asyncio.sleep(2 ** attempt)
        raise RuntimeError(f"the homeserver keeps failing to check the bot's login: {whoami}")

    async def _join(self, room_id: str) -> None:
        """Accept an invite. Over federation the inviting server may not have stored its
        invite yet when the bot answers (the join is then refused): try again briefly."""
        for attempt in range(6):
            response = await self.client.join(room_id)
            if isinstance(response, JoinResponse):
                log.info("shopbot.joined", room_id=room_id)
                return
            log.warning("shopbot.join_failed", room_id=room_id, attempt=attempt,
                        error=str(response))
            await asyncio.sleep(0.5 * 2 ** attempt)

    async def _handle_sync(self, response: SyncResponse) -> None:
        for room_id in response.rooms.invite:
            await self._join(room_id)
        for room_id, room in response.rooms.join.items():
            if room.timeline.limited:
                log.warning("shopbot.timeline_limited", room_id=room_id,
                            note="more events arrived than one sync returns; some were skipped")
            matrix_room = self.client.rooms.get(room_id)
            if room.timeline.events and matrix_room and not matrix_room.members_synced:
                # After a restart an incremental sync does not list the room's members: they
                # tell a DM from a group, and whose devices a reply is encrypted for.
                await self.client.joined_members(room_id)
        # Before answering: replies are encrypted for the devices known by then.
        await exchange_keys(self.client)
        # One lane per sender: different people's commands run at once, one person's in the
        # order they sent them; the batch (and so the sync token) ends when every lane has.
        lanes: dict[str, list[tuple[str, Event, bool]]] = {}
        for room_id, room in response.rooms.join.items():
            members = room.summary.joined_member_count if room.summary else None
            matrix_room = self.client.rooms.get(room_id)
            count = members or (matrix_room.member_count if matrix_room else 0)
            for event in room.timeline.events:
                # nio has replaced what it could decrypt: `source` is then the plaintext event.
                if event.sender == self.user_id or "event_id" not in event.source:
                    continue
                lanes.setdefault(event.sender, []).append((room_id, event, count == 2))
        await asyncio.gather(*(self._handle_lane(lane) for lane in lanes.values()))

    async def _handle_lane(self, lane: list[tuple[str, Event, bool]]) -> None:
        """One sender's events of a batch, one after another."""
        for room_id, event, direct in lane:
            source = event.source
            event_id = source["event_id"]
            done_before = self.journal.state(event_id)  # a batch handed again
            if done_before == "done":
                continue
            try:
                if done_before == "wrote":
                    await self._notice(room_id, event_id, source["sender"], Reply(INTERRUPTED))
                elif isinstance(event, MegolmEvent):
                    await self._on_unreadable(room_id, event)
                else:
                    await self._on_event(room_id, source, direct=direct)
            except Exception:  # one bad event must not stop the bot for everyone
                log.exception("shopbot.event_failed", room_id=room_id, event_id=event_id)
            self.journal.answered(event_id)

    async def _on_unreadable(self, room_id: str, event: MegolmEvent) -> None:
        """An encrypted message the bot has no key for: say so, once per session."""
        log.warning("shopbot.undecryptable", room_id=room_id, event_id=event.event_id,
                    sender=event.sender, session_id=event.session_id)
        if await ask_for_room_key(self.client, event):
            await self._notice(room_id, event.event_id, event.sender, Reply(UNREADABLE))

    async def _on_event(self, room_id: str, source: dict[str, Any], *, direct: bool) -> None:
        kind, sender, event_id = source.get("type"), source["sender"], source["event_id"]
        content = source.get("content")
        if not isinstance(content, dict):
            return
        now = now_ms()
        if kind == "m.reaction":
            reaction = reaction_of(content)
            answer = buttons.reaction_answer(reaction[1]) if reaction else None
            if reaction and answer is not None:
                waiting = self.waiting.answer(room_id, sender, now,
                                              question_event_id=reaction[0])
                if waiting is not None:
                    await self._resolve(waiting, answer, event_id)
            return
        if kind != "m.room.message":
            return
        attachment = Attachment.of(content)
        if attachment is not None:
            await self._on_file(room_id, event_id, sender, content, attachment, direct=direct)
            return
        body = command_text(content)
        if body is None:
            return
        if len(body) > self.commands.max_length:
            # Not read for links or answers: the framework answers a command with its length.
            await self._run(room_id, event_id, sender, body, direct=direct)
            return
        answer = buttons.typed_answer(body)
        if answer is not None:
            waiting = self.waiting.answer(room_id, sender, now)
            if waiting is not None:
                await self._resolve(waiting, answer, event_id)
                return
            if not answer and (waiting := self.waiting.take_file(room_id, sender, now)):
                await self._notice(room_id, event_id, sender, Reply(
                    f"OK, I no longer wait for a file for “{waiting.command}”."))
                return
            if direct and not self._is_command(body, direct=True):
                await self._notice(room_id, event_id, sender, Reply(NOTHING_WAITING))
                return
        links = links_to_answer(content, self.public_url)
        if links and not self._is_command(body, direct=direct):
            await self._answer_links(room_id, event_id, sender, links, direct=direct)
            return
        await self._run(room_id, event_id, sender, body, direct=direct,
                        replied_to=replied_to(content))

    def _is_command(self, body: str, *, direct: bool) -> bool:
        typed = parse_command(body, self.commands.prefix, direct=direct)
        if typed is None:
            return False
        explicit = bool(self.commands.prefix) and body.strip().startswith(self.commands.prefix)
        return explicit or self.commands.lookup(typed.name) is not None

    async def _on_file(self, room_id: str, event_id: str, sender: str,
                       content: dict[str, Any], attachment: Attachment, *,
                       direct: bool) -> None:
        caption = caption_of(content)
        if caption is not None and self._is_command(caption, direct=direct):
            await self._run(room_id, event_id, sender, caption, direct=direct,
                            attachment=attachment)
            return
        waiting = self.waiting.take_file(room_id, sender, now_ms())
        if waiting is not None:
            await self._run(room_id, event_id, sender, waiting.command,
                            direct=waiting.direct, attachment=attachment)
            return
        if direct:  # in a group room a file is for the people there, not for the bot
            await self._answer_file(room_id, event_id, sender, attachment)

    async def _answer_file(self, room_id: str, event_id: str, sender: str,
                           attachment: Attachment) -> None:
        """A file sent alone: say which command takes it from this sender, or where it goes."""
        shops: list[dict[str, str]] | None = None
        if self.api is not None:
            try:
                shops = await self.api.as_user(sender).my_shops()
            except CommandError as e:  # the answer does without the sender's roles
                log.warning("shopbot.file_roles_unknown", sender=sender, error=e.message)
        contacts_bot = self.config.user_id(self.config.contacts.bot_localpart)
        answer = file_answer(attachment, shops, prefix=self.commands.shown_prefix(direct=True),
                             contacts_bot=contacts_bot)
        log.info("shopbot.file_alone", room_id=room_id, mimetype=attachment.mimetype)
        await self._notice(room_id, event_id, sender, Reply(answer))

    async def _run(self, room_id: str, event_id: str, sender: str, body: str, *,
                   direct: bool, attachment: Attachment | None = None,
                   replied_to: str | None = None, confirmed: bool = False,
                   reply_to: str | None = None) -> None:
        """Run the command in `body`; the answer replies to `reply_to` (default: the event).

        `event_id` is the event that triggered this run: the answer's transaction ID comes
        from it, so a resend after a restart is deduplicated.
        """
        api = self.api.as_user(sender, before_write=lambda: self.journal.wrote(event_id)) \
            if self.api else None
        ctx = ShopContext(sender=sender, room_id=room_id, event_id=event_id, direct=direct,
                          api=api, matrix=self.matrix,
                          public_url=self.public_url, attachment=attachment,
                          replied_to=replied_to, confirmed=confirmed)
        outcome = await self.commands.dispatch(body, ctx)
        if outcome is None:
            return
        COMMANDS.labels(outcome.command, str(outcome.ok).lower()).inc()
        log.info("shopbot.command", command=outcome.command, ok=outcome.ok, sender=sender,
                 room_id=room_id)
        fault_point("shopbot.before_reply")  # the command ran, its answer is not sent yet
        await self._deliver(outcome, room_id, event_id, sender, body, direct=direct,
                            reply_to=reply_to or event_id)
        fault_point("shopbot.after_reply")  # answered, not yet noted in the journal

    async def _deliver(self, outcome: Outcome, room_id: str, event_id: str, sender: str,
                       body: str, *, direct: bool, reply_to: str) -> None:
        reply = outcome.reply
        if isinstance(reply, CardReply):
            await self._send(room_id, reply.content, f"reply.{event_id}")
            return
        question_id = await self._notice(room_id, event_id, sender, reply, reply_to=reply_to)
        if isinstance(reply, LeaveRoom):
            await self._leave(room_id, sender)
            return
        if question_id is None or not isinstance(reply, Question | AwaitFile):
            return
        kind: Literal["confirm", "file"] = "confirm" if isinstance(reply, Question) else "file"
        self.waiting.ask(room_id, sender, kind, body, direct=direct, command_event_id=reply_to,
                         now=now_ms(), question_event_id=question_id,
                         declined=reply.declined if isinstance(reply, Question) else "")
        if kind == "confirm":
            for k, key in enumerate(buttons.CHOICES):
                await self._send(room_id, reaction_content(question_id, key),
                                 f"seed.{question_id}.{k}", event_type="m.reaction")

    async def _resolve(self, waiting: buttons.Waiting, yes: bool, answer_event_id: str) -> None:
        """The user answered the bot's question: run the command, or say it was not done."""
        fault_point("shopbot.answer_taken")  # the question taken, the command not yet run
        log.info("shopbot.answered", room_id=waiting.room_id, yes=yes,
                 question=waiting.question_event_id)
        if not yes:
            await self._notice(waiting.room_id, answer_event_id, waiting.user_id,
                               Reply(waiting.declined or "OK, nothing was done."),
                               reply_to=waiting.command_event_id)
            return
        await self._run(waiting.room_id, answer_event_id, waiting.user_id, waiting.command,
                        direct=waiting.direct, confirmed=True,
                        reply_to=waiting.command_event_id)

    async def _answer_links(self, room_id: str, event_id: str, sender: str,
                            links: list[tuple[MerchantSlug, Sku]], *, direct: bool) -> None:
        """Answer pasted product links with their cards; in a group, bad links stay quiet."""
        if self.api is None:
            return
        api = self.api.as_user(sender)
        for k, (slug, sku) in enumerate(links):
            try:
                card = await api.card(slug, sku)
            except CommandError as e:
                log.info("shopbot.link_unknown", room_id=room_id, shop=slug, sku=sku)
                if direct:
                    await self._notice(room_id, f"{event_id}.{k}", sender, Reply(e.message),
                                       reply_to=event_id)
                continue
            card["m.relates_to"] = {"m.in_reply_to": {"event_id": event_id}}
            await self._send(room_id, card, f"card.{event_id}.{k}")
            CARDS.inc()

    async def _leave(self, room_id: str, asked_by: str) -> None:
        """Leave (and forget) a room after saying goodbye; a question waiting there lapses."""
        response = await self.client.room_leave(room_id)
        if isinstance(response, RoomLeaveError):
            log.warning("shopbot.leave_failed", room_id=room_id, error=response.message)
            return
        log.info("shopbot.left", room_id=room_id, asked_by=asked_by)
        await self.client.room_forget(room_id)

    async def _notice(self, room_id: str, event_id: str, sender: str, reply: Reply, *,
                      reply_to: str | None = None) -> str | None:
        return await self._send(room_id, reply_content(reply, reply_to or event_id, sender),
                                f"reply.{event_id}")

    async def _send(self, room_id: str, content: dict[str, Any], txn_id: str, *,
                    event_type: str = "m.room.message") -> str | None:
        # The txnId comes from the triggering event: a resend after a restart is deduplicated.
        response = await self.client.room_send(room_id, event_type, content, tx_id=txn_id,
                                               ignore_unverified_devices=True)
        if isinstance(response, RoomSendError):
            log.warning("shopbot.send_failed", room_id=room_id, txn_id=txn_id,
                        error=response.message)
            return None
        return str(response.event_id)

    async def run(self, stop: asyncio.Event) -> None:
        self.http = aiohttp.ClientSession(timeout=API_TIMEOUT)
        self.api = CommerceApi(self.http, commerce_api_url(self.config),
                               self.config.commerce.service_token)
        await self.login()
        since = self.session.load().get("since") or None
        if since is None:
            # First start: old messages are not commands to answer now.
            first = await self.client.sync(timeout=0, full_state=True)
            if isinstance(first, SyncError):
                raise RuntimeError(f"first sync failed: {first.message}")
            for room_id in first.rooms.invite:
                await self._join(room_id)
            since = first.next_batch
            self.session.save(since=since)
        await exchange_keys(self.client)  # keys on the server before anyone may DM the bot
        self.ready = True
        log.info("shopbot.ready", user_id=self.user_id)
        self.digests = asyncio.create_task(self._circle_digests(stop))  # ends on stop
        while not stop.is_set():
            response = await self.client.sync(timeout=30000, since=since,
                                              sync_filter=SYNC_FILTER)
            if isinstance(response, SyncError):
                log.warning("shopbot.sync_failed", error=response.message)
                await asyncio.sleep(2)
                continue
            await self._handle_sync(response)
            since = response.next_batch
            self._batch_done(since)

    async def _circle_digests(self, stop: asyncio.Event) -> None:
        """Every few minutes, the Circle digests commerce says are due (at most one a day)."""
        async def send(room_id: str, text: str) -> None:
            day = now_ms() // (24 * 3600 * 1000)
            await self._send(room_id, {"msgtype": "m.notice", "body": text},
                             f"circle.digest.{room_id}.{day}")

        while not stop.is_set() and self.api is not None:
            try:
                await circle_commands.send_digests(self.api, self.user_id, now_ms(), send)
            except Exception as e:  # the API restarting: the next round tries again
                log.warning("shopbot.digests_failed", error=str(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DIGEST_EVERY_SECONDS)

    async def run_until_stopped(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        runner = await serve(self.app, self.settings.bind_address, self.settings.port)
        task = asyncio.create_task(self.run(stop))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waiter = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # raise the failure instead of idling without a bot
        finally:
            task.cancel()
            waiter.cancel()
            await asyncio.gather(task, waiter, return_exceptions=True)
            await self.client.close()
            if self.http is not None:
                await self.http.close()
            await runner.cleanup()
            log.info("shopbot.stopped")
