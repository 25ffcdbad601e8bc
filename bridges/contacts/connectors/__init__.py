"""Network connectors of the contacts bridge: live networks beside file imports.

Each connector lives in its own module and is named here; the core (`manager`,
`portals`, `messages`, `commands`) works with any of them. docs/connectors.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from bridges.contacts.connectors.base import Connector
from mercato.config import ConfigError

# network name → "module:class". Adding a network is adding a line here.
CONNECTORS: dict[str, str] = {
    "xmpp": "bridges.contacts.connectors.xmpp:XmppConnector",
}


def load_connectors(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, Connector]:
    """The enabled connectors, each given its section of contacts.networks."""
    unknown = sorted(set(settings) - set(CONNECTORS))
    if unknown:
        raise ConfigError(f"invalid configuration: contacts.networks.{unknown[0]}: no such "
                          f"network (known: {', '.join(sorted(CONNECTORS))})")
    loaded: dict[str, Connector] = {}
    for name, path in CONNECTORS.items():
        module, _, cls = path.partition(":")
        connector = getattr(importlib.import_module(module), cls)(settings.get(name) or {})
        if connector.enabled:
            loaded[name] = connector
    return loaded
