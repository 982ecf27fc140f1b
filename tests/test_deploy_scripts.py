"""The guide's deployment scripts offline: --help, clear errors for bad flags, every kubectl call printed by
--dry-run in the order it would be made, and deploy.sh's --render valid against the Kubernetes schemas with the
preset, the master switch and the image it was given."""
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("script", ["deploy.sh", "scripts/monitor-deployment.sh", "scripts/canary-rollout.sh"])
def test_help(script):
    result = run(script, "--help")

    assert result.returncode == 0 and "--dry-run" in result.stdout


def test_the_image_build_says_how_and_refuses_a_flag_it_does_not_know():
    assert "--tag=" in run("scripts/build-image.sh", "--help").stdout
    refused = run("scripts/build-image.sh", "--bogus")
    assert refused.returncode == 2 and "unknown flag --bogus" in refused.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["deploy.sh", "--enable-migration=false"], "--config=<preset> is required"),
    (["deploy.sh", "--config=fast", "--enable-migration=false"], "--config=fast is not a preset"),
    (["deploy.sh", "--config=conservative", "--enable-migration=maybe"], "must be true or false"),
    (["deploy.sh", "--config=conservative", "--enable-migration=true", "--layout=canary"], "a canary is"),
    (["deploy.sh", "--config=conservative", "--enable-migration=true", "--image=Bad Image"], "is not an image"),
    (["scripts/monitor-deployment.sh", "--environment=purple"], "must be blue, green, production, canary or local"),
    (["scripts/monitor-deployment.sh", "--environment=green", "--duration=soon"], "is not a duration"),
    (["scripts/canary-rollout.sh", "--finalize"], "--finalize needs --pair"),
])
def test_bad_flags_are_clear_errors(argv, message):
    result = run(*argv)

    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_deploy_dry_run_prints_every_call_in_order():
    result = run("deploy.sh", "--config=conservative", "--enable-migration=false", "--layout=green", "--dry-run",
                 "--namespace=exchange-staging")

    calls = [line for line in result.stdout.splitlines() if line.startswith("kubectl")]
    assert result.returncode == 0
    assert calls[0] == "kubectl -n exchange-staging get secret trading-secrets -o name"
    assert calls[1] == "kubectl -n exchange-staging delete job prepare-exchange --ignore-not-found"
    assert calls[2].startswith("kubectl kustomize k8s/base | sed") and "MIGRATION_PRESET:\\ conservative" in calls[2]
    assert calls[3] == "kubectl -n exchange-staging wait --for=condition=complete job/prepare-exchange --timeout=600s"
    assert calls[4].startswith("kubectl kustomize k8s/web/green | sed")
    assert "kubectl -n exchange-staging rollout status statefulset/matching-worker --timeout=600s" in calls
    assert calls[-1] == ("kubectl -n exchange-staging exec deployment/trading-service-green -c trading-container -- "
                         "/app/health-check")
    assert '"version":"green"' in result.stdout


def test_deploy_renders_valid_manifests_with_its_preset_switch_and_image():
    result = run("deploy.sh", "--config=aggressive", "--enable-migration=true", "--render",
                 "--image=registry.example/adaptive-trading:v2.1.0")

    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap")["data"]
    assert (config["MIGRATION_PRESET"], config["ADAPTIVE_ORDER_BOOKS_ENABLED"]) == ("aggressive", "true")
    images = {container["image"] for doc in docs if doc["kind"] in ("Deployment", "StatefulSet", "Job")
              for container in doc["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example/adaptive-trading:v2.1.0"}
    assert "trading-service" in {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Deployment"}


def test_canary_dry_run_steps_the_canary_then_hands_production_its_image():
    result = run("scripts/canary-rollout.sh", "--start=10", "--target=100", "--step=45", "--interval=10m",
                 "--dry-run")

    calls = [line for line in result.stdout.splitlines() if line.startswith(("kubectl", "scripts/"))]
    assert result.returncode == 0
    assert calls == [
        "kubectl -n trading get deployment/trading-service -o jsonpath={.spec.replicas}",
        "kubectl -n trading scale deployment/trading-service-canary --replicas=1",
        "kubectl -n trading rollout status deployment/trading-service-canary --timeout=600s",
        "scripts/monitor-deployment.sh --environment=canary --duration=600s --namespace=trading",
        "kubectl -n trading scale deployment/trading-service-canary --replicas=3",      # 55%: 3 of 5 pods
        "kubectl -n trading rollout status deployment/trading-service-canary --timeout=600s",
        "scripts/monitor-deployment.sh --environment=canary --duration=600s --namespace=trading",
        "kubectl -n trading get deployment/trading-service-canary -o "
        "jsonpath={.spec.template.spec.containers[0].image}",
        "kubectl -n trading set image deployment/trading-service trading-container=<the canary image>",
        "kubectl -n trading rollout status deployment/trading-service --timeout=600s",
        "kubectl -n trading scale deployment/trading-service-canary --replicas=0",
    ]
    assert "1 pods beside 2 (10% asked, 33% of the pods)" in result.stdout


def test_monitor_dry_run_names_the_environment_and_the_endpoints():
    result = run("scripts/monitor-deployment.sh", "--duration=30m", "--environment=green", "--dry-run",
                 "--base-url=http://exchange.example:8080")

    assert result.stdout.splitlines() == [
        "kubectl -n trading get deployment/trading-service-green -o jsonpath={.status.readyReplicas}/{.spec.replicas}",
        "GET http://exchange.example:8080/health", "GET http://exchange.example:8080/metrics",
        "GET http://exchange.example:8080/admin/circuit-breaker/status"]
