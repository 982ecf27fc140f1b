"""The Kubernetes layouts in k8s/, checked offline: every manifest and every kustomization's render validates
against the Kubernetes schemas, the guide's files are the render of their sources, the blue-green switch
changes only the Service's selector, and every command, probe and environment variable is one the project
really has."""
import copy
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.32.0"
VARIANTS = {"production": "production/adaptive-trading-service.yaml", "blue": "blue/adaptive-trading-service.yaml",
            "green": "green/adaptive-trading-service.yaml", "canary": "canary/adaptive-trading-canary.yaml"}
KUSTOMIZATIONS = ["base", "service", *(f"web/{variant}" for variant in VARIANTS)]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is needed to render the kustomizations (`make test` installs Debian's kubernetes-client)")
    return found


def render(kustomization: str) -> str:
    return subprocess.run([kubectl(), "kustomize", str(K8S / kustomization)], check=True, capture_output=True,
                          text=True).stdout


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def plain_manifests() -> dict[str, list[dict]]:
    return {str(path.relative_to(K8S)): documents(path.read_text()) for path in sorted(K8S.rglob("*.yaml"))
            if path.name != "kustomization.yaml"}


def everything() -> list[dict]:
    """Every resource of every layout: base and the four web variants, rendered."""
    return [doc for name in KUSTOMIZATIONS for doc in documents(render(name))]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(doc["metadata"]["name"], doc["spec"]["template"]["spec"]) for doc in docs
            if doc["kind"] in ("Deployment", "StatefulSet", "Job")]


def containers(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{name}/{container['name']}", container) for name, spec in pod_specs(docs)
            for container in spec.get("initContainers", []) + spec["containers"]]


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return everything()


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_guides_files_are_the_render_of_their_sources(variant):
    committed = (K8S / VARIANTS[variant]).read_text()

    assert committed.split("\n", 1)[1] == render(f"web/{variant}"), "run `make k8s-manifests`"


def test_every_manifest_and_every_render_validates_against_the_kubernetes_schemas(rendered):
    checked = 0
    for name, docs in [*plain_manifests().items(), ("renders", rendered)]:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {error.message}")
            checked += 1
    assert checked >= 30


def test_the_blue_green_switch_changes_only_the_services_selector(rendered):
    service = by_kind(documents(render("service")), "Service")["trading-service"]
    switched = copy.deepcopy(service)
    # kubectl patch service trading-service -p '{"spec":{"selector":{"version":"green"}}}'
    switched["spec"]["selector"].update({"version": "green"})

    assert {key: value for key, value in switched["spec"].items() if key != "selector"} == \
        {key: value for key, value in service["spec"].items() if key != "selector"}
    assert switched["metadata"] == service["metadata"]
    deployments = by_kind(rendered, "Deployment")
    for color, selector in (("blue", {**service["spec"]["selector"], "version": "blue"}),
                            ("green", switched["spec"]["selector"])):
        labels = deployments[f"trading-service-{color}"]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"the switch to {color} selects its pods"
    blue = (K8S / VARIANTS["blue"]).read_text().split("\n", 1)[1]
    green = (K8S / VARIANTS["green"]).read_text().split("\n", 1)[1]
    assert blue.replace("blue", "green") == green, "blue and green differ by their colour only"


def test_production_and_canary_pods_share_the_service_but_not_their_deployments(rendered):
    selector = by_kind(documents(render("service")), "Service")["trading-service"]["spec"]["selector"]
    deployments = by_kind(rendered, "Deployment")
    production, canary = deployments["trading-service"], deployments["trading-service-canary"]

    for deployment in (production, canary):
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert production["spec"]["selector"] != canary["spec"]["selector"]
    assert production["spec"]["template"]["spec"]["containers"][0]["name"] == "trading-container"
    assert "trading-service-canary" not in by_kind(rendered, "HorizontalPodAutoscaler")


def test_every_command_is_one_the_project_has(rendered):
    commands = get_commands()
    for name, container in containers(rendered):
        argv = container["command"]
        if argv[:2] == ["python", "manage.py"]:
            assert argv[2] in commands, f"{name}: no command {argv[2]}"
            parse(argv[2], argv[3:])
        else:
            assert argv[:5] == ["python", "-m", "celery", "-A", "exchange"] and argv[5] in ("worker", "beat"), name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            exec_probe = container.get(probe, {}).get("exec")
            if exec_probe:
                assert exec_probe["command"][0] == "/app/health-check", name
                parse("health_check", exec_probe["command"][1:])
    image_script = (ROOT / "deploy" / "docker" / "health-check").read_text()
    assert 'exec python /app/manage.py health_check "$@"' in image_script


def parse(command: str, arguments: list[str]) -> None:
    """The arguments are ones the command accepts (argparse exits on any other)."""
    load_command_class(get_commands()[command], command).create_parser("manage.py", command).parse_args(arguments)


