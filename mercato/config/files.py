"""Reading and writing mercato.yaml: parsed once, checked as a whole, secrets kept.

A first run writes the file with safe defaults and fresh random secrets; later runs keep it.
A bad value is refused with a `ConfigError` that names the key and says what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mercato.config.network import MercatoConfig, network_model
from mercato.config.sections import (
    LISTENS,
    AppServiceConfig,
    ConfigError,
    marked_values,
)

DEFAULT_CONFIG_PATH = Path("mercato.yaml")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a known setting (check the spelling)"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def parse_config(raw: Any, base_dir: Path | str = ".") -> MercatoConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("mercato.yaml must hold a mapping of settings at the top level")
    try:
        config = network_model().model_validate({**raw, "base_dir": str(base_dir)})
    except ValidationError as e:
        raise ConfigError(f"invalid configuration: {_describe(e)}") from None
    _check_consistency(config)
    return config


def _check_consistency(config: MercatoConfig) -> None:
    _check_ports(config)
    _check_synapse(config)
    _check_tokens(config)


def _listening_ports(config: MercatoConfig) -> dict[str, int]:
    """Every `Port` of Synapse and the components: each section's `port` first, then the rest."""
    found = dict(marked_values(config.synapse, LISTENS, "synapse"))
    for key, section in config.sections().items():
        found.update(marked_values(section, LISTENS, key))
    return dict(sorted(found.items(), key=lambda item: not item[0].endswith(".port")))


def _check_ports(config: MercatoConfig) -> None:
    seen: dict[int, str] = {}
    for key, port in _listening_ports(config).items():
        if port in seen:
            raise ConfigError(f"invalid configuration: {key}: port {port} is already "
                              f"used by {seen[port]}")
        seen[port] = key


def _check_synapse(config: MercatoConfig) -> None:
    synapse = config.synapse
    if synapse.federation_port and not (synapse.tls_certificate and synapse.tls_private_key):
        raise ConfigError("invalid configuration: synapse.federation_port needs "
                          "synapse.tls_certificate and synapse.tls_private_key")
    if synapse.loopback_federation_for_tests and config.server_name.rsplit(":", 1)[0] not in (
            "127.0.0.1", "localhost", "[::1]"):
        raise ConfigError("invalid configuration: synapse.loopback_federation_for_tests is only "
                          "for test servers on 127.0.0.1; never turn it on for real users")
    if synapse.loopback_federation_for_tests and config.federation.ip_range_blacklist is not None:
        raise ConfigError("invalid configuration: federation.ip_range_blacklist: "
                          "synapse.loopback_federation_for_tests empties the block list "
                          "already; set one or the other")
    if synapse.federation_port in _listening_ports(config).values():
        raise ConfigError("invalid configuration: synapse.federation_port is already used")


def _check_tokens(config: MercatoConfig) -> None:
    """Synapse tells appservices apart by their tokens: no two may share one."""
    services = [(key, section) for key, section in config.sections().items()
                if isinstance(section, AppServiceConfig)]
    for index, (key, service) in enumerate(services):
        for other_key, other in services[index + 1:]:
            if service.as_token == other.as_token or service.hs_token == other.hs_token:
                raise ConfigError(f"invalid configuration: {key} and {other_key} "
                                  "must not share tokens")


def load_config(path: Path | str = DEFAULT_CONFIG_PATH, *, create: bool = False) -> MercatoConfig:
    """Read mercato.yaml; with create=True, write one with fresh secrets if it is missing."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise ConfigError(f"{path} does not exist: run `mercato up` or "
                              "`mercato config init` to create it")
        config = parse_config({}, base_dir=path.parent.resolve())
        write_config(config, path)
        return config
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    config = parse_config(raw, base_dir=path.parent.resolve())
    missing = _missing_generated_values(raw or {}, config)
    if missing:
        if not create:
            # A secret invented now would differ in every process that reads the file.
            raise ConfigError(
                f"{path} leaves out {len(missing)} generated secret(s): {', '.join(missing)}. "
                f"Run `mercato up` or `mercato config render` once: either writes fresh "
                f"values for them into {path.name} (keeping your settings, not your "
                f"comments). Or write each into it yourself")
        try:
            write_config(config, path)
        except OSError as e:
            raise ConfigError(f"{path} leaves out {', '.join(missing)} and cannot be "
                              f"completed ({e}); write them into it") from None
    return config


def config_warnings(config: MercatoConfig) -> list[str]:
    """Settings Mercato accepts but that put the network at risk, said each time it starts."""
    warnings = []
    if not config.federation.verify_certificates:
        warnings.append(
            "federation.verify_certificates is false: Synapse accepts any certificate from "
            "other homeservers, so anyone between them can pose as any server. Use "
            "federation.trusted_ca_file with your private CA instead.")
    return warnings


def _missing_generated_values(raw: dict[str, Any], config: MercatoConfig) -> list[str]:
    """The keys the file leaves out whose default is random (the secrets)."""
    missing: list[str] = []

    def walk(model: type[BaseModel], given: Any, path: tuple[str, ...]) -> None:
        given = given if isinstance(given, dict) else {}
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, given.get(name), (*path, name))
            elif field.default_factory is not None and name not in given:
                missing.append(".".join((*path, name)))

    walk(type(config), raw, ())
    return missing


def write_config(config: MercatoConfig, path: Path | str) -> None:
    """Write the config with every default spelled out, readable only by its owner."""
    path = Path(path)
    data = _in_file_order(config.model_dump(mode="json"))
    header = ("# Mercato configuration. Generated with random secrets on first run;\n"
              "# edit freely, then restart with `make run`. Reference: docs/operator-guide.md\n")
    tmp = path.with_suffix(".yaml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(header)
        yaml.safe_dump(data, out, sort_keys=False)
    os.replace(tmp, path)


def _in_file_order(data: dict[str, Any]) -> dict[str, Any]:
    """The components' sections after `federation`, where they have always been written."""
    shared = [key for key in MercatoConfig.model_fields if key in data]
    after = shared.index("federation") + 1
    components = [key for key in data if key not in shared]
    return {key: data[key] for key in [*shared[:after], *components, *shared[after:]]}
