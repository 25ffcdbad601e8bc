"""docker-compose.yml agrees with what `mercato config render` writes for its config.

No Docker runs here: docker-compose.yml is read as YAML, deploy/mercato.compose.yaml
is rendered into a temporary data directory with `render_all`, and every path, port,
URL and database one of them names is checked against the other. A URL is followed
the way a container would follow it: 127.0.0.1 stays inside the caller's network
namespace (its own, or the one `network_mode: service:X` lends it), a service name
leads to that service, and then the component listening on that port must be the
one the URL is meant for.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import annotated_types
import pytest
import yaml
from pydantic import BaseModel

from mercato.config import MercatoConfig, load_config, parse_config
from mercato.render import RenderedPaths, render_all

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
EXAMPLE_CONFIG = REPO / "deploy" / "mercato.compose.yaml"

# The compose service that runs each component of the network.
COMPONENT_SERVICES = {"synapse": "synapse", "commerce": "commerce",
                      "contacts": "contacts", "shopbot": "shopbot"}
APPSERVICES = ("commerce", "contacts")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::"}
PLACEHOLDER = "change-me-"

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's `${NAME:-default}` with nothing set, and `$$` for a literal `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("default") is None:
            raise AssertionError(f"docker-compose.yml: ${{{match.group('name')}}} has no "
                                 "default; the file must work without a .env")
        return match.group("default")

    return _VARIABLE.sub(replace, text)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def parse_mounts(service: dict[str, Any]) -> list[Mount]:
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append(Mount(str(volume["source"]), str(volume["target"]),
                                bool(volume.get("read_only", False))))
            continue
        source, target, *options = str(volume).split(":")
        mounts.append(Mount(source, target, "ro" in ",".join(options).split(",")))
    return mounts


@dataclass(frozen=True)
class Published:
    host_ip: str
    published: int
    target: int


@dataclass(frozen=True)
class Deployment:
    services: dict[str, dict[str, Any]]
    config: MercatoConfig
    config_path: Path
    paths: RenderedPaths  # rendered into a temporary data directory

    # -- compose ----------------------------------------------------------------------

    def argv(self, service: str) -> list[str]:
        command = self.services[service].get("command")
        if command is None:
            return []
        return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]

    def component(self, service: str) -> str | None:
        argv = self.argv(service)
        if argv[:3] == ["python", "-m", "synapse.app.homeserver"]:
            return "synapse"
        if argv[:1] == ["mercato"] and "run" in argv:
            return argv[argv.index("run") + 1]
        return None

    def mounts(self, service: str) -> list[Mount]:
        return parse_mounts(self.services[service])

    def mount_at(self, service: str, target: str) -> Mount | None:
        return next((m for m in self.mounts(service) if m.target == target), None)

    def environment(self, service: str) -> dict[str, str]:
        env = self.services[service].get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        return {str(k): str(v) for k, v in env.items()}

    def published(self, service: str) -> list[Published]:
        result = []
        for port in self.services[service].get("ports", []):
            if isinstance(port, dict):
                result.append(Published(str(port.get("host_ip", "0.0.0.0")),
                                        int(port["published"]), int(port["target"])))
                continue
            parts = str(port).split("/")[0].split(":")
            if len(parts) == 1:
                raise AssertionError(f"{service}: port {port} has no fixed host port")
            host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
            result.append(Published(host_ip, int(parts[-2]), int(parts[-1])))
        return result

    def depends_on(self, service: str) -> dict[str, str]:
        """Direct dependencies with their condition (the short list form means 'started')."""
        deps = self.services[service].get("depends_on", {})
        if isinstance(deps, list):
            return {name: "service_started" for name in deps}
        return {name: (spec or {}).get("condition", "service_started")
                for name, spec in deps.items()}

    def waits_for(self, service: str, other: str, condition: str) -> bool:
        """Whether `service` starts only once `other` meets `condition`, directly or not."""
        seen: set[str] = set()
        stack = [service]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for dep, cond in self.depends_on(current).items():
                if dep == other and cond == condition:
                    return True
                stack.append(dep)
        return False

    def namespace(self, service: str) -> str:
        """The service whose network namespace `service` lives in."""
        mode = str(self.services[service].get("network_mode", ""))
        return mode.removeprefix("service:") if mode.startswith("service:") else service

    # -- the network as the config describes it ------------------------------------------

    def port(self, component: str) -> int:
        return int(getattr(self.config, component).port)

    def bind_address(self, component: str) -> str:
        return str(getattr(self.config, component).bind_address)

    def reach(self, client: str, url: str) -> str:
        """The component a request from the `client` service to `url` arrives at."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
        assert port is not None, f"{url}: name the port explicitly"
        assert self.services[client].get("network_mode") != "none", (
            f"{client} has no network but must reach {url}")
        if host in LOOPBACK:
            namespace = self.namespace(client)
        else:
            assert host in self.services, (
                f"{client} reaches {url}, but {host!r} is neither 127.0.0.1 nor a service "
                f"of docker-compose.yml ({', '.join(sorted(self.services))})")
            assert "network_mode" not in self.services[host], (
                f"{url}: {host} shares another network namespace, so no name leads to it")
            namespace = host
        listeners = [component for component, service in COMPONENT_SERVICES.items()
                     if self.namespace(service) == namespace and self.port(component) == port]
        assert listeners, f"{client} → {url}: nothing listens on port {port} in {namespace}"
        assert len(listeners) == 1, f"{url}: {listeners} all listen on port {port}"
        component = listeners[0]
        bind = self.bind_address(component)
        if host in LOOPBACK:
            assert bind in LOOPBACK | WILDCARD, (
                f"{client} → {url}: {component} binds {bind}, which 127.0.0.1 does not reach")
        else:
            assert bind in WILDCARD, (
                f"{client} → {url}: {component} binds {bind}; other containers need 0.0.0.0")
        return component

    def in_container(self, rendered: Path) -> PurePosixPath:
        """Where a file `render_all` wrote shows up inside the containers."""
        return PurePosixPath(self.config.data_dir) / rendered.relative_to(self.paths.data_dir)


