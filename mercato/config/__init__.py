"""One `mercato.yaml` for the whole network, parsed once into frozen objects.

The core owns the shared keys (server_name, public_baseurl, data_dir, synapse, federation,
logging, and for now `mercato up`'s demo and scale); each component owns its section and
registers it under the `mercato.config` entry-point group. docs/operator-guide.md lists them.
"""

from mercato.config.files import (
    DEFAULT_CONFIG_PATH,
    config_warnings,
    load_config,
    parse_config,
    write_config,
)
from mercato.config.network import LoggingConfig, MercatoConfig, model_with, reachable_host
from mercato.config.operations import DemoAccount, DemoConfig, ScaleConfig, scale_profile
from mercato.config.sections import (
    AppServiceConfig,
    ComponentSection,
    ConfigError,
    Port,
    PortNumber,
    Secret,
    Section,
    check_user_prefix,
    new_secret,
    registered_sections,
)
from mercato.config.synapse import FederationConfig, SynapseConfig

__all__ = [
    "DEFAULT_CONFIG_PATH", "AppServiceConfig", "ComponentSection", "ConfigError", "DemoAccount",
    "DemoConfig", "FederationConfig", "LoggingConfig", "MercatoConfig", "Port", "PortNumber",
    "ScaleConfig", "Secret", "Section", "SynapseConfig", "check_user_prefix", "config_warnings",
    "load_config", "model_with", "new_secret", "parse_config", "reachable_host",
    "registered_sections", "scale_profile", "write_config",
]
