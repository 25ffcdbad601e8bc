"""mercato.yaml: defaults, secrets that survive a reload, and bad values refused by name."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mercato.config import (
    ConfigError,
    MercatoConfig,
    config_warnings,
    load_config,
    parse_config,
)


def _secrets(config: MercatoConfig) -> dict[str, str]:
    return {
        "synapse.registration_shared_secret": config.synapse.registration_shared_secret,
        "synapse.macaroon_secret_key": config.synapse.macaroon_secret_key,
        "synapse.form_secret": config.synapse.form_secret,
        "commerce.as_token": config.commerce.as_token,
        "commerce.hs_token": config.commerce.hs_token,
        "commerce.service_token": config.commerce.service_token,
        "contacts.as_token": config.contacts.as_token,
        "contacts.hs_token": config.contacts.hs_token,
        "shopbot.password": config.shopbot.password,
        "demo.api_key": config.demo.api_key,
        "demo.buyer.password": config.demo.buyer.password,
        "demo.merchant.password": config.demo.merchant.password,
    }


# Defaults


def test_defaults_are_a_private_local_network() -> None:
    config = parse_config({})
    assert config.server_name == "localhost"
    assert config.synapse.bind_address == "127.0.0.1"
    assert config.synapse.port == 8008
    assert config.synapse.database == "sqlite"
    assert config.synapse.enable_registration is False
    assert config.synapse.relaxed_rate_limits is False
    assert (config.commerce.port, config.contacts.port, config.shopbot.port) == (8090, 8091, 8092)
    assert config.commerce.bot_localpart == "mercato"
    assert config.commerce.user_prefix == "shop_"
    assert config.contacts.bot_localpart == "contacts"
    assert config.shopbot.prefix == "!"
    assert config.logging.level == "INFO"
    assert config.logging.format == "auto"
    assert config.homeserver_url == "http://127.0.0.1:8008"
    assert config.client_baseurl == "http://localhost:8008"
    assert config.user_id("shopbot") == "@shopbot:localhost"


def test_an_empty_file_means_all_defaults() -> None:
    assert parse_config(None).server_name == "localhost"


def test_default_secrets_are_long_and_all_different() -> None:
    secrets = _secrets(parse_config({}))
    for key, value in secrets.items():
        # Demo passwords are typed by people trying the network: shorter, still random.
        assert len(value) >= (12 if key.startswith("demo.") else 16), key
    assert len(set(secrets.values())) == len(secrets)
    assert secrets["demo.api_key"].startswith("mk_")


def test_two_fresh_configs_do_not_share_server_secrets() -> None:
    first, second = _secrets(parse_config({})), _secrets(parse_config({}))
    for key in [k for k in first if not k.startswith("demo.")] + ["demo.api_key"]:
        assert first[key] != second[key], key


def test_two_fresh_configs_do_not_share_demo_passwords() -> None:
    first, second = parse_config({}), parse_config({})
    assert first.demo.buyer.password != second.demo.buyer.password
    assert first.demo.merchant.password != second.demo.merchant.password


def test_config_is_frozen() -> None:
    config = parse_config({})
    with pytest.raises(ValidationError):
        config.server_name = "example.com"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.synapse.port = 1  # type: ignore[misc]


# The generated file


def test_generated_file_keeps_its_secrets_on_a_second_load(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    created = load_config(path, create=True)
    assert path.exists()
    reloaded = load_config(path, create=True)
    again = load_config(path)
    assert _secrets(reloaded) == _secrets(created)
    assert _secrets(again) == _secrets(created)
    assert reloaded.model_dump() == created.model_dump()


def test_generated_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    load_config(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "mercato.yaml.tmp").exists()


def test_generated_file_spells_out_every_setting(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    config = load_config(path, create=True)
    text = path.read_text()
    assert text.startswith("# Mercato configuration.")
    raw = yaml.safe_load(text)
    assert raw["synapse"]["registration_shared_secret"] == \
        config.synapse.registration_shared_secret
    assert raw["commerce"]["as_token"] == config.commerce.as_token
    assert raw["server_name"] == "localhost"
    assert "base_dir" not in raw  # set by load_config, not by the file


def test_edits_to_the_file_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    load_config(path, create=True)
    raw = yaml.safe_load(path.read_text())
    raw["server_name"] = "shop.example.com"
    raw["synapse"]["port"] = 18008
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    assert config.server_name == "shop.example.com"
    assert config.synapse.port == 18008
    assert config.commerce.as_token == raw["commerce"]["as_token"]


def test_missing_file_without_create_says_how_to_make_one(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    with pytest.raises(ConfigError, match="does not exist.*mercato up"):
        load_config(path)
    assert not path.exists()


# Bad values


@pytest.mark.parametrize(
    ("raw", "key", "allowed"),
    [
        ({"synapse": {"port": 70000}}, "synapse.port", "65535"),
        ({"synapse": {"port": 0}}, "synapse.port", "greater than or equal to 1"),
        ({"commerce": {"port": "eighty"}}, "commerce.port", "integer"),
        ({"server_name": "bad name!"}, "server_name", "host name"),
        ({"commerce": {"bot_localpart": "Bad"}}, "commerce.bot_localpart", "lowercase"),
        ({"contacts": {"bot_localpart": "a b"}}, "contacts.bot_localpart", "localpart"),
        ({"synapse": {"prot": 8008}}, "synapse.prot", "not a known setting"),
        ({"sever_name": "x"}, "sever_name", "not a known setting"),
        ({"synapse": {"database": "mysql://db"}}, "synapse.database", "postgres://"),
        ({"commerce": {"database": "mysql://db"}}, "commerce.database", "sqlite:PATH"),
        ({"public_baseurl": "chat.example.com"}, "public_baseurl", "https://"),
        ({"logging": {"level": "LOUD"}}, "logging.level", "'DEBUG', 'INFO'"),
        ({"logging": {"format": "xml"}}, "logging.format", "'json'"),
        ({"demo": {"shop_slug": "Demo Shop"}}, "demo.shop_slug", "lowercase"),
        ({"commerce": {"as_token": "short"}}, "commerce.as_token", "at least 16"),
        ({"synapse": {"relaxed_rate_limits": "perhaps"}}, "synapse.relaxed_rate_limits",
         "boolean"),
        ({"contacts": {"smtp": {"host": "mail.example.org"}}}, "contacts.smtp",
         "from_address must be set"),
        ({"contacts": {"smtp": {"from_address": "nobody"}}}, "contacts.smtp.from_address",
         "email address"),
        ({"contacts": {"smtp": {"security": "ssl"}}}, "contacts.smtp.security", "'starttls'"),
        ({"contacts": {"sms_webhook_url": "sms.example.org"}}, "contacts.sms_webhook_url",
         "https://"),
        ({"synapse": {"metrics_port": 70000}}, "synapse.metrics_port", "65535"),
        ({"federation": {"ip_range_whitelist": ["10.0.0.300/8"]}},
         "federation.ip_range_whitelist", "'10.0.0.300/8' is not an IP range"),
        ({"federation": {"ip_range_whitelist": ["10.0.0.1/8"]}},
         "federation.ip_range_whitelist", "first of its range"),
        ({"federation": {"ip_range_whitelist": "10.0.0.0/8"}},
         "federation.ip_range_whitelist", "valid list"),
        ({"federation": {"ip_range_whitelist": ["0.0.0.0/0"]}},
         "federation.ip_range_whitelist", "every address"),
        ({"federation": {"ip_range_blacklist": ["private"]}},
         "federation.ip_range_blacklist", "'private' is not an IP range"),
        ({"federation": {"ip_range_blacklist": []}},
         "federation.ip_range_blacklist", "federation.ip_range_whitelist"),
        ({"federation": {"trusted_ca_file": "ca.pem"}}, "federation.trusted_ca_file",
         "absolute path"),
        ({"federation": {"verify_certificates": "no thanks"}},
         "federation.verify_certificates", "boolean"),
        ({"federation": {"ip_range_allowlist": ["10.0.0.0/8"]}},
         "federation.ip_range_allowlist", "not a known setting"),
    ],
)
def test_bad_value_is_refused_naming_key_and_what_is_allowed(
    raw: dict, key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    assert f"{key}:" in message
    assert allowed in message


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server_name": "bad name!", "synapse": {"port": 70000}})
    assert "server_name:" in str(caught.value)
    assert "synapse.port:" in str(caught.value)


@pytest.mark.parametrize("key", ["commerce", "contacts", "shopbot"])
def test_two_components_on_one_port_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({key: {"port": 8008}})
    assert str(caught.value).endswith(f"{key}.port: port 8008 is already used by synapse.port")


def test_synapse_metrics_port_is_in_the_port_registry() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"synapse": {"metrics_port": 8090}})
    assert str(caught.value).endswith(
        "synapse.metrics_port: port 8090 is already used by commerce.port")
    assert parse_config({"synapse": {"metrics_port": None}}).synapse.metrics_port is None


def test_synapse_metrics_default_to_port_9000_on_loopback() -> None:
    synapse = parse_config({}).synapse
    assert (synapse.metrics_port, synapse.metrics_bind_address) == (9000, "127.0.0.1")


def test_federation_defaults_keep_the_public_internet_rules() -> None:
    federation = parse_config({}).federation
    assert federation.ip_range_blacklist is None
    assert federation.ip_range_whitelist == []
    assert federation.trusted_ca_file == ""
    assert federation.verify_certificates is True
    assert config_warnings(parse_config({})) == []


def test_private_ranges_are_read_as_cidr() -> None:
    federation = parse_config({"federation": {
        "ip_range_whitelist": ["10.1.0.0/16", " 192.168.7.12", "fd00::/8"]}}).federation
    assert federation.ip_range_whitelist == ["10.1.0.0/16", "192.168.7.12/32", "fd00::/8"]


def test_unchecked_federation_certificates_are_warned_about() -> None:
    (warning,) = config_warnings(parse_config({"federation": {"verify_certificates": False}}))
    assert warning.startswith("federation.verify_certificates is false")
    assert "federation.trusted_ca_file" in warning


def test_loopback_test_switch_and_a_block_list_are_refused_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server_name": "127.0.0.1:8448",
                      "synapse": {"loopback_federation_for_tests": True},
                      "federation": {"ip_range_blacklist": ["127.0.0.0/8"]}})
    assert "federation.ip_range_blacklist:" in str(caught.value)


def test_hand_written_partial_file_says_what_completes_it(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    path.write_text("server_name: shop.example.org\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "synapse.registration_shared_secret" in message
    assert "`mercato up` or `mercato config render`" in message
    assert path.read_text() == "server_name: shop.example.org\n"


def test_commerce_and_contacts_must_not_share_tokens() -> None:
    token = "x" * 32
    with pytest.raises(ConfigError, match="must not share tokens"):
        parse_config({"commerce": {"as_token": token}, "contacts": {"as_token": token}})


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mercato.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="mapping of settings at the top level"):
        load_config(path)


def test_invalid_yaml_is_refused_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    path.write_text("synapse: [unclosed\nserver_name: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, create=True)
    assert f"{path} is not valid YAML" in str(caught.value)
    assert path.read_text().startswith("synapse: [unclosed")  # not overwritten


def test_bad_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    path.write_text("synapse:\n  port: 70000\n")
    with pytest.raises(ConfigError, match="synapse.port"):
        load_config(path, create=True)
    assert path.read_text() == "synapse:\n  port: 70000\n"


@pytest.mark.parametrize("name", ["example.com", "localhost:8448", "127.0.0.1:8448",
                                  "[::1]:8448", "shop-1.example.org"])
def test_valid_server_names_are_accepted(name: str) -> None:
    assert parse_config({"server_name": name}).server_name == name


@pytest.mark.parametrize("raw", [{"server_name": "localhost\n"},
                                 {"commerce": {"bot_localpart": "mercato\n"}}])
def test_trailing_newline_is_refused(raw: dict) -> None:
    with pytest.raises(ConfigError):
        parse_config(raw)


@pytest.mark.parametrize("prefix", ["", "Shop_"])
def test_user_prefix_that_claims_foreign_users_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match="commerce.user_prefix"):
        parse_config({"commerce": {"user_prefix": prefix}})


# Derived values


def test_data_dir_and_databases_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "mercato.yaml"
    path.parent.mkdir()
    config = load_config(path, create=True)
    data = (tmp_path / "conf" / "data").resolve()
    assert config.data_path == data
    assert config.database_url("commerce") == f"sqlite:{data / 'commerce.db'}"
    assert config.database_url("contacts") == f"sqlite:{data / 'contacts.db'}"


def test_absolute_data_dir_and_configured_database_are_kept(tmp_path: Path) -> None:
    config = parse_config({"data_dir": str(tmp_path / "elsewhere"),
                           "commerce": {"database": "postgres://u@db:5432/commerce"}},
                          base_dir=tmp_path / "conf")
    assert config.data_path == tmp_path / "elsewhere"
    assert config.database_url("commerce") == "postgres://u@db:5432/commerce"
    assert config.database_url("contacts") == f"sqlite:{tmp_path / 'elsewhere' / 'contacts.db'}"


@pytest.mark.parametrize(("bind", "url"), [
    ("0.0.0.0", "http://127.0.0.1:9008"),
    ("::", "http://127.0.0.1:9008"),
    ("127.0.0.1", "http://127.0.0.1:9008"),
    ("10.1.2.3", "http://10.1.2.3:9008"),
])
def test_homeserver_url_reaches_synapse_where_it_listens(bind: str, url: str) -> None:
    config = parse_config({"synapse": {"bind_address": bind, "port": 9008}})
    assert config.homeserver_url == url


def test_homeserver_url_brackets_an_ipv6_bind_address() -> None:
    config = parse_config({"synapse": {"bind_address": "::1"}})
    assert config.homeserver_url == "http://[::1]:8008"


def test_client_baseurl_comes_from_public_baseurl_without_trailing_slash() -> None:
    config = parse_config({"public_baseurl": "https://chat.example.com/"})
    assert config.client_baseurl == "https://chat.example.com"


# `mercato config check`, as the operator runs it


def _config_check(path: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from mercato_ops.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"])
    return result.exit_code, result.output + result.stderr


def test_config_check_says_what_completes_a_hand_written_file(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    path.write_text("server_name: shop.example.org\nfederation:\n"
                    "  ip_range_whitelist: [10.20.0.0/16]\n")
    code, output = _config_check(path)
    assert code == 1
    assert "leaves out" in output and "commerce.as_token" in output
    assert "Run `mercato up` or `mercato config render` once" in output


def test_config_check_warns_while_certificates_go_unchecked(tmp_path: Path) -> None:
    from mercato.config import write_config

    path = tmp_path / "mercato.yaml"
    write_config(parse_config({"federation": {"verify_certificates": False}}), path)
    code, output = _config_check(path)
    assert code == 0
    assert "WARNING: federation.verify_certificates is false" in output
    write_config(parse_config({}), path)
    assert "WARNING" not in _config_check(path)[1]


def test_config_check_names_a_bad_range(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    path.write_text("federation:\n  ip_range_whitelist: [192.168.1.0/33]\n")
    code, output = _config_check(path)
    assert code == 1
    assert "federation.ip_range_whitelist: '192.168.1.0/33' is not an IP range" in output
