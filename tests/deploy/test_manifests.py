"""The deployment files agree with Kubernetes' schemas, with one another and with `make run`."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from testkit import script

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
# Filled in by the operator and applied once, never by `kubectl apply -k`.
SECRET_TEMPLATE = "secret.template.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
RUN_SCRIPT = ROOT / "scripts" / "run.py"

APPS = ("registry", "calculator", "gateway")
PUBLIC_APP = "gateway"
AUTOSCALED = ("gateway", "calculator")
# Which pods may open connections to each internal service.
ALLOWED_CALLERS = {"registry": {"gateway", "calculator"}, "calculator": {"gateway"}}

# The environment variables each service's Settings read. Kept by hand: a variable that is set
# in a deployment but read by nobody is a typo that silently falls back to a default.
SETTINGS_ENV = {
    "registry": {
        "REGISTRY_DATABASE_URL",
        "REGISTRY_ENVIRONMENT",
        "REGISTRY_LOG_LEVEL",
        "REGISTRY_POLICIES_DIR",
    },
    "calculator": {
        "CALCULATOR_DATABASE_URL",
        "CALCULATOR_REGISTRY_URL",
        "CALCULATOR_ENVIRONMENT",
        "CALCULATOR_LOG_LEVEL",
    },
    "gateway": {
        "GATEWAY_DATABASE_URL",
        "GATEWAY_REGISTRY_URL",
        "GATEWAY_CALCULATOR_URL",
        "GATEWAY_CALCULATOR_INSTANCES_DNS",
        "GATEWAY_BATCH_PARTS_IN_FLIGHT",
        "GATEWAY_REDIS_URL",
        "GATEWAY_CORS_ORIGINS",
        "GATEWAY_ENVIRONMENT",
        "GATEWAY_LOG_LEVEL",
        "SUBSIDY_ADMIN_KEY",
    },
}
MONITORING = {"subsidy.example.cn/monitoring": "true"}
# Read by the image rather than by Settings: PORT by its CMD, FORWARDED_ALLOW_IPS by uvicorn.
RUNTIME_ENV = {"PORT", "FORWARDED_ALLOW_IPS"}


# --- loading ---------------------------------------------------------------------------------


@cache
def k8s_files() -> dict[str, list[dict[str, Any]]]:
    """Every manifest in deploy/k8s by file name, kustomization.yaml aside."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S_DIR.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def resources(kind: str | None = None) -> list[dict[str, Any]]:
    return [doc for docs in k8s_files().values() for doc in docs if kind in (None, doc["kind"])]


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in resources(kind)}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def container_port(deployment: dict[str, Any], port: int | str) -> int:
    """A probe's or a Service's port, which may name the container port."""
    ports = container(deployment)["ports"]
    if isinstance(port, int):
        assert port in [p["containerPort"] for p in ports]
        return port
    return next(p["containerPort"] for p in ports if p.get("name") == port)


