"""Numbered schema upgrades of the contacts bridge database."""

from mercato.db import UpgradeTable

upgrade_table = UpgradeTable(version_table_name="contacts_version",
                             database_name="contacts bridge")

# They register themselves.
from . import (  # noqa: E402,F401
    v01_initial,
    v02_discovery,
    v03_invites,
    v04_verified_space,
    v05_message_outbox,
)
