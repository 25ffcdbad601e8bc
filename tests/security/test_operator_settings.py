"""Operator settings that could open the network are refused or rendered harmlessly.

The `federation` section lets private homeservers reach each other, and Synapse's
metrics get a port of their own. A typo or a pasted value must not widen what Synapse
may connect to, turn certificate checks off, put the metrics on the public listener,
or smuggle settings into the rendered homeserver.yaml. No network: the config parser
and the renderer, read back as Synapse reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mercato.config import ConfigError, parse_config
from mercato_ops.render import render_all

SMUGGLED = "\nfederation_verify_certificates: false\nip_range_blacklist: []\n#"


@pytest.mark.parametrize(("federation", "key"), [
    ({"ip_range_whitelist": ["0.0.0.0/0"]}, "federation.ip_range_whitelist"),
    ({"ip_range_whitelist": ["::/0"]}, "federation.ip_range_whitelist"),
    ({"ip_range_whitelist": ["*"]}, "federation.ip_range_whitelist"),
    ({"ip_range_whitelist": ["10.0.0.0/8" + SMUGGLED]}, "federation.ip_range_whitelist"),
    ({"ip_range_whitelist": ["10.0.0.0/8, 192.168.0.0/16"]}, "federation.ip_range_whitelist"),
    ({"ip_range_blacklist": []}, "federation.ip_range_blacklist"),
    ({"ip_range_blacklist": ["127.0.0.0/8" + SMUGGLED]}, "federation.ip_range_blacklist"),
    ({"trusted_ca_file": "/etc/ca.pem" + SMUGGLED}, "federation.trusted_ca_file"),
    ({"trusted_ca_file": "../../ca.pem"}, "federation.trusted_ca_file"),
    ({"verify_certificates": "off"}, "federation.verify_certificates"),
])
def test_settings_that_would_open_federation_are_refused(federation: dict[str, Any],
                                                         key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"federation": federation})
    assert f"{key}:" in str(caught.value)


@pytest.mark.parametrize("address", ["127.0.0.1" + SMUGGLED, "localhost", "0.0.0.0/0", ""])
def test_metrics_bind_address_must_be_an_address(address: str) -> None:
    with pytest.raises(ConfigError, match="synapse.metrics_bind_address:"):
        parse_config({"synapse": {"metrics_bind_address": address}})


def test_loopback_test_switch_cannot_hide_behind_federation_settings() -> None:
    with pytest.raises(ConfigError, match="loopback_federation_for_tests"):
        parse_config({"server_name": "shop.example.org",
                      "synapse": {"loopback_federation_for_tests": True},
                      "federation": {"ip_range_whitelist": ["10.0.0.0/8"]}})


def test_metrics_never_reach_the_public_listener(tmp_path: Path) -> None:
    config = parse_config({"synapse": {"bind_address": "0.0.0.0"}}, base_dir=tmp_path)
    homeserver = yaml.safe_load(render_all(config).homeserver_config.read_text())
    for listener in homeserver["listeners"]:
        names = {n for r in listener.get("resources", []) for n in r["names"]}
        if listener["type"] == "metrics":
            assert listener["bind_addresses"] == ["127.0.0.1"]
        else:
            assert "metrics" not in names, listener


def test_default_federation_rules_are_synapses(tmp_path: Path) -> None:
    homeserver = yaml.safe_load(render_all(parse_config({}, base_dir=tmp_path))
                                .homeserver_config.read_text())
    for key in ("ip_range_blacklist", "ip_range_whitelist", "federation_custom_ca_list",
                "federation_verify_certificates", "federation_certificate_verification_whitelist"):
        assert key not in homeserver, key