def service_for(deployment: dict[str, Any], *, headless: bool = False) -> dict[str, Any]:
    """The balanced Service that selects a deployment's pods, or the headless one."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    matches = [
        svc
        for svc in resources("Service")
        if svc["spec"]["selector"].items() <= labels.items()
        and (svc["spec"].get("clusterIP") == "None") is headless
    ]
    assert len(matches) == 1, f"one Service selects {deployment['metadata']['name']}"
    return matches[0]


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return env


@cache
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def last_instruction(keyword: str) -> str:
    return [rest for kw, rest in dockerfile() if kw == keyword][-1]


def dockerfile_command() -> str:
    cmd = last_instruction("CMD")
    return " ".join(json.loads(cmd)) if cmd.startswith("[") else cmd


def dockerfile_factory(service: str) -> str:
    """The app factory the image runs when built with --build-arg SERVICE=<service>."""
    match = re.search(r"-m subsidy_common\.serving\s+(\S+)", dockerfile_command())
    assert match, "the CMD serves a factory with subsidy_common.serving"
    return match.group(1).replace("${SERVICE}", service).replace("$SERVICE", service)


def image_service(image: str) -> str:
    """`subsidy-<service>[:tag]`, the image built with --build-arg SERVICE=<service>."""
    match = re.fullmatch(r"(?:.*/)?subsidy-([a-z]+)(?::[\w.${}:-]+)?", image)
    assert match, f"{image} is named subsidy-<service>"
    return match.group(1)


def compose_apps() -> dict[str, tuple[str, int]]:
    """Factory and port of each service in docker-compose.yml."""
    apps = {}
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        args = service["build"]["args"]
        assert image_service(service["image"]) == args["SERVICE"] == name
        apps[name] = (dockerfile_factory(args["SERVICE"]), int(args["PORT"]))
    return apps


def k8s_apps() -> dict[str, tuple[str, int]]:
    """Factory and port of each Deployment in deploy/k8s."""
    apps = {}
    for name, deployment in by_name("Deployment").items():
        spec = container(deployment)
        assert image_service(spec["image"]) == name
        apps[name] = (dockerfile_factory(name), container_port(deployment, "http"))
    return apps


# --- Kubernetes ------------------------------------------------------------------------------

# The newest Kubernetes release this kubernetes-validate ships schemas for.
K8S_VERSION = kubernetes_validate.latest_version()


@pytest.mark.parametrize(
    "resource",
    resources(),
    ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}",
)
def test_manifest_is_valid_kubernetes(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    """Applied again over the real Secret, the template's placeholders would stop every pod
    started afterwards (the services refuse REPLACE_ME)."""
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(set(k8s_files()) - {SECRET_TEMPLATE})
    assert not kustomization.get("secretGenerator")
    assert [doc["kind"] for doc in k8s_files()[SECRET_TEMPLATE]] == ["Secret"]


def test_everything_lives_in_the_namespace() -> None:
    (namespace,) = by_name("Namespace")
    for resource in resources():
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace, resource["metadata"]["name"]


def test_a_deployment_for_each_service() -> None:
    assert sorted(by_name("Deployment")) == sorted(APPS)


@pytest.mark.parametrize("name", APPS)
def test_deployment_probes(name: str) -> None:
    deployment = by_name("Deployment")[name]
    spec = container(deployment)
    probes = {
        kind: spec[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")
    }
    assert probes["liveness"]["path"] == "/healthz"
    assert probes["readiness"]["path"] == "/readyz"
    assert probes["startup"]["path"] == "/healthz"
    http = container_port(deployment, "http")
    for probe in probes.values():
        assert container_port(deployment, probe["port"]) == http


@pytest.mark.parametrize("name", APPS)
def test_service_targets_the_container_port(name: str) -> None:
    deployment = by_name("Deployment")[name]
    service = service_for(deployment)
    assert service["metadata"]["name"] == name
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    (port,) = service["spec"]["ports"]
    http = container_port(deployment, "http")
    assert container_port(deployment, port["targetPort"]) == http
    assert port["port"] == http, "in-cluster URLs use the same port as `make run`"
    env = {e["name"]: e.get("value") for e in container(deployment).get("env", [])}
    assert env["PORT"] == str(http), "uvicorn listens where the probes and the Service look"


@pytest.mark.parametrize("name", APPS)
def test_deployment_runs_locked_down(name: str) -> None:
    deployment = by_name("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    spec = container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    (tmp,) = [m for m in spec["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= spec["resources"][bound].keys()


@pytest.mark.parametrize("name", APPS)
def test_deployment_env_is_read_by_its_settings(name: str) -> None:
    spec = container(by_name("Deployment")[name])
    configmaps = by_name("ConfigMap")
    (secret,) = resources("Secret")
    names = {e["name"] for e in spec.get("env", [])}
    for source in spec.get("envFrom", []):
        names |= configmaps[source["configMapRef"]["name"]]["data"].keys()
    assert names <= SETTINGS_ENV[name] | RUNTIME_ENV
    assert any(key.endswith("_ENVIRONMENT") for key in names)
    for entry in spec.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"]


def test_the_gateway_finds_every_calculator_pod_to_tell_of_a_policy_write() -> None:
    """Through the balanced Service a refresh reaches one replica of several."""
    headless = service_for(by_name("Deployment")["calculator"], headless=True)
    (port,) = headless["spec"]["ports"]
    config = next(c for c in resources("ConfigMap") if c["metadata"]["name"] == "gateway-config")
    assert config["data"]["GATEWAY_CALCULATOR_INSTANCES_DNS"] == (
        f"{headless['metadata']['name']}:{port['port']}"
    )


def test_configmaps_say_production_and_point_at_the_services() -> None:
    ports = {name: port for name, (_, port) in k8s_apps().items()}
    for configmap in resources("ConfigMap"):
        for key, value in configmap["data"].items():
            if key.endswith("_ENVIRONMENT"):
                assert value == "production", key
            if match := re.fullmatch(r"[A-Z]+_(REGISTRY|CALCULATOR)_URL", key):
                target = match.group(1).lower()
                assert value == f"http://{target}:{ports[target]}", key


def test_secret_is_a_template() -> None:
    (secret,) = resources("Secret")
    assert "data" not in secret
    assert all("REPLACE_ME" in value for value in secret["stringData"].values())


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ("registry.config", "REGISTRY_DATABASE_URL"),
        ("calculator.config", "CALCULATOR_DATABASE_URL"),
        ("gateway.config", "GATEWAY_DATABASE_URL"),
        ("gateway.config", "GATEWAY_REDIS_URL"),
    ],
)
def test_the_templates_placeholders_are_refused_at_start(
    settings: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database URL left as in the template failed later on a host named REPLACE_ME; a Redis
    URL left so gave a ready gateway whose rate limits were off."""
    (secret,) = resources("Secret")
    monkeypatch.setenv(key, secret["stringData"][key])
    monkeypatch.setenv("SUBSIDY_ADMIN_KEY", "sk_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7")
    module = importlib.import_module(settings)
    with pytest.raises(ValueError, match="still holds the template's REPLACE_ME"):
        module.Settings()


