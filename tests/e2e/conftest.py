"""Browser tests: Debian's Chromium driven by Playwright against the session network.

Playwright's own browser download cannot work on this network, so the tests launch
/usr/bin/chromium (`make test` installs it, as root); without it they fail in CI and skip elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import missing_service

# pytest 9 refuses `pytest_plugins` outside the root conftest, and registering
# tests/integration/conftest.py a second time would clash with its own loading.
# Importing makes the fixtures visible here; `network` needs `shop_certificate`.
from tests.integration.conftest import (  # noqa: F401
    api,
    buyer,
    http,
    network,
    shop_certificate,
)

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google's hosts, which
# this closed network refuses. Playwright adds a fresh, empty profile of its own.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        missing_service(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_FLAGS)
        yield chromium
        await chromium.close()
