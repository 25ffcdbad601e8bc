"""Fixtures shared by every test: databases on both engines, service checks, and where
the contacts bridge's verification codes go.

In CI (CI=true) nothing skips: a test that needs PostgreSQL or Redis fails loudly
when the service is missing. On a laptop without them, those tests skip.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from mercato_ops.testnet import free_port  # noqa: F401  (tests import it from here)
from tests.verification_sinks import MailSink, SmsGateway

POSTGRES_ADMIN_URL = os.environ.get("MERCATO_TEST_POSTGRES",
                                    "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_ADDRESS = ("127.0.0.1", 6379)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_service(what: str) -> None:
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not reachable", pytrace=False)
    pytest.skip(f"{what} is not reachable")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as e:
        missing_service(f"PostgreSQL at {POSTGRES_ADMIN_URL} ({e})")
    name = f"mercato_test_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'test.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def redis_address() -> tuple[str, int]:
    try:
        with socket.create_connection(REDIS_ADDRESS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                missing_service("Redis (no PONG)")
    except OSError as e:
        missing_service(f"Redis at {REDIS_ADDRESS[0]}:{REDIS_ADDRESS[1]} ({e})")
    return REDIS_ADDRESS


@pytest.fixture(scope="session")
def code_sinks() -> Iterator[tuple[SmsGateway, MailSink]]:
    """Where the contacts bridge sends verification codes: an SMS gateway and a mail server
    (the integration and federation networks both send theirs here)."""
    sms, mail = SmsGateway(token="test-sms-gateway-token").start(), MailSink().start()
    try:
        yield sms, mail
    finally:
        sms.stop()
        mail.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI nothing may skip: a skipped test is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which is not allowed: {report.longrepr}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the scale profile, leave out tests of what only the single profile has.

    Deselected, not skipped: they are not meant to run there (see the marker's text).
    """
    if os.environ.get("MERCATO_TEST_PROFILE") != "scale":
        return
    kept = [item for item in items if item.get_closest_marker("single_profile") is None]
    deselected = [item for item in items if item.get_closest_marker("single_profile")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