def test_autoscalers_target_existing_deployments() -> None:
    deployments = by_name("Deployment")
    targets = {}
    for hpa in resources("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        assert ref["name"] in deployments
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["averageUtilization"] == 70
        # Utilization is measured against the request, so there must be one.
        assert "cpu" in container(deployments[ref["name"]])["resources"]["requests"]
        targets[ref["name"]] = hpa
        # A count in the Deployment would reset a scaled-out one at every apply.
        assert "replicas" not in deployments[ref["name"]]["spec"]
    assert sorted(targets) == sorted(AUTOSCALED)


def test_only_the_gateway_accepts_calls_from_anywhere() -> None:
    deployments = by_name("Deployment")
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    guarded = {}
    for policy in resources("NetworkPolicy"):
        selector = policy["spec"]["podSelector"]["matchLabels"]
        (target,) = [name for name in labels if selector.items() <= labels[name].items()]
        callers = set()
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                if "namespaceSelector" in peer:  # Prometheus, from a namespace labelled for it
                    assert peer == {"namespaceSelector": {"matchLabels": MONITORING}}
                    continue
                peer_labels = peer["podSelector"]["matchLabels"]
                callers |= {n for n in labels if peer_labels.items() <= labels[n].items()}
            ports = {p["port"] for p in rule["ports"]}
            assert ports == {container_port(deployments[target], "http")}
        guarded[target] = callers
    assert guarded == ALLOWED_CALLERS


def test_ingress_reaches_only_the_gateway() -> None:
    services = by_name("Service")
    ingresses = resources("Ingress")
    assert ingresses
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == PUBLIC_APP
                ports = services[PUBLIC_APP]["spec"]["ports"]
                assert any(
                    backend["port"] in ({"name": p["name"]}, {"number": p["port"]}) for p in ports
                )


def test_the_batch_streams_through_the_ingress_unbounded_and_unbuffered() -> None:
    """The gateway streams NDJSON batches with no size bound, answering while it reads: the
    Ingress's 8 MiB limit and its buffering of the whole request must not apply to them."""
    routes = {
        path["path"]: (path["pathType"], ingress["metadata"].get("annotations", {}))
        for ingress in resources("Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    kind, annotations = routes["/v1/calculations/batch"]
    assert kind == "Exact"
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "proxy-body-size"] == "0"
    assert annotations[prefix + "proxy-request-buffering"] == "off"
    assert annotations[prefix + "proxy-buffering"] == "off"
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 600


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_has_the_services_and_postgres() -> None:
    assert {*APPS, "postgres"} <= compose()["services"].keys()
    assert sorted(compose_apps()) == sorted(APPS)


def test_compose_services_have_healthchecks() -> None:
    for name, service in compose()["services"].items():
        assert service.get("healthcheck", {}).get("test"), name
    for name, (_, port) in compose_apps().items():
        test = " ".join(compose()["services"][name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in test, name


def test_compose_waits_for_healthy_dependencies() -> None:
    for name, service in compose()["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"


def test_only_the_gateway_publishes_a_port() -> None:
    published = {name for name, service in compose()["services"].items() if "ports" in service}
    assert published == {PUBLIC_APP}
    _, port = compose_apps()[PUBLIC_APP]
    (mapping,) = compose()["services"][PUBLIC_APP]["ports"]
    assert mapping.rsplit(":", 1)[1] == str(port)


@pytest.mark.parametrize("name", APPS)
def test_compose_env_is_read_by_its_settings(name: str) -> None:
    env = compose_env(name)
    assert env.keys() <= SETTINGS_ENV[name]
    (environment,) = [v for k, v in env.items() if k.endswith("_ENVIRONMENT")]
    assert environment == "production"
    ports = {n: port for n, (_, port) in compose_apps().items()}
    for key, value in env.items():
        if match := re.fullmatch(r"[A-Z]+_(REGISTRY|CALCULATOR)_URL", key):
            target = match.group(1).lower()
            assert value == f"http://{target}:{ports[target]}", key


def test_admin_key_has_no_default() -> None:
    holders = {n for n in compose()["services"] if "SUBSIDY_ADMIN_KEY" in compose_env(n)}
    assert holders == {PUBLIC_APP}
    value = compose_env(PUBLIC_APP)["SUBSIDY_ADMIN_KEY"]
    assert re.fullmatch(r"\$\{SUBSIDY_ADMIN_KEY:\?[^}]+\}", value), value
    # `${VAR-x}` and `${VAR:-x}` anywhere else would be a default after all.
    assert not re.search(r"\$\{SUBSIDY_ADMIN_KEY:?[-=+]", COMPOSE_FILE.read_text())


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_command() -> None:
    command = dockerfile_command()
    assert re.search(
        r"\bpython -m subsidy_common.serving \$\{?SERVICE\}?\.main:create_app\b", command
    )
    assert "--host 0.0.0.0" in command
    assert re.search(r"--port \"?\$\{?PORT\b", command)
    assert "--proxy-headers" in command
    healthcheck = last_instruction("HEALTHCHECK")
    assert "python" in healthcheck
    assert "/healthz" in healthcheck
    assert last_instruction("USER").split(":")[0] not in ("root", "0")


def test_images_run_the_same_factories_and_ports_in_compose_and_k8s() -> None:
    assert compose_apps() == k8s_apps()
    assert {name: factory for name, (factory, _) in k8s_apps().items()} == {
        name: f"{name}.main:create_app" for name in APPS
    }


def test_kept_in_step_with_make_run() -> None:
    assert RUN_SCRIPT.is_file(), "scripts/run.py defines SERVICES for `make run`"
    module = script(RUN_SCRIPT, "subsidy_run_script")
    local = {s.name: (s.factory, s.default_port) for s in module.SERVICES}
    assert compose_apps() == local
    assert k8s_apps() == local


def test_gateway_replicas_count_rate_limits_together() -> None:
    """The gateway is autoscaled to several replicas: without Redis each would allow a tenant
    the whole limit (`make run` refuses several gateway workers without it, likewise)."""
    (container,) = by_name("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"]
    (redis,) = [e for e in container["env"] if e["name"] == "GATEWAY_REDIS_URL"]
    assert redis["valueFrom"]["secretKeyRef"].get("optional", False) is False
