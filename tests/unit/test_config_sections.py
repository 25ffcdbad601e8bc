"""Each component owns its section of mercato.yaml; the core parses it without naming it.

The components register their section classes under the `mercato.config` entry-point group;
a section the core has never heard of gets the same treatment as commerce's: its misspelt
keys refused by name, its ports checked against every other, its secrets generated once.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from pydantic import Field

from appservices.commerce.config import CommerceConfig
from bots.shopbot.config import ShopbotConfig
from bridges.contacts.config import ContactsConfig
from mercato.config import (
    ComponentSection,
    ConfigError,
    Port,
    Secret,
    load_config,
    model_with,
    new_secret,
    parse_config,
    registered_sections,
)
from mercato.config import files as config_files


class LoyaltyConfig(ComponentSection):
    """A component Mercato's core has never heard of."""

    key: ClassVar[str] = "loyalty"

    port: Port = 8095
    signing_key: Secret = Field(default_factory=new_secret)
    points_per_order: int = Field(default=10, ge=0)


@pytest.fixture
def with_loyalty(monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_with({**registered_sections(), "loyalty": LoyaltyConfig})
    monkeypatch.setattr(config_files, "network_model", lambda: model)


def test_the_components_register_their_own_sections() -> None:
    assert dict(registered_sections()) == {
        "commerce": CommerceConfig, "contacts": ContactsConfig, "shopbot": ShopbotConfig}


def test_a_component_reads_its_section_typed() -> None:
    config = parse_config({"commerce": {"user_prefix": "store_"}, "shopbot": {"prefix": "?"}})
    assert CommerceConfig.of(config).user_prefix == "store_"
    assert ShopbotConfig.of(config).prefix == "?"
    assert ContactsConfig.of(config) is config.contacts
    assert CommerceConfig.of(config).site_url == "http://localhost:8090"


@pytest.mark.usefixtures("with_loyalty")
def test_an_unknown_components_section_is_checked_like_the_others() -> None:
    assert parse_config({"loyalty": {"points_per_order": 5}}).loyalty.points_per_order == 5
    with pytest.raises(ConfigError) as caught:
        parse_config({"loyalty": {"points_per_ordr": 5}})
    assert str(caught.value) == ("invalid configuration: loyalty.points_per_ordr: is not a "
                                 "known setting (check the spelling)")


@pytest.mark.usefixtures("with_loyalty")
def test_an_unknown_components_port_is_in_the_port_registry() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"loyalty": {"port": 8091}})
    assert str(caught.value).endswith("loyalty.port: port 8091 is already used by contacts.port")


@pytest.mark.usefixtures("with_loyalty")
def test_an_unknown_components_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    created = load_config(path, create=True)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written["loyalty"]["signing_key"] == created.loyalty.signing_key
    assert list(written)[5:9] == ["commerce", "contacts", "shopbot", "loyalty"]
    assert load_config(path).loyalty.signing_key == created.loyalty.signing_key

    del written["loyalty"]["signing_key"]
    path.write_text(yaml.safe_dump(written), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"leaves out 1 generated secret\(s\): "
                                          r"loyalty\.signing_key"):
        load_config(path)
