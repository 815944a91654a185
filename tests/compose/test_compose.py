"""docker-compose.yml without a Docker engine: valid against the Compose Specification schema, and
consistent with the code: the modules the commands run exist, the environment is what
``Settings.from_env`` reads, ports line up, the proxy sends every route of each HTTP service to that
service, and the images ``make test-compose`` builds from Debian keep the public images' contract.
``tests/compose/running`` runs the file for real (``make test-compose``)."""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from skillrelay_common import bus_auth
from skillrelay_common.settings import Settings
from skillrelay_devstack.embedded import free_port, nats_server_binary, wait_for_port

# Every service may connect through any node of the cluster.
CLUSTER_URLS = "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CADDYFILE = ROOT / "docker" / "Caddyfile"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
NATS_CONF = ROOT / "docker" / "nats" / "nats.conf"
SCHEMA = ROOT / "tests" / "vendor" / "compose-spec.schema.json"
STAND_INS = ROOT / "tests" / "compose" / "images"

# What a user exports before `docker compose up` (the file refuses to start without the secrets).
USER_ENV = {
    "SKILLRELAY_ADMIN_TOKEN": "admin-token",
    "SKILLRELAY_SECRET_KEY": "k" * 43,
    # `python -m skillrelay bus-secrets` prints these.
    "SKILLRELAY_NATS_SERVICE_PASSWORD": "pwservice",
    "SKILLRELAY_NATS_SYSTEM_PASSWORD": "pwsystem",
    "SKILLRELAY_NATS_CALLOUT_SEED": "SAseed",
    "SKILLRELAY_NATS_CALLOUT_ISSUER": "Aissuer",
    "SKILLRELAY_NATS_ROUTE_PASSWORD": "pwroute",
}
HTTP_SERVICES = {  # compose service -> (module, app module, port setting)
    "registry": ("skillrelay_registry", "skillrelay_registry.app", "registry_port"),
    "auth": ("skillrelay_auth", "skillrelay_auth.app", "auth_port"),
    "edge-1": ("skillrelay_edge", "skillrelay_edge.app", "edge_port"),
    "edge-2": ("skillrelay_edge", "skillrelay_edge.app", "edge_port"),
}
NATS_ONLY = {"sessions": "skillrelay_sessions"}
WORKER = {"worker": "everything_worker"}
# Per-container routes, not for the public origin.
INTERNAL = {"/health", "/ready", "/metrics"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())  # resolves the YAML anchors and merge keys
    assert isinstance(loaded, dict)
    return loaded


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name, "")
        if op == ":-" and not current:
            return arg
        if op == ":?" and not current:
            raise KeyError(f"{name}: {arg}")
        return current

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", replace, value)


def _environment(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    raw = service.get("environment") or {}
    assert isinstance(raw, dict), "use the mapping form of environment"
    return {key: _interpolate(str(value), env if env is not None else USER_ENV) for key, value in raw.items()}


def _settings_variables() -> set[str]:
    """Every SKILLRELAY_* variable Settings.from_env reads (from its source: one place reads env)."""
    source = (ROOT / "libs/common/skillrelay_common/settings.py").read_text()
    names = set(re.findall(r'_(?:int|str|bool|public)\(env, "([A-Z0-9_]+)"', source))
    assert {"NATS_URL", "DATABASE_URL", "EDGE_PUBLIC_URL"} <= names
    return {"SKILLRELAY_" + name for name in names}


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"nats-1", "nats-2", "nats-3", "postgres", "proxy", *HTTP_SERVICES, *NATS_ONLY, *WORKER} <= set(
        services
    )
    for name, service in services.items():
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name
        if name != "worker":  # the worker has no port and no ping subject: restart policy only
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for node in ("nats-1", "nats-2", "nats-3"):
        volumes = services[node]["volumes"]
        assert any(v.startswith("./docker/nats/nats.conf:") for v in volumes)
        assert any(v.endswith(":/data") for v in volumes), "JetStream store on a volume"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    conf = NATS_CONF.read_text()
    assert "sync_interval: always" in conf and "store_dir: /data" in conf
    for node in ("nats-1", "nats-2", "nats-3"):  # every node routes to the three (its own is ignored)
        command = services[node]["command"]
        routes = _interpolate(command[command.index("--routes") + 1], USER_ENV)
        assert sorted(re.findall(r"nats-route://route:pwroute@(nats-\d):6222", routes)) == [
            "nats-1",
            "nats-2",
            "nats-3",
        ]