def test_every_http_probe_path_exists(rendered):
    paths = {probe["httpGet"]["path"] for _, container in containers(rendered)
             for probe in (container.get(kind) for kind in ("startupProbe", "livenessProbe", "readinessProbe"))
             if probe and "httpGet" in probe}

    assert paths == {"/live", "/ready?role=web"}
    for path in paths:
        try:
            resolve(path.split("?")[0])
        except Resolver404:
            pytest.fail(f"no view at {path}")


def environment_read_by_the_project() -> set[str]:
    pattern = re.compile(r"""(?:environ\.get|getenv|env[a-z]*|env\.get|environ\.setdefault)"""
                         r"""\(\s*["']([A-Z][A-Z0-9_]+)["']|env(?:iron)?\[["']([A-Z][A-Z0-9_]+)["']\]""")
    names = set()
    for package in ("exchange", "matching_worker", "migrations_admin"):
        for path in (ROOT / package).rglob("*.py"):
            names |= {first or second for first, second in pattern.findall(path.read_text())}
    return names


def test_every_environment_variable_is_one_the_project_reads(rendered):
    read = environment_read_by_the_project()
    configured = set(by_kind(rendered, "ConfigMap")["trading-config"]["data"])
    configured |= set(plain_manifests()["base/secret.example.yaml"][0]["stringData"])
    configured |= {variable["name"] for _, container in containers(rendered) for variable in container.get("env", [])}

    assert configured - read == set()
    assert {"DB_HOST", "DB_PASSWORD", "REDIS_HOST", "TRADING_ENV", "METRICS_COLLECTION_INTERVAL",
            "PERFORMANCE_REPORT_INTERVAL", "LOG_LEVEL"} <= configured, "the guide's environment"


def test_one_worker_per_shard_and_exactly_one_beat(rendered):
    worker = by_kind(rendered, "StatefulSet")["matching-worker"]
    beat = by_kind(rendered, "Deployment")["celery-beat"]

    assert "--shard-from-hostname" in worker["spec"]["template"]["spec"]["containers"][0]["command"]
    assert worker["spec"]["serviceName"] in by_kind(rendered, "Service")
    assert (beat["spec"]["replicas"], beat["spec"]["strategy"]["type"]) == (1, "Recreate")


def test_only_the_web_can_be_reached(rendered):
    policies = by_kind(rendered, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    allow = policies["allow-web-ingress"]["spec"]

    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert allow["podSelector"]["matchExpressions"] == [
        {"key": "app", "operator": "In", "values": ["trading-service", "trading-websockets"]}]
    assert len(policies) == 2
    for name, spec in pod_specs(rendered):
        assert all(container.get("resources", {}).get("limits") for container in spec["containers"]), name
        assert spec["securityContext"]["runAsNonRoot"] is True, name


def test_the_pages_open_their_websockets_where_the_ingress_routes_them(rendered):
    """The control screens and the market page connect to WEBSOCKET_URL: the Ingress's host over TLS, whose `/ws/`
    goes to the websocket Service (without it they would aim at the page's host on port 8081, never exposed)."""
    (config,) = by_kind(rendered, "ConfigMap").values()
    ingress = by_kind(rendered, "Ingress")["trading"]["spec"]
    (rule,) = ingress["rules"]
    routes = {path["path"]: path["backend"]["service"]["name"] for path in rule["http"]["paths"]}

    assert config["data"]["WEBSOCKET_URL"] == f"wss://{rule['host']}"
    assert rule["host"] in ingress["tls"][0]["hosts"]
    assert routes["/ws/"] == "trading-websockets"


def test_no_redeploy_undoes_the_blue_green_switch():
    """`kubectl apply` sets what its file names back to the file's value: the switched Service is in no layout a
    redeploy applies (base, the web's variants), only in k8s/service, which deploy.sh applies when it is missing."""
    for kustomization in KUSTOMIZATIONS:
        services = by_kind(documents(render(kustomization)), "Service")
        assert ("trading-service" in services) == (kustomization == "service"), kustomization
    deploy = (ROOT / "deploy.sh").read_text()
    assert "if [ \"$DRY_RUN\" = render ] || ! kube get service trading-service -o name; then" in deploy


def test_an_autoscaled_deployment_names_no_replica_count(rendered):
    """`kubectl apply` of a file that names `replicas` sets the count back on every apply, against the autoscaler:
    a Deployment an HPA scales leaves the count to it."""
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in by_kind(rendered, "HorizontalPodAutoscaler").values()}
    deployments = by_kind(rendered, "Deployment")

    assert scaled >= {"trading-service", "trading-service-blue", "trading-service-green"}
    assert {name: deployments[name]["spec"]["replicas"] for name in scaled if "replicas" in deployments[name]["spec"]} \
        == {}
    assert deployments["trading-service-canary"]["spec"]["replicas"] == 1
