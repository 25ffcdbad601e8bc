"""A shop's website for domain proofs: HTTPS on 127.0.0.1 with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

WELL_KNOWN = "/.well-known/mercato-verification"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed_certificate(directory: Path, name: str = "shop") -> Certificate:
    """A certificate for 127.0.0.1 that only whoever trusts this very file accepts."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mercato test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


class ShopWebsite:
    """What the shop publishes at /.well-known/mercato-verification (None: a 404)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.published: str | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@asynccontextmanager
async def shop_website(certificate: Certificate) -> AsyncIterator[ShopWebsite]:
    app = web.Application()
    site_state: dict[str, ShopWebsite] = {}

    async def well_known(_: web.Request) -> web.Response:
        website = site_state["website"]
        website.requests += 1
        if website.published is None:
            return web.Response(status=404, text="not found")
        return web.Response(text=website.published)

    app.router.add_get(WELL_KNOWN, well_known)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate.cert, certificate.key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    site_state["website"] = ShopWebsite(port)
    try:
        yield site_state["website"]
    finally:
        await runner.cleanup()
