"""A real XMPP server for tests: Debian's Prosody on loopback, and friends driven by slixmpp.

Prosody runs from a config file in a temporary directory (its own data, pid file and
log), on a free port, without TLS: plaintext logins are allowed on loopback in this
test config only; its upload service (XEP-0363) serves plain HTTP on loopback too.
Accounts are made with `prosodyctl --config … register`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import slixmpp
from aiohttp import web

from mercato_ops.testnet import free_port

DOMAIN = "xmpp.test"
# A second host on the same server, as an older or minimal server would be: no archive,
# no carbons (the bridge falls back on offline storage).
PLAIN_DOMAIN = "plain.xmpp.test"
PROSODY = "/usr/bin/prosody"
PROSODYCTL = "/usr/bin/prosodyctl"

CONFIG = """-- Prosody for Mercato's tests: loopback only, no TLS, nothing shared with the system.
pidfile = "{base}/prosody.pid"
data_path = "{base}/data"
daemonize = false
run_as_root = true
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
s2s_ports = {{ }}
-- File uploads (XEP-0363) over plain HTTP on loopback.
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
http_external_url = "http://127.0.0.1:{http_port}/"
http_default_host = "upload.{domain}"
-- Tests only: logins without TLS, on loopback.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"
log = {{ debug = "{base}/prosody.log" }}
-- What the bridge relies on when a user's server has it: the message archive (MAM,
-- XEP-0313) for catching up after a crash, carbons (XEP-0280) for the user's other
-- devices. The archive is kept for every contact, as Prosody's default.
modules_enabled = {{ "roster"; "saslauth"; "disco"; "vcard_legacy"; "offline"; "ping";
                    "posix"; "mam"; "carbons" }}
modules_disabled = {{ "s2s"; "tls" }}
VirtualHost "{domain}"
VirtualHost "{plain_domain}"
    modules_disabled = {{ "mam"; "carbons" }}
Component "upload.{domain}" "http_file_share"
"""


@dataclass
class Prosody:
    base: Path
    port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.base / "prosody.cfg.lua"

    def start(self) -> None:
        (self.base / "data").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG.format(base=self.base, port=self.port,
                                                  http_port=self.http_port, domain=DOMAIN,
                                                  plain_domain=PLAIN_DOMAIN))
        with open(self.base / "prosody.out", "ab") as out:
            self.process = subprocess.Popen([PROSODY, "--config", str(self.config_path)],
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("prosody exited while starting:\n"
                                     + (self.base / "prosody.out").read_text(errors="replace"))
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port),
                                                                        timeout=1):
                return
            time.sleep(0.1)
        raise AssertionError(f"prosody did not listen on {self.port} within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def register(self, user: str, password: str, domain: str = DOMAIN) -> str:
        result = subprocess.run([PROSODYCTL, "--config", str(self.config_path), "register", user,
                                 domain, password], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        jid = f"{user}@{domain}"
        self.passwords[jid] = password
        return jid

    def change_password(self, jid: str, password: str) -> None:
        result = subprocess.run([PROSODYCTL, "--config", str(self.config_path), "passwd", jid],
                                input=f"{password}\n{password}\n", capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        self.passwords[jid] = password

    def connector_settings(self) -> dict[str, Any]:
        """The bridge's `contacts.networks.xmpp` section for this server."""
        return {"servers": {domain: f"127.0.0.1:{self.port}" for domain in (DOMAIN, PLAIN_DOMAIN)},
                "plaintext_on_loopback": True,
                "files_from_private_addresses": True}