def test_the_secrets_are_required(compose: dict[str, Any]) -> None:
    without_admin_token = {k: v for k, v in USER_ENV.items() if k != "SKILLRELAY_ADMIN_TOKEN"}
    with pytest.raises(KeyError, match="SKILLRELAY_ADMIN_TOKEN"):
        _environment(compose["services"]["registry"], without_admin_token)


@pytest.mark.parametrize("name", [*HTTP_SERVICES, *NATS_ONLY])
def test_service_command_and_environment_match_the_code(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    module = HTTP_SERVICES[name][0] if name in HTTP_SERVICES else NATS_ONLY[name]
    assert service["command"] == ["python", "-m", module]
    assert importlib.util.find_spec(f"{module}.__main__") is not None
    env = _environment(service)
    unknown = {key for key in env if key.startswith("SKILLRELAY_")} - _settings_variables()
    assert not unknown, f"{name} sets variables nothing reads: {unknown}"
    settings = Settings.from_env(env)
    origin = "http://localhost:8000"
    assert settings.http.host == "0.0.0.0"
    assert settings.nats.url == bus_auth.with_user(CLUSTER_URLS, bus_auth.SERVICE_USER, "pwservice")
    assert settings.database.url and "@postgres:5432/" in settings.database.url
    assert settings.admin_token == USER_ENV["SKILLRELAY_ADMIN_TOKEN"]
    assert settings.secret_key == USER_ENV["SKILLRELAY_SECRET_KEY"]
    assert settings.http.registry_public_url == settings.http.auth_public_url == origin
    assert settings.http.edge_public_url == origin
    assert settings.audit_replicas == 3
    depends = service.get("depends_on", {})
    assert {"nats-1", "postgres"} <= set(depends)
    if name in HTTP_SERVICES:
        port = getattr(settings.http, HTTP_SERVICES[name][2])
        assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/ready"
    else:
        assert service["healthcheck"]["test"][-2:] == ["nats", name]


def test_the_bus_refuses_strangers_on_every_node(compose: dict[str, Any]) -> None:
    """Every node runs the authorization ``make run`` runs (bus_auth), its secrets from the environment;
    only the auth service holds the system account and the callout key."""
    block = bus_auth.server_config("$NATS_CALLOUT_ISSUER", "$NATS_SERVICE_PASSWORD", "$NATS_SYSTEM_PASSWORD")
    assert block in NATS_CONF.read_text()
    for node in ("nats-1", "nats-2", "nats-3"):
        env = _environment(compose["services"][node])
        assert env["NATS_SERVICE_PASSWORD"] == "pwservice" and env["NATS_CALLOUT_ISSUER"] == "Aissuer"
        with pytest.raises(KeyError, match="SKILLRELAY_NATS_SERVICE_PASSWORD"):
            _environment(compose["services"][node], {})
    auth = Settings.from_env(_environment(compose["services"]["auth"]))
    assert auth.nats.callout_seed == "SAseed"
    assert auth.nats.system_url == bus_auth.with_user(CLUSTER_URLS, bus_auth.SYSTEM_USER, "pwsystem")
    for name in ("registry", "sessions", "edge-1", "edge-2"):
        others = Settings.from_env(_environment(compose["services"][name]))
        assert others.nats.callout_seed is None and others.nats.system_url is None, name


def test_the_cluster_admits_only_nodes_that_know_the_route_password(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The real docker/nats/nats.conf and the nodes' command line from docker-compose.yml, run by the
    wheel's nats-server on loopback: two nodes with the route password form a cluster; a third that
    routes to them without it is refused and never joins (a route sees every message)."""
    command = compose["services"]["nats-1"]["command"]
    routes = _interpolate(command[command.index("--routes") + 1], USER_ENV)
    assert routes.count("nats-route://route:pwroute@") == 3

    def start(name: str, cluster: int, password: str, peers: list[int]) -> tuple[int, Path]:
        client, monitor = free_port(), free_port()
        text = (
            NATS_CONF.read_text()
            .replace("0.0.0.0:4222", f"127.0.0.1:{client}")
            .replace("0.0.0.0:6222", f"127.0.0.1:{cluster}")
            .replace("0.0.0.0:8222", f"127.0.0.1:{monitor}")
            .replace("store_dir: /data", f"store_dir: {tmp_path / name}")
        )
        config = tmp_path / f"{name}.conf"
        config.write_text(text)
        env = {
            **os.environ,
            "NATS_SERVER_NAME": name,
            "NATS_SERVICE_PASSWORD": "pwservice",
            "NATS_SYSTEM_PASSWORD": "pwsystem",
            "NATS_CALLOUT_ISSUER": bus_auth.BusSecrets.generate().callout_issuer,
            "NATS_ROUTE_PASSWORD": "pwroute",
        }
        # As the compose command does: every node of the cluster (its own route is ignored).
        peer_routes = ",".join(f"nats-route://route:{password}@127.0.0.1:{port}" for port in peers)
        log = tmp_path / f"{name}.log"
        args = [nats_server_binary(), "--config", str(config), "--routes", peer_routes, "--log", str(log)]
        process = subprocess.Popen(args, env=env)
        processes.append(process)
        wait_for_port("127.0.0.1", client, 15.0, process)
        return monitor, log

    def routes_of(monitor: int) -> set[str]:
        answer = httpx.get(f"http://127.0.0.1:{monitor}/routez", timeout=5).json()
        return {route.get("remote_name") or route.get("remote_id") for route in answer.get("routes") or []}

    processes: list[subprocess.Popen[bytes]] = []
    try:
        a, b, c = free_port(), free_port(), free_port()
        first_monitor, first_log = start("node-a", a, "pwroute", [a, b])
        second_monitor, _ = start("node-b", b, "pwroute", [a, b])
        start("node-c", c, "not-the-password", [a, b, c])
        deadline = time.monotonic() + 20
        while "node-b" not in routes_of(first_monitor) or "authentication error" not in first_log.read_text():
            assert time.monotonic() < deadline, (routes_of(first_monitor), first_log.read_text()[-2000:])
            time.sleep(0.2)
        assert routes_of(first_monitor) == {"node-b"}
        assert routes_of(second_monitor) == {"node-a"}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def test_edge_replicas_have_distinct_instance_ids(compose: dict[str, Any]) -> None:
    ids = {_environment(compose["services"][name])["SKILLRELAY_INSTANCE_ID"] for name in ("edge-1", "edge-2")}
    assert len(ids) == 2


def test_worker_command(compose: dict[str, Any]) -> None:
    service = compose["services"]["worker"]
    assert service["command"] == ["python", "-m", "everything_worker"]
    assert Settings.from_env(_environment(service)).nats.url == CLUSTER_URLS
    # The image puts examples/ on PYTHONPATH.
    assert "PYTHONPATH=/app/examples" in DOCKERFILE.read_text()
    if not (ROOT / "examples").is_dir():
        pytest.skip("examples/ (the worker engineer's everything_worker) is not in the tree yet")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        assert importlib.util.find_spec("everything_worker.__main__") is not None
    finally:
        sys.path.remove(str(ROOT / "examples"))
    # Every variable given to the worker is one its code reads.
    source = "\n".join(p.read_text() for p in (ROOT / "examples" / "everything_worker").glob("*.py"))
    for name in _environment(service):
        assert f'"{name}"' in source, f"the worker does not read {name}"


def test_dockerfile_installs_every_workspace_member() -> None:
    text = DOCKERFILE.read_text()
    members = sorted(p.parent.relative_to(ROOT) for p in ROOT.glob("services/*/pyproject.toml"))
    members += sorted(p.parent.relative_to(ROOT) for p in ROOT.glob("libs/*/pyproject.toml"))
    for member in members:
        assert f"COPY {member}/pyproject.toml {member}/" in text, member
    assert "uv sync --frozen --all-packages --no-dev" in text
    assert (ROOT / "docker" / "healthcheck.py").exists()
    assert (ROOT / ".dockerignore").exists()


# --- the proxy -------------------------------------------------------------------------------------


def _caddy_routes() -> list[tuple[str, str | None]]:
    """(matcher, upstream) in the order Caddy tries them: ``handle`` blocks with a path or a named
    ``path_regexp`` matcher, ``respond`` meaning blocked. Enough of Caddyfile for this file."""
    text = CADDYFILE.read_text()
    named = dict(re.findall(r"@(\w+) path_regexp \w+ (\S+)", text))
    routes: list[tuple[str, str | None]] = []
    for block in re.finditer(r"\n\thandle ?([^{\n]*)\{(.*?)\n\t\}", text, re.S):
        matcher, body = block.group(1).strip(), block.group(2)
        upstream = re.search(r"reverse_proxy ([^{\n]+)", body)
        target = upstream.group(1).strip() if upstream else None
        if matcher.startswith("@"):
            routes.append(("re:" + named[matcher[1:]], target))
        else:
            routes.append((matcher or "*", target))
    return routes


def _route(path: str) -> str | None:
    for matcher, upstream in _caddy_routes():
        if matcher == "*":
            return upstream
        if matcher.startswith("re:"):
            if re.search(matcher[3:], path):
                return upstream
        elif matcher.endswith("/*"):
            if path.startswith(matcher[:-1]):
                return upstream
        elif path == matcher:
            return upstream
    return None


def _served_path(route: Any) -> str:
    """A route's path; a mount (the edge's raw ASGI MCP route) serves ``<mount>/<integrationId>/mcp``."""
    handler = getattr(route, "route_handler", None)
    if handler is not None and getattr(handler, "is_mount", False):
        return f"{route.path}/{{integration_id}}/mcp"
    return str(route.path)


def _sample(path_template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path_template)


@pytest.mark.parametrize("name", ["registry", "auth", "edge-1"])
def test_proxy_sends_every_route_of_a_service_to_it(compose: dict[str, Any], name: str) -> None:
    _, app_module, port_name = HTTP_SERVICES[name]
    settings = Settings.from_env(_environment(compose["services"][name]))
    app = importlib.import_module(app_module).create_app(settings)
    port = getattr(settings.http, port_name)
    upstream_host = "edge" if name.startswith("edge") else name
    paths = {_served_path(route) for route in app.routes} - INTERNAL
    if name != "registry":
        paths = {path for path in paths if not path.startswith("/schema")}  # served by the registry
    assert paths
    for path in sorted(paths):
        upstream = _route(_sample(path))
        assert upstream is not None, f"{path} is blocked"
        hosts = {target.split(":")[0].rstrip("-12") for target in upstream.split()}
        ports = {int(target.split(":")[1]) for target in upstream.split()}
        assert hosts == {upstream_host} and ports == {port}, f"{path} -> {upstream}"
    if name.startswith("edge"):
        assert _route("/api/v1/integration/mcpserver/x1/mcp") == "edge-1:8080 edge-2:8080"
        assert set(compose["services"]) >= {"edge-1", "edge-2"}


def test_proxy_contract_paths_and_blocked_metrics() -> None:
    assert _route("/api/v1/integration/mcpserver/mcpserver_a/mcp") == "edge-1:8080 edge-2:8080"
    assert _route("/.well-known/oauth-protected-resource/api/v1/integration/mcpserver/a/mcp") == (
        "edge-1:8080 edge-2:8080"
    )
    assert _route("/oauth/mcpserver_a/token") == "auth:8090"
    assert _route("/.well-known/oauth-authorization-server/oauth/mcpserver_a") == "auth:8090"
    assert _route("/api/v1/integration/mcpserver/mcpserver_a/fetch") == "registry:8000"
    assert _route("/api/v1/integration/mcpserver/mcpserver_a/mcp/extra") == "registry:8000"
    assert _route("/") == "registry:8000"
    assert _route("/metrics") is None


def test_edge_accepts_requests_forwarded_by_the_proxy(compose: dict[str, Any]) -> None:
    """Caddy keeps the client's Host (the public origin); the edge's DNS-rebinding check must pass it,
    and a browser on the public origin too."""
    from skillrelay_edge.transport.rules import HttpRules

    settings = Settings.from_env(_environment(compose["services"]["edge-1"]))
    rules = HttpRules(settings.http.edge_public_url, settings.http.host, settings.max_body_bytes)
    assert rules.check_host_and_origin("localhost:8000", None) is None
    assert rules.check_host_and_origin("localhost:8000", "http://localhost:8000") is None
    assert rules.check_host_and_origin("evil.example", None) is not None


# --- images: public defaults, Debian-built stand-ins ------------------------------------------------

PUBLIC_IMAGES = {  # service -> (variable, public default)
    "nats-1": ("SKILLRELAY_NATS_IMAGE", "nats:2.11-alpine"),
    "postgres": ("SKILLRELAY_POSTGRES_IMAGE", "postgres:17-alpine"),
    "proxy": ("SKILLRELAY_PROXY_IMAGE", "caddy:2-alpine"),
    "registry": ("SKILLRELAY_IMAGE", "skillrelay:local"),
}


def test_images_are_public_by_default_and_replaceable(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, (variable, default) in PUBLIC_IMAGES.items():
        assert services[name]["image"] == f"${{{variable}:-{default}}}", name
        assert _interpolate(services[name]["image"], {}) == default
        assert _interpolate(services[name]["image"], {variable: "local/x"}) == "local/x"
    images = {name: service["image"] for name, service in services.items()}
    assert images["nats-2"] == images["nats-3"] == images["nats-1"]
    for name in (*HTTP_SERVICES, *NATS_ONLY, *WORKER):
        assert images[name] == images["registry"], name


def test_the_proxy_publishes_one_port_on_loopback_by_default(compose: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in compose["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"proxy"}
    (port,) = published["proxy"]
    assert _interpolate(port, {}) == "127.0.0.1:8000:80"
    assert (
        _interpolate(port, {"SKILLRELAY_PUBLIC_ADDRESS": "0.0.0.0", "SKILLRELAY_PUBLIC_PORT": "9"})
        == "0.0.0.0:9:80"
    )


def test_the_skillrelay_image_builds_from_a_python_or_a_plain_debian_base() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=python:3.12-slim" in text
    assert text.count("FROM ${BASE_IMAGE}") == 2
    # Debian's python3 where the base has none; the build stage's CA bundle stays in that stage.
    assert text.count("command -v python3 >/dev/null || { apt-get update") == 2
    assert "--mount=type=secret,id=ca-certificates" in text


def test_stand_ins_keep_the_public_images_contract(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nats = (STAND_INS / "nats" / "Dockerfile").read_text()
    # nats:*-alpine passes arguments starting with "-" to nats-server; the compose command is flags.
    assert services["nats-1"]["command"][0].startswith("-")
    assert 'ENTRYPOINT ["nats-server"]' in nats
    assert services["nats-1"]["healthcheck"]["test"][1] == "wget" and "wget" in nats
    assert "EXPOSE 4222 6222 8222" in nats
    postgres = (STAND_INS / "postgres" / "Dockerfile").read_text()
    entrypoint = (STAND_INS / "postgres" / "entrypoint.sh").read_text()
    for variable in _environment(services["postgres"]):
        assert variable in entrypoint, variable
    data = next(v.split(":")[1] for v in services["postgres"]["volumes"] if v.startswith("postgres-data:"))
    assert f"PGDATA={data}" in postgres and f"VOLUME {data}" in postgres
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert "/usr/lib/postgresql/15/bin:$PATH" in postgres  # where pg_isready is
    caddy = (STAND_INS / "caddy" / "Dockerfile").read_text()
    mounted = next(
        v.split(":")[1] for v in services["proxy"]["volumes"] if v.startswith("./docker/Caddyfile:")
    )
    assert f'"--config", "{mounted}"' in caddy
    assert "VOLUME /config /data" in caddy and "wget" in caddy


def test_the_health_check_connects_to_every_listed_nats_server() -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "docker" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    assert healthcheck.nats_servers(CLUSTER_URLS) == CLUSTER_URLS.split(",")
    assert healthcheck.nats_servers(" nats://a:4222 ,") == ["nats://a:4222"]


@pytest.mark.parametrize("name", ["registry", "auth", "edge-1", "edge-2"])
def test_forwarded_headers_are_believed_from_the_proxy_alone(compose: dict[str, Any], name: str) -> None:
    """Not "*": the worker container shares the network and could otherwise claim any client address."""
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    ipam = compose["networks"]["default"]["ipam"]["config"][0]
    # The same holds wherever SKILLRELAY_NETWORK_PREFIX moves the network (a host that routes the default).
    for env in ({}, {"SKILLRELAY_NETWORK_PREFIX": "10.213.7"}):
        address = ipaddress.ip_address(_interpolate(proxy_address, env))
        settings = Settings.from_env(_environment(compose["services"][name], {**USER_ENV, **env}))
        assert settings.forwarded_allow_ips == str(address)
        subnet = ipaddress.ip_network(_interpolate(ipam["subnet"], env))
        assert address in subnet
        # Addresses handed out to the other containers never include the proxy's.
        dynamic = ipaddress.ip_network(_interpolate(ipam["ip_range"], env))
        assert dynamic.subnet_of(subnet)
        assert address not in dynamic