def _secrets(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every secret and password of the config (fields with a minimum length)."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _secrets(value, f"{prefix}{name}.")
        elif any(isinstance(m, annotated_types.MinLen) for m in field.metadata):
            yield f"{prefix}{name}", value


def _database_urls(config: MercatoConfig) -> dict[str, str]:
    return {"synapse": config.synapse.database, "commerce": config.commerce.database,
            "contacts": config.contacts.database}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    compose = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8")))
    services = compose["services"]
    config_target = services["config"]["environment"]["MERCATO_CONFIG"]
    mount = next(m for m in parse_mounts(services["config"]) if m.target == config_target)
    config_path = (REPO / mount.source).resolve()
    config = load_config(config_path)
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data_dir = tmp_path_factory.mktemp("compose-data")
    paths = render_all(parse_config({**raw, "data_dir": str(data_dir)},
                                    base_dir=config_path.parent))
    return Deployment(services, config, config_path, paths)


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# -- the example configuration --------------------------------------------------------


def test_compose_mounts_the_example_config(deployment: Deployment) -> None:
    assert deployment.config_path == EXAMPLE_CONFIG.resolve()


def test_example_config_spells_out_every_secret(deployment: Deployment) -> None:
    # The file is mounted read-only: a secret left to its random default would differ
    # between Synapse and each component.
    again = load_config(deployment.config_path)
    assert again.model_dump() == deployment.config.model_dump()
    for key, value in _secrets(deployment.config):
        assert value.startswith(PLACEHOLDER), f"{key}: the example must hold a placeholder"
    for component, url in _database_urls(deployment.config).items():
        password = unquote(urlsplit(url).password or "")
        assert not password or password.startswith(PLACEHOLDER), (
            f"{component}.database: the example must hold a placeholder password")


def test_data_dir_is_the_mount_point(deployment: Deployment) -> None:
    assert PurePosixPath(deployment.config.data_dir).is_absolute(), (
        "data_dir must be the absolute mount point of the data volume")


# -- one image, one config, one data volume ---------------------------------------------


def test_every_mercato_service_shares_image_config_and_data(deployment: Deployment) -> None:
    d = deployment
    synapse = d.services[COMPONENT_SERVICES["synapse"]]
    mercato_services = [name for name, svc in d.services.items()
                        if svc.get("build") or svc.get("image") == synapse["image"]]
    for required in [*COMPONENT_SERVICES.values(), "config", "accounts"]:
        assert required in mercato_services, f"{required} must run the Mercato image"
    config_target = d.environment("config")["MERCATO_CONFIG"]
    for name in mercato_services:
        svc = d.services[name]
        assert svc["image"] == synapse["image"], f"{name}: another image"
        assert svc.get("build") == synapse.get("build") == ".", f"{name}: another build"
        if name not in [*COMPONENT_SERVICES.values(), "config", "accounts"]:
            continue  # the namespace holder runs no Mercato code
        env = d.environment(name)
        assert env.get("MERCATO_CONFIG") == config_target, f"{name}: MERCATO_CONFIG"
        config_mount = d.mount_at(name, config_target)
        assert config_mount is not None, f"{name} does not mount {config_target}"
        assert (REPO / config_mount.source).resolve() == d.config_path, f"{name}: config file"
        assert config_mount.read_only, f"{name}: mount the config read-only"
        data_mount = d.mount_at(name, d.config.data_dir)
        assert data_mount is not None, f"{name} does not mount data_dir {d.config.data_dir}"
        assert data_mount.source == "./data", f"{name}: the data volume is ./data"
        argv = d.argv(name)
        if "--config" in argv:
            assert argv[argv.index("--config") + 1] == config_target, f"{name}: --config"
    assert (REPO / "Dockerfile").is_file()


def test_each_component_runs_once_in_its_service(deployment: Deployment) -> None:
    running = {}
    for service in deployment.services:
        component = deployment.component(service)
        if component:
            assert component not in running, f"{component} runs in {running[component]} too"
            running[component] = service
    assert running == COMPONENT_SERVICES


# -- rendering and Synapse ----------------------------------------------------------


def test_configs_are_rendered_before_synapse_starts(deployment: Deployment) -> None:
    d = deployment
    argv = d.argv("config")
    assert argv[0] == "mercato" and argv[-2:] == ["config", "render"]
    assert d.waits_for("synapse", "config", "service_completed_successfully")


def test_synapse_reads_the_rendered_homeserver_yaml(deployment: Deployment) -> None:
    d = deployment
    argv = d.argv("synapse")
    assert argv[argv.index("-c") + 1] == str(d.in_container(d.paths.homeserver_config))
    homeserver = _yaml(d.paths.homeserver_config)
    # Every file Synapse reads or writes lies in the data volume.
    files = [homeserver["log_config"], homeserver["media_store_path"],
             homeserver["signing_key_path"], homeserver["pid_file"],
             *homeserver["app_service_config_files"]]
    for file in files:
        assert Path(file).is_relative_to(d.paths.data_dir), f"{file} is outside data_dir"
    assert homeserver["app_service_config_files"] == [
        str(d.paths.commerce_registration), str(d.paths.contacts_registration)]
    (listener,) = homeserver["listeners"]
    assert listener["port"] == d.config.synapse.port
    assert listener["bind_addresses"] == [d.config.synapse.bind_address]


def test_appservice_registrations_lead_to_their_services(deployment: Deployment) -> None:
    d = deployment
    for name, path in (("commerce", d.paths.commerce_registration),
                       ("contacts", d.paths.contacts_registration)):
        registration = _yaml(path)
        assert d.reach(COMPONENT_SERVICES["synapse"], registration["url"]) == name, (
            f"Synapse sends {name}'s transactions to {registration['url']}")


def test_every_client_of_synapse_reaches_it(deployment: Deployment) -> None:
    d = deployment
    for client in ["commerce", "contacts", "shopbot", "accounts"]:
        assert d.reach(client, d.config.homeserver_url) == "synapse", client
        assert d.waits_for(client, "synapse", "service_healthy"), (
            f"{client} must wait until Synapse is healthy")


def test_shopbot_account_exists_before_the_bot_logs_in(deployment: Deployment) -> None:
    assert "register_user" in " ".join(deployment.argv("accounts"))
    assert deployment.waits_for("shopbot", "accounts", "service_completed_successfully")


# -- ports and health ---------------------------------------------------------------


def test_published_ports_are_the_configured_ports(deployment: Deployment) -> None:
    d = deployment
    published = [(s, p) for s in d.services for p in d.published(s)]
    for component, service in COMPONENT_SERVICES.items():
        port = d.port(component)
        matches = [(s, p) for s, p in published if p.target == port]
        assert len(matches) == 1, f"{component}: port {port} published {len(matches)} times"
        (owner, mapping), = matches
        assert mapping.published == port, f"{component}: published as {mapping.published}"
        assert owner == d.namespace(service), (
            f"{component}'s port is published by {owner}, not by its namespace")
        assert d.bind_address(component) in WILDCARD, (
            f"{component} binds {d.bind_address(component)}: a published port needs 0.0.0.0")
    assert len(published) == len(COMPONENT_SERVICES), "only the components are published"


def test_healthchecks_hit_health_on_the_configured_ports(deployment: Deployment) -> None:
    d = deployment
    for component, service in COMPONENT_SERVICES.items():
        check = d.services[service].get("healthcheck")
        assert check, f"{service} has no healthcheck"
        urls = re.findall(r"https?://[^'\"\s)]+", " ".join(map(str, check["test"])))
        assert len(urls) == 1, f"{service}: healthcheck must call one URL, found {urls}"
        assert urlsplit(urls[0]).path == "/health", f"{service}: {urls[0]}"
        assert d.reach(service, urls[0]) == component, f"{service}: {urls[0]}"
    assert d.services["postgres"].get("healthcheck"), "postgres has no healthcheck"


# -- databases ------------------------------------------------------------------------


def test_databases_are_the_compose_postgres(deployment: Deployment) -> None:
    d = deployment
    for component, url in _database_urls(d.config).items():
        if not url.startswith(("postgres://", "postgresql://")):
            continue
        service = COMPONENT_SERVICES[component]
        parts = urlsplit(url)
        host = parts.hostname or ""
        assert host in d.services, f"{component}.database: {host} is not a compose service"
        assert str(d.services[host]["image"]).startswith("postgres:")
        assert (parts.port or 5432) == 5432
        env = d.environment(host)
        assert parts.username == env["POSTGRES_USER"], f"{component}.database: user"
        assert unquote(parts.password or "") == env["POSTGRES_PASSWORD"], (
            f"{component}.database: password differs from POSTGRES_PASSWORD")
        dbname = parts.path.lstrip("/")
        assert d.waits_for(service, host, "service_healthy"), (
            f"{service} must wait until {host} is healthy")
        if dbname == env.get("POSTGRES_DB"):
            continue
        creators = [s for s in d.services
                    if re.search(rf"\b{re.escape(dbname)}\b", " ".join(d.argv(s)))
                    and d.waits_for(service, s, "service_completed_successfully")]
        assert creators, f"{component}.database: nothing creates {dbname} before {service}"
        for creator in creators:
            creator_env = d.environment(creator)
            assert creator_env.get("PGHOST") == host
            assert creator_env.get("PGUSER") == env["POSTGRES_USER"]
            assert creator_env.get("PGPASSWORD") == env["POSTGRES_PASSWORD"]
    homeserver = _yaml(d.paths.homeserver_config)
    if d.config.synapse.database != "sqlite":
        assert homeserver["database"]["name"] == "psycopg2"
        assert homeserver["database"]["args"]["dsn"] == d.config.synapse.database
        assert re.search(r"matrix-synapse\[postgres\]",
                         (REPO / "Dockerfile").read_text(encoding="utf-8")), (
            "Synapse on PostgreSQL needs psycopg2: install matrix-synapse[postgres]")


def test_image_exposes_the_configured_ports(deployment: Deployment) -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    exposed = {int(port) for line in re.findall(r"^EXPOSE\s+(.+)$", dockerfile, re.M)
               for port in line.split()}
    assert exposed == {deployment.port(c) for c in COMPONENT_SERVICES}
    # render_all reads homeserver-config/ next to the mercato package.
    assert re.search(r"^COPY\s+homeserver-config/?\s", dockerfile, re.M)