@contextlib.contextmanager
def prosody_running(base: Path) -> Iterator[Prosody]:
    if shutil.which(PROSODY) is None:
        raise AssertionError("Prosody is not installed: apt-get install prosody "
                             "(make test does, as root)")
    server = Prosody(base, free_port(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# slixmpp gives an available presence's <show/> as its type too.
PRESENCE_SHOWS = ("away", "xa", "dnd", "chat")


class Friend:
    """Someone who has not moved: an XMPP account driven by slixmpp, keeping what it gets."""

    def __init__(self, server: Prosody, jid: str) -> None:
        self.server = server
        self.jid = jid
        self.received: list[Any] = []
        self._arrived = asyncio.Event()
        self.client = slixmpp.ClientXMPP(
            f"{jid}/phone", server.passwords[jid],
            plugin_config={"feature_mechanisms": {"unencrypted_scram": True}})
        self.client.enable_plaintext = True
        self.client.enable_starttls = False
        self.client.enable_direct_tls = False
        for plugin in ("xep_0030", "xep_0054", "xep_0066", "xep_0085", "xep_0359", "xep_0363",
                       "xep_0461"):
            self.client.register_plugin(plugin)
        self.client.add_event_handler("message", self._on_message)
        self.presences: list[tuple[str, str, str]] = []  # (from, type, show), as they came
        self.client.add_event_handler("presence", self._on_presence)

    def _on_message(self, message: Any) -> None:
        if message["body"]:
            self.received.append(message)
            self._arrived.set()

    def _on_presence(self, presence: Any) -> None:
        self.presences.append((str(presence["from"].bare), str(presence["type"]),
                               str(presence["show"])))

    async def wait_presence(self, jid: str, show: str, timeout: float = 30.0) -> None:
        """Until `jid`'s latest presence is available with this <show/> ("" for none)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = [p for p in self.presences if p[0] == jid]
            if latest and latest[-1][1] in ("available", *PRESENCE_SHOWS) and \
                    latest[-1][2] == show:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.jid} saw no presence {show!r} from {jid} in {timeout} s; "
                             f"saw {[p for p in self.presences if p[0] == jid]}")

    async def connect(self) -> Friend:
        started = asyncio.Event()
        self.client.add_event_handler("session_start", lambda _e: started.set())
        self.client.connect("127.0.0.1", self.server.port)
        await asyncio.wait_for(started.wait(), 20)
        await self.client.get_roster()
        self.client.send_presence()
        return self

    async def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(wait=1.0), 5)

    async def add_to_roster(self, jid: str, name: str) -> None:
        await self.client.client_roster.update(jid, name=name)

    async def publish_vcard(self, name: str, email: str = "") -> None:
        card = self.client.plugin["xep_0054"].make_vcard()
        card["FN"] = name
        if email:
            card["EMAIL"]["USERID"] = email
        await self.client.plugin["xep_0054"].publish_vcard(card)

    def send(self, to: str, body: str, *, message_id: str | None = None,
             reply_to: str | None = None, oob_url: str | None = None) -> str:
        stanza = self.client.make_message(mto=to, mbody=body, mtype="chat")
        if message_id:
            stanza["id"] = message_id
        if reply_to:
            stanza["reply"]["id"] = reply_to
            stanza["reply"]["to"] = to
        if oob_url:
            stanza["oob"]["url"] = oob_url
        stanza.send()
        return str(stanza["id"])

    def typing(self, to: str) -> None:
        stanza = self.client.make_message(mto=to, mtype="chat")
        stanza["chat_state"] = "composing"
        stanza.send()

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received:
                if predicate(message):
                    return message
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.5)
        raise AssertionError(f"{self.jid} got no matching message in {timeout} s; got "
                             f"{[m['body'] for m in self.received]}")

    def bodies(self) -> list[str]:
        return [str(m["body"]) for m in self.received]


@contextlib.asynccontextmanager
async def files_served(files: dict[str, tuple[bytes, str]]) -> AsyncIterator[str]:
    """A web server on loopback serving {path: (bytes, type)}, as an XMPP upload service
    would; yields its base URL."""
    async def serve(request: web.Request) -> web.Response:
        data, content_type = files[request.path]
        return web.Response(body=data, content_type=content_type)

    app = web.Application()
    for path in files:
        app.router.add_get(path, serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
