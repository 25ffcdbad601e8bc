"""docker-compose.yml agrees with what `mercato --profile scale config render` writes.

No Docker runs here. docker-compose.yml is read as YAML; its `config` service's own
command is run through Mercato's CLI on a copy of deploy/mercato.compose.yaml whose
data_dir is a temporary directory, so the files checked are the ones the containers
would read (homeserver.yaml, one workers/<name>.yaml per Synapse worker, the appservice
registrations). Every path, port, URL and database one side names is then checked
against the other.

A URL is followed the way a container would follow it: 127.0.0.1 stays inside the
caller's network namespace (its own, or the one `network_mode: service:X` lends it), a
service name leads to that service, and then the process listening on that port must
be the one the URL is meant for. What listens where comes from the rendered files
(Synapse's main process and workers) and from mercato.yaml (the router and Mercato's
components), never from docker-compose.yml itself.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import annotated_types
import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from mercato.config import MercatoConfig, load_config, scale_profile
from mercato_ops.cli import cli
from mercato_ops.render import RenderedPaths, ScaleLayout

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
EXAMPLE_CONFIG = REPO / "deploy" / "mercato.compose.yaml"

# docker-compose.yml is the production form of this profile.
PROFILE = "scale"
# What `mercato run X` serves, besides Synapse's own processes.
COMPONENTS = ("router", "commerce", "contacts", "shopbot")
CLIENTS_OF_SYNAPSE = ("commerce", "contacts", "shopbot", "accounts")
HOMESERVER = ["python", "-m", "synapse.app.homeserver"]
WORKER = ["python", "-m", "synapse.app.generic_worker"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::"}
PLACEHOLDER = "change-me-"
KEEP_RUNNING = {"unless-stopped", "always"}

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
class Listener:
    """A port some process of a compose service listens on."""

    service: str
    name: str  # "synapse", "synapse replication", a worker's name, a component, "redis"…
    port: int
    bind: str


@dataclass(frozen=True)
class Deployment:
    services: dict[str, dict[str, Any]]
    raw_config: dict[str, Any]  # deploy/mercato.compose.yaml as written
    config: MercatoConfig  # as every `mercato --profile scale` process sees it
    config_path: Path
    paths: RenderedPaths  # rendered into a temporary data directory

    # -- compose ----------------------------------------------------------------------

    def argv(self, service: str) -> list[str]:
        command = self.services[service].get("command")
        if command is None:
            return []
        return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]

    def runs(self, service: str) -> str | None:
        """`mercato … run X` → X."""
        argv = self.argv(service)
        if argv[:1] == ["mercato"] and "run" in argv:
            return argv[argv.index("run") + 1]
        return None

    def services_running(self, component: str) -> list[str]:
        return [s for s in self.services if self.runs(s) == component]

    def service_of(self, component: str) -> str:
        (service,) = self.services_running(component)
        return service

    def main_services(self) -> list[str]:
        return [s for s in self.services if self.argv(s)[:3] == HOMESERVER]

    def worker_services(self) -> list[str]:
        return [s for s in self.services if self.argv(s)[:3] == WORKER]

    def synapse_services(self) -> list[str]:
        return [*self.main_services(), *self.worker_services()]

    def config_files(self, service: str) -> list[PurePosixPath]:
        argv = self.argv(service)
        return [PurePosixPath(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg == "-c"]

    def profile(self, service: str) -> str:
        """The profile a `mercato` command runs with: --profile, else MERCATO_PROFILE."""
        argv = self.argv(service)
        if "--profile" in argv:
            return argv[argv.index("--profile") + 1]
        return self.environment(service).get("MERCATO_PROFILE", "single")

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

    def healthcheck_url(self, service: str) -> str:
        check = self.services[service].get("healthcheck")
        assert check, f"{service} has no healthcheck"
        urls = re.findall(r"https?://[^'\"\s)]+", " ".join(map(str, check["test"])))
        assert len(urls) == 1, f"{service}: its healthcheck must call one URL, found {urls}"
        assert urlsplit(urls[0]).path == "/health", f"{service}: {urls[0]}"
        return urls[0]

    # -- rendered files ------------------------------------------------------------------

    def in_container(self, rendered: Path) -> PurePosixPath:
        """Where a file `render_all` wrote shows up inside the containers."""
        return PurePosixPath(self.config.data_dir) / rendered.relative_to(self.paths.data_dir)

    def rendered(self, in_container: PurePosixPath) -> Path:
        """The rendered file a container reads at `in_container`."""
        data_dir = PurePosixPath(self.config.data_dir)
        assert in_container.is_relative_to(data_dir), (
            f"{in_container} is outside data_dir {data_dir}, where the configs are rendered")
        path = self.paths.data_dir / in_container.relative_to(data_dir)
        assert path.is_file(), f"{in_container}: `config render` writes no such file"
        return path

    def homeserver(self) -> dict[str, Any]:
        return _yaml(self.paths.homeserver_config)

    # -- the network as the rendered configuration describes it ----------------------------

    def listeners(self) -> list[Listener]:
        found: list[Listener] = []
        for service in self.services:
            argv = self.argv(service)
            if argv[:3] == HOMESERVER:
                (config_file,) = self.config_files(service)
                for listener in _yaml(self.rendered(config_file))["listeners"]:
                    names = {n for r in listener.get("resources", []) for n in r["names"]}
                    name = "synapse replication" if "replication" in names else "synapse"
                    if listener["type"] == "metrics":
                        name = "synapse metrics"
                    for bind in listener["bind_addresses"]:
                        found.append(Listener(service, name, int(listener["port"]), bind))
            elif argv[:3] == WORKER:
                worker = _yaml(self.rendered(self.config_files(service)[-1]))
                for listener in worker["worker_listeners"]:
                    name = worker["worker_name"]
                    if listener["type"] == "metrics":
                        name += " metrics"
                    for bind in listener["bind_addresses"]:
                        found.append(Listener(service, name, int(listener["port"]), bind))
            elif self.runs(service) == "router":
                # mercato_ops/cli.py: router.run(synapse.bind_address, synapse.port)
                found.append(Listener(service, "router", self.config.synapse.port,
                                      self.config.synapse.bind_address))
            elif self.runs(service) in COMPONENTS:
                section = getattr(self.config, str(self.runs(service)))
                found.append(Listener(service, str(self.runs(service)), int(section.port),
                                      str(section.bind_address)))
            elif str(self.services[service].get("image", "")).startswith("redis:"):
                port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 6379
                found.append(Listener(service, "redis", port, "0.0.0.0"))
            elif str(self.services[service].get("image", "")).startswith("postgres:"):
                found.append(Listener(service, "postgres", 5432, "0.0.0.0"))
        return found

    def listener(self, name: str) -> Listener:
        matches = [entry for entry in self.listeners() if entry.name == name]
        assert len(matches) == 1, f"{name}: {len(matches)} listeners, expected one"
        return matches[0]

    def reach(self, client: str, url: str) -> Listener:
        """Where a request from the `client` service to `url` arrives."""
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
        listeners = [entry for entry in self.listeners()
                     if self.namespace(entry.service) == namespace and entry.port == port]
        assert listeners, f"{client} → {url}: nothing listens on port {port} in {namespace}"
        assert len({(e.service, e.name) for e in listeners}) == 1, (
            f"{url}: {[e.name for e in listeners]} all listen on port {port}")
        target = listeners[0]
        binds = {entry.bind for entry in listeners}
        if host in LOOPBACK:
            assert binds & (LOOPBACK | WILDCARD), (
                f"{client} → {url}: {target.name} binds {binds}, which 127.0.0.1 misses")
        else:
            assert binds & WILDCARD, (
                f"{client} → {url}: {target.name} binds {binds}; other containers need 0.0.0.0")
        return target


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


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    compose = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8")))
    services = compose["services"]
    env = services["config"].get("environment", {})
    config_target = env["MERCATO_CONFIG"]
    mount = next(m for m in parse_mounts(services["config"]) if m.target == config_target)
    config_path = (REPO / mount.source).resolve()
    raw = _yaml(config_path)

    # The `config` service's own command, on a copy whose data_dir is writable here.
    base = tmp_path_factory.mktemp("compose")
    copy = base / "mercato.yaml"
    copy.write_text(yaml.safe_dump({**raw, "data_dir": str(base / "data")}), encoding="utf-8")
    argv = services["config"]["command"]
    argv = shlex.split(argv) if isinstance(argv, str) else [str(a) for a in argv]
    assert argv[0] == "mercato", "the config service must run `mercato … config render`"
    args = [str(copy) if previous == "--config" else arg
            for previous, arg in zip(["", *argv[:-1]], argv, strict=True)][1:]
    container_env = {str(k): str(v) for k, v in env.items()}
    result = CliRunner().invoke(cli, args, env={**container_env, "MERCATO_CONFIG": str(copy)},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rendered_config = load_config(copy)
    profile = (argv[argv.index("--profile") + 1] if "--profile" in argv
               else container_env.get("MERCATO_PROFILE", "single"))
    if profile == "scale":
        rendered_config = scale_profile(rendered_config)
    paths = RenderedPaths.for_config(rendered_config)

    config = load_config(config_path)
    return Deployment(services, raw, scale_profile(config), config_path, paths)


# -- the example configuration --------------------------------------------------------


def test_compose_mounts_the_example_config(deployment: Deployment) -> None:
    assert deployment.config_path == EXAMPLE_CONFIG.resolve()


def test_example_config_spells_out_every_secret(deployment: Deployment) -> None:
    # The file is mounted read-only: a secret left to its random default would differ
    # between Synapse and each component.
    again = scale_profile(load_config(deployment.config_path))
    assert again.model_dump() == deployment.config.model_dump()
    for key, value in _secrets(deployment.config):
        assert value.startswith(PLACEHOLDER), f"{key}: the example must hold a placeholder"
    urls = {**_database_urls(deployment.config), "scale.postgres": deployment.config.scale.postgres}
    for key, url in urls.items():
        password = unquote(urlsplit(url).password or "")
        assert not password or password.startswith(PLACEHOLDER), (
            f"{key}: the example must hold a placeholder password")


def test_data_dir_is_the_mount_point(deployment: Deployment) -> None:
    assert PurePosixPath(deployment.config.data_dir).is_absolute(), (
        "data_dir must be the absolute mount point of the data volume")


# -- one image, one config, one data volume, one profile ------------------------------


def _mercato_services(d: Deployment) -> list[str]:
    image = d.services["config"]["image"]
    return [name for name, svc in d.services.items()
            if svc.get("build") or svc.get("image") == image]


def test_every_mercato_service_shares_image_config_and_data(deployment: Deployment) -> None:
    d = deployment
    mercato_services = _mercato_services(d)
    required = [*d.synapse_services(), *(d.service_of(c) for c in COMPONENTS),
                "config", "accounts", "postgres-init"]
    for name in required:
        assert name in mercato_services, f"{name} must run the Mercato image"
    config_target = d.environment("config")["MERCATO_CONFIG"]
    image = d.services["config"]["image"]
    for name in mercato_services:
        svc = d.services[name]
        assert svc["image"] == image, f"{name}: another image"
        assert svc.get("build") == ".", f"{name}: another build"
        if not d.argv(name) or d.argv(name)[0] not in ("mercato", "python"):
            continue  # the namespace holder runs no Mercato code
        env = d.environment(name)
        assert env.get("MERCATO_CONFIG") == config_target, f"{name}: MERCATO_CONFIG"
        # So that `docker compose exec <service> mercato …` runs the same profile too.
        assert env.get("MERCATO_PROFILE") == PROFILE, f"{name}: MERCATO_PROFILE={PROFILE}"
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
        if argv[0] == "mercato":
            assert d.profile(name) == PROFILE, f"{name} must run `mercato --profile {PROFILE}`"
    assert (REPO / "Dockerfile").is_file()


def test_each_process_runs_once_in_its_service(deployment: Deployment) -> None:
    d = deployment
    for component in COMPONENTS:
        running = d.services_running(component)
        assert len(running) == 1, f"`mercato run {component}` runs in {running or 'no service'}"
    assert len(d.main_services()) == 1, f"Synapse's main process runs in {d.main_services()}"
    for service, svc in d.services.items():
        # What this test reads as a service's command is what runs, on `docker compose up`.
        assert "entrypoint" not in svc, f"{service}: an entrypoint would change its command"
        assert "profiles" not in svc, f"{service}: `docker compose up` must start it"
    for service in [*d.synapse_services(), *(d.service_of(c) for c in COMPONENTS),
                    "postgres", "redis"]:
        assert d.services[service].get("restart") in KEEP_RUNNING, (
            f"{service} must be restarted when it dies")


# -- rendering and Synapse ----------------------------------------------------------


def test_configs_are_rendered_before_synapse_starts(deployment: Deployment) -> None:
    d = deployment
    argv = d.argv("config")
    assert argv[0] == "mercato" and argv[-2:] == ["config", "render"]
    assert d.profile("config") == PROFILE, f"render with --profile {PROFILE}"
    for service in d.synapse_services():
        assert d.waits_for(service, "config", "service_completed_successfully"), (
            f"{service} must start after the configuration is rendered")


def test_synapse_reads_the_rendered_homeserver_yaml(deployment: Deployment) -> None:
    d = deployment
    (main,) = d.main_services()
    assert d.config_files(main) == [d.in_container(d.paths.homeserver_config)]
    homeserver = d.homeserver()
    # Every file Synapse reads or writes lies in the data volume.
    files = [homeserver["log_config"], homeserver["media_store_path"],
             homeserver["signing_key_path"], homeserver["pid_file"],
             *homeserver["app_service_config_files"]]
    for file in files:
        assert Path(file).is_relative_to(d.paths.data_dir), f"{file} is outside data_dir"
    assert homeserver["app_service_config_files"] == [
        str(d.paths.commerce_registration), str(d.paths.contacts_registration)]
    layout = ScaleLayout.for_config(d.config)
    assert {(entry.name, entry.port) for entry in d.listeners() if entry.service == main} == {
        ("synapse", layout.main_port), ("synapse replication", layout.main_replication_port),
        ("synapse metrics", d.config.synapse.metrics_port)}


def test_every_worker_runs_in_its_own_service(deployment: Deployment) -> None:
    d = deployment
    layout = ScaleLayout.for_config(d.config)
    homeserver_yaml = d.in_container(d.paths.homeserver_config)
    expected = {str(d.in_container(w.config_path(d.paths.synapse_dir))): w
                for w in layout.workers}
    seen: set[str] = set()
    for service in d.worker_services():
        argv = d.argv(service)
        files = d.config_files(service)
        assert len(files) == 2, f"{service}: {shlex.join(argv)}; expected two -c files"
        assert argv == [*WORKER, "-c", str(homeserver_yaml), "-c", str(files[-1])], (
            f"{service}: {shlex.join(argv)}; a worker reads homeserver.yaml, then its own file")
        assert str(files[-1]) in expected, f"{service} runs no worker of ScaleLayout: {files[-1]}"
        worker = expected[str(files[-1])]
        assert worker.name not in seen, f"worker {worker.name} runs in two services"
        seen.add(worker.name)
        rendered = _yaml(d.rendered(files[-1]))
        assert rendered["worker_app"] == "synapse.app.generic_worker"
        assert rendered["worker_name"] == worker.name
        assert [listener["port"] for listener in rendered["worker_listeners"]] == [
            worker.port, worker.metrics_port]
        # A worker refuses a schema the main process has not prepared yet.
        (main,) = d.main_services()
        assert d.waits_for(service, main, "service_healthy"), (
            f"{service} must start once Synapse's main process is healthy")
        assert d.namespace(service) == d.namespace(main), (
            f"{service}: the workers find the main process on 127.0.0.1")
    missing = sorted({w.name for w in layout.workers} - seen)
    assert not missing, f"no compose service runs the workers {missing}"


def test_synapse_processes_reach_each_other(deployment: Deployment) -> None:
    d = deployment
    homeserver = d.homeserver()
    layout = ScaleLayout.for_config(d.config)
    names = {w.name for w in layout.workers}
    instance_map = homeserver["instance_map"]
    for service in d.synapse_services():
        for instance, address in instance_map.items():
            target = d.reach(service, f"http://{address['host']}:{address['port']}")
            wanted = "synapse replication" if instance == "main" else instance
            assert target.name == wanted, (
                f"{service} → instance_map.{instance}: reaches {target.name}")
    # Every process Synapse hands a job to runs in some service.
    assigned = [*homeserver.get("stream_writers", {}).get("events", []),
                *homeserver["federation_sender_instances"], *homeserver["pusher_instances"],
                homeserver["notify_appservices_from_worker"]]
    for name in assigned:
        assert name in names, f"{name} is given work but is not a worker of ScaleLayout"


def test_redis_is_the_compose_redis(deployment: Deployment) -> None:
    d = deployment
    redis = d.homeserver()["redis"]
    assert redis["enabled"] is True
    assert (redis["host"], redis["port"]) == (d.config.scale.redis_host,
                                             d.config.scale.redis_port)
    host = d.config.scale.redis_host
    assert host in d.services, f"scale.redis_host {host!r} is not a compose service"
    assert re.fullmatch(r"redis:7(\..*)?", str(d.services[host].get("image"))), (
        f"{host}: image redis:7")
    test = " ".join(map(str, d.services[host].get("healthcheck", {}).get("test", [])))
    assert "redis-cli" in test and "ping" in test, f"{host}: healthcheck with redis-cli ping"
    port_arg = [f"-p {redis['port']}", f"--port {redis['port']}"]
    if redis["port"] != 6379:
        assert any(arg in test for arg in port_arg), f"{host}: ping port {redis['port']}"
    for service in d.synapse_services():
        assert d.reach(service, f"redis://{host}:{redis['port']}").service == host, service
        assert d.waits_for(service, host, "service_healthy"), (
            f"{service} must wait until {host} is healthy")
    assert not d.published(host), "Redis has no password: never publish it"


def test_appservice_registrations_lead_to_their_services(deployment: Deployment) -> None:
    d = deployment
    for name, path in (("commerce", d.paths.commerce_registration),
                       ("contacts", d.paths.contacts_registration)):
        registration = _yaml(path)
        # The appservice sender sends transactions; the others may ping the appservice.
        for service in d.synapse_services():
            assert d.reach(service, registration["url"]).name == name, (
                f"{service} sends {name}'s transactions to {registration['url']}")


# -- the router ---------------------------------------------------------------------


def test_the_router_serves_synapse_port(deployment: Deployment) -> None:
    d = deployment
    router = d.service_of("router")
    layout = ScaleLayout.for_config(d.config)
    assert d.listener("router").port == d.config.synapse.port
    # mercato_ops/cli.py hands the router these two upstreams.
    main = d.reach(router, f"http://127.0.0.1:{layout.main_port}")
    assert (main.name, main.service) == ("synapse", d.main_services()[0])
    reader = d.reach(router, f"http://127.0.0.1:{layout.reader.port}")
    assert reader.name == layout.reader.name
    worker = _yaml(layout.reader.config_path(d.paths.synapse_dir))
    served = {n for listener in worker["worker_listeners"]
              for r in listener.get("resources", []) for n in r["names"]}
    assert {"client", "federation"} <= served, f"{reader.name} must serve what it is sent"
    for service in d.synapse_services():
        assert d.waits_for(router, service, "service_healthy"), (
            f"the router must start once {service} is healthy")


def test_every_client_of_synapse_reaches_it(deployment: Deployment) -> None:
    d = deployment
    router = d.service_of("router")
    for client in CLIENTS_OF_SYNAPSE:
        service = d.service_of(client) if client in COMPONENTS else client
        assert d.reach(service, d.config.homeserver_url).name == "router", client
        assert d.waits_for(service, router, "service_healthy"), (
            f"{client} must wait until the router is healthy")


def test_shopbot_account_exists_before_the_bot_logs_in(deployment: Deployment) -> None:
    assert "register_user" in " ".join(deployment.argv("accounts"))
    assert deployment.waits_for(deployment.service_of("shopbot"), "accounts",
                                "service_completed_successfully")


# -- ports and health ---------------------------------------------------------------


def test_no_two_processes_share_a_port(deployment: Deployment) -> None:
    d = deployment
    taken: dict[tuple[str, int], str] = {}
    for entry in d.listeners():
        key = (d.namespace(entry.service), entry.port)
        assert taken.setdefault(key, entry.name) == entry.name, (
            f"{entry.name} and {taken[key]} both listen on port {entry.port} in {key[0]}")


def test_published_ports_are_the_configured_ports(deployment: Deployment) -> None:
    d = deployment
    published = [(s, p) for s in d.services for p in d.published(s)]
    for component in COMPONENTS:
        listener = d.listener(component)
        matches = [(s, p) for s, p in published if p.target == listener.port]
        assert len(matches) == 1, (
            f"{component}: port {listener.port} published {len(matches)} times")
        (owner, mapping), = matches
        assert mapping.published == listener.port, (
            f"{component}: published as {mapping.published}")
        assert mapping.host_ip in LOOPBACK, f"{component}: publish on 127.0.0.1 only"
        assert owner == d.namespace(listener.service), (
            f"{component}'s port is published by {owner}, not by its namespace")
        assert listener.bind in WILDCARD, (
            f"{component} binds {listener.bind}: a published port needs 0.0.0.0")
    assert d.listener("router").port == d.config.synapse.port
    assert len(published) == len(COMPONENTS), (
        "only the router and Mercato's components are published; Synapse's main process "
        "and workers, PostgreSQL and Redis stay inside")


def test_every_synapse_process_serves_metrics_inside_the_namespace(
        deployment: Deployment) -> None:
    d = deployment
    # `docker compose exec commerce mercato admin status` asks each of them.
    asker = d.service_of("commerce")
    for service in d.synapse_services():
        (metrics,) = [e for e in d.listeners()
                      if e.service == service and e.name.endswith("metrics")]
        assert metrics.bind in LOOPBACK, (
            f"{service}: metrics are unauthenticated; listen on 127.0.0.1 only")
        url = f"http://127.0.0.1:{metrics.port}/_synapse/metrics"
        assert d.reach(asker, url) == metrics, f"{asker} → {url}"


def test_healthchecks_hit_health_on_the_configured_ports(deployment: Deployment) -> None:
    d = deployment
    http_services = {*d.synapse_services(), *(d.service_of(c) for c in COMPONENTS)}
    for service in sorted(http_services):
        url = d.healthcheck_url(service)
        target = d.reach(service, url)
        assert target.service == service, f"{service}: {url} reaches {target.name}"
        assert target.name != "synapse replication", f"{service}: check the client listener"
    layout = ScaleLayout.for_config(d.config)
    for worker in layout.workers:
        (service,) = [s for s in d.worker_services()
                      if d.config_files(s)[-1] == d.in_container(
                          worker.config_path(d.paths.synapse_dir))]
        assert urlsplit(d.healthcheck_url(service)).port == worker.port, worker.name
    assert d.services["postgres"].get("healthcheck"), "postgres has no healthcheck"


# -- databases ------------------------------------------------------------------------


class _FakeServer:
    """Stands in for asyncpg's connection to PostgreSQL's `postgres` database."""

    def __init__(self) -> None:
        self.url = ""
        self.statements: list[str] = []

    async def connect(self, url: str, **_: Any) -> _FakeServer:
        self.url = url
        return self

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return []  # a new cluster: no database exists yet

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements.append(sql)
        return "CREATE DATABASE"

    async def close(self) -> None:
        pass


def test_databases_are_the_compose_postgres(deployment: Deployment) -> None:
    d = deployment
    scale = d.config.scale
    server = urlsplit(scale.postgres)
    host = server.hostname or ""
    assert host in d.services, f"scale.postgres: {host} is not a compose service"
    assert str(d.services[host]["image"]).startswith("postgres:")
    assert (server.port or 5432) == 5432
    env = d.environment(host)
    assert server.username == env["POSTGRES_USER"], "scale.postgres: user"
    assert unquote(server.password or "") == env["POSTGRES_PASSWORD"], (
        "scale.postgres: password differs from POSTGRES_PASSWORD")
    for component, url in _database_urls(d.config).items():
        assert url == f"{scale.postgres}/{scale.database_prefix}{component}", component
        written = d.raw_config.get(component, {}).get("database")
        assert written in (None, url), (
            f"{component}.database in the example is {written}, but the scale profile "
            f"uses {url}: leave it out")
    homeserver = d.homeserver()
    assert homeserver["database"]["name"] == "psycopg2"
    assert homeserver["database"]["args"]["dsn"] == d.config.synapse.database
    for service in [*d.synapse_services(), d.service_of("commerce"), d.service_of("contacts")]:
        assert d.waits_for(service, "postgres-init", "service_completed_successfully"), (
            f"{service} must start once its database exists")
    assert d.waits_for("postgres-init", host, "service_healthy")
    assert not d.published(host), "PostgreSQL is not published"


def test_postgres_init_creates_the_databases_the_profile_uses(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncpg

    d = deployment
    argv = d.argv("postgres-init")
    assert argv[:2] == ["python", "-c"], "postgres-init runs a python -c script"
    fake = _FakeServer()
    monkeypatch.setattr(asyncpg, "connect", fake.connect)
    monkeypatch.setenv("MERCATO_CONFIG", str(d.config_path))
    exec(compile(argv[2], "postgres-init", "exec"), {"__name__": "__postgres_init__"})
    assert fake.url, "postgres-init connected to no PostgreSQL server"

    server = urlsplit(fake.url)
    assert server.hostname == urlsplit(d.config.scale.postgres).hostname
    assert server.username == d.environment("postgres")["POSTGRES_USER"]
    assert unquote(server.password or "") == d.environment("postgres")["POSTGRES_PASSWORD"]
    created = {}
    for sql in fake.statements:
        match = re.match(r'CREATE DATABASE "?(\w+)"?(.*)', sql, re.S)
        assert match, sql
        created[match.group(1)] = match.group(2)
    wanted = {component: urlsplit(url).path.lstrip("/")
              for component, url in _database_urls(d.config).items()}
    assert set(created) == set(wanted.values())
    assert re.search(r"LC_COLLATE '?C'?", created[wanted["synapse"]]), (
        "Synapse refuses a database whose collation is not C")


def test_image_holds_synapse_with_postgres_and_redis(deployment: Deployment) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (synapse,) = [r for r in pyproject["project"]["dependencies"]
                  if r.startswith("matrix-synapse[")]
    match = re.match(r"matrix-synapse\[([^\]]*)\]", synapse)
    assert match, synapse
    extras = set(match.group(1).split(","))
    assert {"postgres", "redis"} <= extras, f"{synapse}: the scale profile needs both extras"
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^RUN pip install (-e )?\.(\s|$)", dockerfile, re.M), (
        "the image installs Mercato with the dependencies pyproject.toml pins")


def test_image_holds_every_package_the_commands_need() -> None:
    # `mercato` (mercato_ops.cli) and the components' subcommands are imported in the image.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = {pattern.split(".")[0].rstrip("*") for pattern in include}
    targets = [*project["project"]["scripts"].values(),
               *(target for group in project["project"]["entry-points"].values()
                 for target in group.values())]
    needed = {target.split(".")[0] for target in targets}
    assert needed <= installed, f"pyproject.toml does not install {needed - installed}"
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY\s+(\w+)/?\s", dockerfile, re.M))
    assert installed <= copied, f"the Dockerfile does not copy {installed - copied}"


def test_image_exposes_the_configured_ports(deployment: Deployment) -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    exposed = {int(port) for line in re.findall(r"^EXPOSE\s+(.+)$", dockerfile, re.M)
               for port in line.split()}
    assert exposed == {deployment.listener(c).port for c in COMPONENTS}
    # render_all reads homeserver-config/ next to the mercato package.
    assert re.search(r"^COPY\s+homeserver-config/?\s", dockerfile, re.M)
