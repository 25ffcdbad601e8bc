"""Rendering Synapse's config and the appservice registrations, and Synapse reading them."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from synapse.config.appservice import load_appservices
from synapse.config.homeserver import HomeServerConfig
from synapse.module_api.errors import ConfigError as SynapseConfigError

from appservices.commerce.circle.synapse_module import DirectPartners
from mercato.config import MercatoConfig, parse_config
from mercato.config.sections import ConfigError
from mercato.db import UpgradeTable, open_database
from mercato_ops.render import RenderedPaths, namespace_regex, render_all


def _config(tmp_path: Path, **raw: Any) -> MercatoConfig:
    return parse_config(raw, base_dir=tmp_path)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _user_regexes(registration: dict[str, Any]) -> list[str]:
    return [ns["regex"] for ns in registration["namespaces"]["users"]]


def _claims(regexes: list[str], text: str) -> bool:
    # Synapse tests namespaces with re.match, as here.
    return any(re.match(regex, text) for regex in regexes)


def _synapse_config(paths: RenderedPaths) -> HomeServerConfig:
    return HomeServerConfig.load_config("mercato test", ["-c", str(paths.homeserver_config)])


def test_render_all_writes_every_file_privately(tmp_path: Path) -> None:
    config = _config(tmp_path)
    paths = render_all(config)
    assert paths.data_dir == tmp_path / "data"
    for path in (paths.homeserver_config, paths.log_config, paths.commerce_registration,
                 paths.contacts_registration, paths.signing_key):
        assert path.is_file(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (paths.synapse_dir / "media_store").is_dir()
    assert paths.log_dir.is_dir()
    assert not list(paths.synapse_dir.rglob("*.tmp"))


def test_homeserver_yaml_carries_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, server_name="shop.example.com", synapse={"port": 18008})
    paths = render_all(config)
    homeserver = _yaml(paths.homeserver_config)
    assert homeserver["server_name"] == "shop.example.com"
    assert homeserver["listeners"][0]["port"] == 18008
    assert homeserver["registration_shared_secret"] == config.synapse.registration_shared_secret
    assert homeserver["database"]["name"] == "sqlite3"
    assert homeserver["app_service_config_files"] == [
        str(paths.commerce_registration), str(paths.contacts_registration)]
    assert homeserver["log_config"] == str(paths.log_config)
    assert homeserver["signing_key_path"] == str(paths.signing_key)


def test_postgres_database_is_passed_to_synapse(tmp_path: Path) -> None:
    dsn = "postgresql://synapse@127.0.0.1:5432/synapse"
    paths = render_all(_config(tmp_path, synapse={"database": dsn}))
    database = _yaml(paths.homeserver_config)["database"]
    assert database["name"] == "psycopg2"
    assert database["args"]["dsn"] == dsn
    assert (database["args"]["cp_min"], database["args"]["cp_max"]) == (2, 10)


def test_connections_per_process_bounds_synapse_and_the_components_pools(
        tmp_path: Path) -> None:
    dsn = "postgresql://synapse@127.0.0.1:5432/synapse"
    config = _config(tmp_path, synapse={"database": dsn}, scale={"connections_per_process": 4})
    assert _yaml(render_all(config).homeserver_config)["database"]["args"]["cp_max"] == 4
    pool = open_database("postgres://127.0.0.1/commerce", UpgradeTable(), "commerce",
                         max_connections=config.scale.connections_per_process)
    assert pool._db_args["max_size"] == 4  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="connections_per_process: Input should be greater"):
        _config(tmp_path, scale={"connections_per_process": 1})


@pytest.mark.parametrize("name", ["commerce", "contacts"])
def test_registrations_are_unlimited_exclusive_and_anchored(tmp_path: Path, name: str) -> None:
    config = _config(tmp_path)
    paths = render_all(config)
    registration = _yaml(getattr(paths, f"{name}_registration"))
    service = getattr(config, name)
    assert registration["id"] == f"mercato-{name}"
    assert registration["as_token"] == service.as_token
    assert registration["hs_token"] == service.hs_token
    assert registration["sender_localpart"] == service.bot_localpart
    assert registration["url"] == f"http://127.0.0.1:{service.port}"
    assert registration["rate_limited"] is False
    namespaces = registration["namespaces"]["users"] + registration["namespaces"]["aliases"]
    assert namespaces
    for namespace in namespaces:
        assert namespace["exclusive"] is True
        assert namespace["regex"].startswith("^")
        assert namespace["regex"].endswith("$")


def test_appservice_url_avoids_the_wildcard_address(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path, commerce={"bind_address": "0.0.0.0"}))
    assert _yaml(paths.commerce_registration)["url"] == "http://127.0.0.1:8090"


def test_commerce_claims_only_its_own_users_and_aliases(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path))
    registration = _yaml(paths.commerce_registration)
    users = _user_regexes(registration)
    aliases = [ns["regex"] for ns in registration["namespaces"]["aliases"]]
    assert _claims(users, "@shop_demo:localhost")
    assert _claims(users, "@mercato:localhost")
    for foreign in ["@shop_x:evil.example", "@shop_demo:localhost.evil", "@xshop_demo:localhost",
                    "@shop_:localhost", "@buyer:localhost", "@mercato:evil.example",
                    "@mercatox:localhost", "@shop_demo:localhost:8008"]:
        assert not _claims(users, foreign), foreign
    assert _claims(aliases, "#shop_demo:localhost")
    for foreign in ["#shop_demo:evil.example", "#xshop_demo:localhost", "@shop_demo:localhost"]:
        assert not _claims(aliases, foreign), foreign


def test_contacts_does_not_claim_commerce_users(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path))
    users = _user_regexes(_yaml(paths.contacts_registration))
    assert _claims(users, "@contacts_alice:localhost")
    assert _claims(users, "@contacts:localhost")
    assert not _claims(users, "@shop_demo:localhost")
    assert not _claims(users, "@mercato:localhost")


def test_dots_in_server_name_are_escaped(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path, server_name="127.0.0.1:8448"))
    users = _user_regexes(_yaml(paths.commerce_registration))
    assert r"127\.0\.0\.1:8448" in users[1]
    assert _claims(users, "@shop_demo:127.0.0.1:8448")
    assert not _claims(users, "@shop_demo:127x0x0x1:8448")
    assert not _claims(users, "@shop_demo:127.0.0.1:84480")


def test_namespace_regex_escapes_the_prefix() -> None:
    regex = namespace_regex("@", "shop.", "localhost")
    assert re.match(regex, "@shop.demo:localhost")
    assert not re.match(regex, "@shopxdemo:localhost")


def test_relaxed_rate_limits_only_when_asked(tmp_path: Path) -> None:
    strict = _yaml(render_all(_config(tmp_path / "strict")).homeserver_config)
    assert not [key for key in strict if key.startswith("rc_")]
    relaxed_config = _config(tmp_path / "relaxed", synapse={"relaxed_rate_limits": True})
    relaxed = _yaml(render_all(relaxed_config).homeserver_config)
    assert relaxed["rc_message"] == {"per_second": 10000, "burst_count": 10000}
    assert relaxed["rc_login"]["failed_attempts"]["per_second"] == 10000
    assert relaxed["rc_joins"]["local"]["burst_count"] == 10000


def test_turning_relaxed_rate_limits_off_again_removes_them(tmp_path: Path) -> None:
    render_all(_config(tmp_path, synapse={"relaxed_rate_limits": True}))
    homeserver = _yaml(render_all(_config(tmp_path)).homeserver_config)
    assert "rc_message" not in homeserver


def test_signing_key_is_created_once_and_kept(tmp_path: Path) -> None:
    config = _config(tmp_path)
    paths = render_all(config)
    key = paths.signing_key.read_text()
    assert key.startswith("ed25519 a_mrc0 ")
    render_all(config)
    render_all(_config(tmp_path, synapse={"relaxed_rate_limits": True}))
    assert paths.signing_key.read_text() == key


def test_rendering_twice_keeps_the_registration_tokens(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = render_all(config).commerce_registration.read_text()
    assert render_all(config).commerce_registration.read_text() == first


# Synapse itself reads the result.


def test_synapse_generate_keys_accepts_the_config(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path, synapse={"relaxed_rate_limits": True}))
    key = paths.signing_key.read_text()
    result = subprocess.run(
        [sys.executable, "-m", "synapse.app.homeserver", "-c", str(paths.homeserver_config),
         "--generate-keys"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert paths.signing_key.read_text() == key  # Synapse found our key, made none


@pytest.mark.parametrize("server_name", ["localhost", "127.0.0.1:8448"])
def test_synapse_parses_the_full_config_and_registrations(
    tmp_path: Path, server_name: str
) -> None:
    config = _config(tmp_path, server_name=server_name)
    paths = render_all(config)
    hs_config = _synapse_config(paths)
    assert hs_config.server.server_name == server_name
    assert hs_config.server.public_baseurl == "http://localhost:8008/"
    assert hs_config.registration.registration_shared_secret == \
        config.synapse.registration_shared_secret
    assert hs_config.key.signing_key[0].version == "a_mrc0"

    services = {service.id: service for service in load_appservices(
        hs_config.server.server_name, hs_config.appservice.app_service_config_files)}
    assert set(services) == {"mercato-commerce", "mercato-contacts"}
    commerce = services["mercato-commerce"]
    assert commerce.token == config.commerce.as_token
    assert commerce.sender.to_string() == f"@mercato:{server_name}"
    assert not commerce.is_rate_limited()
    assert commerce.is_exclusive_user(f"@shop_demo:{server_name}")
    assert commerce.is_exclusive_alias(f"#shop_demo:{server_name}")
    assert not commerce.is_exclusive_user("@shop_x:evil.example")
    assert not commerce.is_exclusive_user(f"@shop_demo:{server_name}.evil")
    assert not commerce.is_exclusive_user(f"@xshop_demo:{server_name}")
    assert not services["mercato-contacts"].is_exclusive_user(f"@shop_demo:{server_name}")
    # The Circle's module, which tells the commerce appservice alone who has a DM with whom.
    (module, module_config), = hs_config.modules.loaded_modules
    assert module is DirectPartners
    assert module_config == {"asker": f"@mercato:{server_name}"}


def test_the_direct_partners_module_refuses_a_config_without_the_asker() -> None:
    for bad in ({}, {"asker": ""}, {"asker": "mercato"}, None):
        with pytest.raises(SynapseConfigError, match="commerce appservice's Matrix ID"):
            DirectPartners.parse_config(bad)  # type: ignore[arg-type]


_RELAXED = ["rc_message", "rc_registration", "rc_joins_local", "rc_joins_remote",
            "rc_joins_per_room", "rc_3pid_validation", "rc_room_creation", "rc_login_address",
            "rc_login_account", "rc_login_failed_attempts", "rc_admin_redaction",
            "rc_delayed_event_mgmt", "rc_media_create"]


def test_synapse_applies_the_relaxed_rate_limits(tmp_path: Path) -> None:
    relaxed = _synapse_config(render_all(
        _config(tmp_path / "relaxed", synapse={"relaxed_rate_limits": True}))).ratelimiting
    strict = _synapse_config(render_all(_config(tmp_path / "strict"))).ratelimiting
    for name in _RELAXED:
        assert getattr(relaxed, name).per_second == 10000, name
        assert getattr(relaxed, name).burst_count == 10000, name
    assert strict.rc_message.per_second < 10000


def test_synapse_applies_relaxed_invite_limits(tmp_path: Path) -> None:
    relaxed = _synapse_config(render_all(
        _config(tmp_path, synapse={"relaxed_rate_limits": True}))).ratelimiting
    for name in ["rc_invites_per_room", "rc_invites_per_user", "rc_invites_per_issuer"]:
        assert getattr(relaxed, name).per_second == 10000, name


def test_log_config_is_a_valid_logging_config(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path, logging={"level": "DEBUG", "format": "json"}))
    # In a child process: dictConfig would replace this test run's logging.
    script = (
        "import logging, logging.config, sys, yaml\n"
        "logging.config.dictConfig(yaml.safe_load(open(sys.argv[1])))\n"
        "logging.getLogger('synapse.test').warning('rendered %s', 'ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(paths.log_config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"event": "rendered ok"' in result.stderr
    log_file = paths.log_dir / "synapse.log"
    assert '"event": "rendered ok"' in log_file.read_text()


# -- Synapse's metrics --------------------------------------------------------------


def _metrics_listeners(hs_config: HomeServerConfig) -> list[Any]:
    return [listener for listener in hs_config.server.listeners if listener.type == "metrics"]


def test_synapse_metrics_have_their_own_loopback_listener(tmp_path: Path) -> None:
    hs_config = _synapse_config(render_all(_config(tmp_path)))
    assert hs_config.metrics.enable_metrics is True
    (metrics,) = _metrics_listeners(hs_config)
    assert (metrics.port, metrics.bind_addresses) == (9000, ["127.0.0.1"])
    # The public client/federation listener never serves them.
    for listener in hs_config.server.listeners:
        if listener.type == "http":
            assert "metrics" not in {n for r in listener.http_options.resources
                                     for n in r.names}


def test_synapse_metrics_port_null_turns_them_off(tmp_path: Path) -> None:
    hs_config = _synapse_config(render_all(_config(tmp_path, synapse={"metrics_port": None})))
    assert hs_config.metrics.enable_metrics is False
    assert _metrics_listeners(hs_config) == []


def test_each_scale_worker_has_a_metrics_listener_of_its_own(tmp_path: Path) -> None:
    config = _config(tmp_path, synapse={"metrics_bind_address": "0.0.0.0"},
                     scale={"worker_port_base": 19000})
    paths = render_all(config, "scale")
    ports = []
    for worker in sorted((paths.synapse_dir / "workers").iterdir()):
        # As the worker process reads it: homeserver.yaml, then its own file.
        hs_config = HomeServerConfig.load_config("mercato test", [
            "-c", str(paths.homeserver_config), "-c", str(worker)])
        assert hs_config.metrics.enable_metrics is True
        (metrics,) = [listener for listener in hs_config.worker.worker_listeners
                      if listener.type == "metrics"]
        assert metrics.bind_addresses == ["0.0.0.0"]
        ports.append(metrics.port)
    assert sorted(ports) == [19007, 19008, 19009, 19010, 19011]
    main = _yaml(paths.homeserver_config)["listeners"]
    assert [listener["port"] for listener in main if listener["type"] == "metrics"] == [9000]


# -- federation outside the public internet ----------------------------------------------


def _ca_file(directory: Path) -> Path:
    from tests.integration.local_https import self_signed_certificate

    return self_signed_certificate(directory, name="private-ca").cert


def test_federation_defaults_are_synapses_public_internet_ones(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path))
    homeserver = _yaml(paths.homeserver_config)
    for key in ("ip_range_blacklist", "ip_range_whitelist", "federation_custom_ca_list",
                "federation_verify_certificates"):
        assert key not in homeserver, key
    server = _synapse_config(paths).server
    for private in ("10.1.2.3", "192.168.1.10", "172.16.0.1", "127.0.0.1"):
        assert private in server.ip_range_blocklist, private
    assert not server.ip_range_allowlist


def test_private_network_and_private_ca_reach_synapse(tmp_path: Path) -> None:
    ca = _ca_file(tmp_path)
    paths = render_all(_config(tmp_path, federation={
        "ip_range_whitelist": ["10.1.0.0/16", "192.168.5.0/24", "fd12:3456::/32"],
        "trusted_ca_file": str(ca)}))
    homeserver = _yaml(paths.homeserver_config)
    assert homeserver["ip_range_whitelist"] == ["10.1.0.0/16", "192.168.5.0/24",
                                                "fd12:3456::/32"]
    assert homeserver["federation_custom_ca_list"] == [str(ca)]
    assert "federation_verify_certificates" not in homeserver
    hs_config = _synapse_config(paths)
    server = hs_config.server
    # The named ranges get through; the rest of the private space stays blocked.
    assert "10.1.2.3" in server.ip_range_allowlist
    assert "192.168.5.7" in server.ip_range_allowlist
    assert "10.2.0.1" not in server.ip_range_allowlist
    assert "10.2.0.1" in server.ip_range_blocklist
    assert "169.254.169.254" in server.ip_range_blocklist
    assert hs_config.tls.federation_ca_trust_root is not None
    assert hs_config.tls.federation_verify_certificates is True


def test_own_block_list_and_unchecked_certificates_reach_synapse(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path, federation={
        "ip_range_blacklist": ["127.0.0.0/8", "169.254.0.0/16"],
        "verify_certificates": False}))
    homeserver = _yaml(paths.homeserver_config)
    assert homeserver["ip_range_blacklist"] == ["127.0.0.0/8", "169.254.0.0/16"]
    assert homeserver["federation_verify_certificates"] is False
    hs_config = _synapse_config(paths)
    assert "10.1.2.3" not in hs_config.server.ip_range_blocklist
    assert "127.0.0.1" in hs_config.server.ip_range_blocklist
    assert hs_config.tls.federation_verify_certificates is False


def test_loopback_test_switch_renders_as_before(tmp_path: Path) -> None:
    paths = render_all(_config(tmp_path, server_name="127.0.0.1:8448", synapse={
        "loopback_federation_for_tests": True}, federation={
        "ip_range_whitelist": ["10.1.0.0/16"]}))
    homeserver = _yaml(paths.homeserver_config)
    assert homeserver["ip_range_blacklist"] == []
    assert homeserver["federation_verify_certificates"] is False
    assert homeserver["ip_range_whitelist"] == ["10.1.0.0/16"]
    _synapse_config(paths)
