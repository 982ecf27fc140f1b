"""Each container of the Kubernetes manifests started here as its manifest starts it: its command, with the
ConfigMap's, the Secret's and its own environment (TRADING_ENV=production included), only the database, Redis
and ports pointed at this machine's test servers; every probe it declares must answer. The prepare Job must
complete."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import ROOT, free_port, service_get, worker_environment
from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)
K8S = ROOT / "k8s"
SECRETS = {"SECRET_KEY": "k8s-container-test-" + "x" * 50, "DB_PASSWORD": "", "REDIS_PASSWORD": "",
           "METRICS_TOKEN": "scraper-token", "EXCHANGE_ADMIN_PASSWORD": "not-the-default-password",
           "ALERT_WEBHOOK_URLS": ""}



def rendered(kustomization: str) -> list[dict]:
    text = subprocess.run(["kubectl", "kustomize", str(K8S / kustomization)], check=True, capture_output=True,
                          text=True).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def workloads() -> dict[str, dict]:
    docs = rendered("base") + rendered("web/production")
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap")["data"]
    found = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            container = doc["spec"]["template"]["spec"]["containers"][0]
            found[doc["metadata"]["name"]] = {"kind": doc["kind"], "container": container, "config": config}
    return found


def local_argv(argv: list[str]) -> list[str]:
    """The manifest's command as this machine runs it: its python, the image's /app/health-check script."""
    if argv[0] == "/app/health-check":
        return [sys.executable, "manage.py", "health_check", *argv[1:]]
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def environment(workload: dict, name: str, ports: dict[str, int]) -> dict[str, str]:
    test_servers = worker_environment()
    env = {**{key: value for key, value in os.environ.items() if key.startswith(("PATH", "LANG", "HOME"))},
           **workload["config"], **SECRETS}
    for variable in workload["container"].get("env", []):
        env[variable["name"]] = variable.get("value", "127.0.0.1")    # POD_IP: the address the probes use
    env.update({key: test_servers[key] for key in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD")})
    env.update(REDIS_URL=test_servers.get("REDIS_URL") or os.environ.get("REDIS_URL", ""), HOSTNAME=f"{name}-0",
               PORT=str(ports["http"]), WEBSOCKET_PORT=str(ports["websocket"]), WEB_PROCESSES="1",
               MIGRATION_TICK_INTERVAL="2s", PYTHONPATH=str(ROOT))
    env.pop("REDIS_HOST", None)
    return env


def probe_answers(container: dict, env: dict[str, str], ports: dict[str, int]) -> list[str]:
    """Every probe of the container, tried until it passes or 60 s have gone; the ones that never passed."""
    failing = []
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        if probe is None:
            continue
        deadline = time.monotonic() + 60
        while not probe_passes(probe, env, ports):
            if time.monotonic() > deadline:
                failing.append(kind)
                break
            time.sleep(0.5)
    return failing


def probe_passes(probe: dict, env: dict[str, str], ports: dict[str, int]) -> bool:
    if "exec" in probe:
        return subprocess.run(local_argv(probe["exec"]["command"]), cwd=ROOT, env=env,
                              capture_output=True).returncode == 0
    port = ports[probe["httpGet"]["port"]]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=5) as answer:
            return 200 <= answer.status < 400
    except (urllib.error.URLError, OSError):
        return False


def in_cluster_call(port: int, path: str, token: str, forwarded_proto: str | None = None) -> tuple[int, dict, str]:
    """The deployment guide's operator call (`curl http://trading-service:8080/...`) with a staff token; with
    `forwarded_proto`, as the Ingress forwards a request (its X-Forwarded-Proto)."""
    forwarded = {} if forwarded_proto is None else {"X-Forwarded-Proto": forwarded_proto}
    return service_get(port, path, Authorization=f"Token {token}", **forwarded)


def scraped_by_prometheus(port: int, tmp_path: Path) -> dict:
    """Debian's Prometheus with the shipped scrape job and rules, pointed at this web container, the token file where
    the Secret would be mounted: what it saw of the target, the rules and the exchange's series."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config.pop("alerting")                                   # no Alertmanager here
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "alerts.yml")]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    job["scrape_interval"] = "1s"
    (tmp_path / "token").write_text(SECRETS["METRICS_TOKEN"])
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    api = free_port()
    prometheus = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{api}"],
                                  stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    try:
        deadline, seen = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            seen = prometheus_view(api)
            if seen.get("health") == "up" and seen.get("trading_series"):
                break
            time.sleep(1)
        return seen
    finally:
        prometheus.terminate()
        prometheus.wait(20)


def prometheus_view(api: int) -> dict:
    def ask(path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{api}{path}", timeout=5) as answer:
            return json.loads(answer.read())["data"]
    try:
        targets = ask("/api/v1/targets")["activeTargets"]
        rules = [rule["name"] for group in ask("/api/v1/rules")["groups"] for rule in group["rules"]]
        series = ask("/api/v1/query?query=count(%7B__name__%3D~%22trading_.%2A%22%7D)")["result"]
    except (urllib.error.URLError, OSError, KeyError, ValueError):
        return {}
    return {"health": targets[0]["health"] if targets else None, "error": targets[0]["lastError"] if targets else "",
            "rules": rules, "trading_series": int(series[0]["value"][1]) if series else 0}


def staff_token() -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    operator = User.objects.create_user("k8s-operator", is_staff=True)
    return Token.objects.create(user=operator).key


@pytest.fixture
def redis_url(settings):
    return settings.REDIS_URL


def test_every_container_starts_as_its_manifest_says_and_its_probes_answer(redis_url, tmp_path):
    prepare_market()
    ports = {"http": free_port(), "websocket": free_port()}
    os.environ.setdefault("REDIS_URL", redis_url)
    found = workloads()
    assert set(found) == {"trading-service", "trading-websockets", "matching-worker", "celery-worker", "celery-beat",
                          "prepare-exchange"}

    job = found.pop("prepare-exchange")
    prepared = subprocess.run(local_argv(job["container"]["command"]), cwd=ROOT, capture_output=True, text=True,
                              env=environment(job, "prepare-exchange", ports), timeout=120)
    assert prepared.returncode == 0, prepared.stderr[-2000:]

    processes = {}
    try:
        for name, workload in found.items():
            env = environment(workload, name, ports)
            processes[name] = (subprocess.Popen(local_argv(workload["container"]["command"]), cwd=ROOT, env=env,
                                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{name}.log", "w"),
                                                start_new_session=True), env)
        failing = {name: probe_answers(found[name]["container"], env, ports) for name, (_, env) in processes.items()}
        exited = {name: process.returncode for name, (process, _) in processes.items() if process.poll() is not None}
        token = staff_token()
        inside = in_cluster_call(ports["http"], "/admin/migration/status", token)
        through_the_ingress = in_cluster_call(ports["http"], "/admin/migration/status", token, "http")
        secure = in_cluster_call(ports["http"], "/admin/migration/status", token, "https")
        scraped = scraped_by_prometheus(ports["http"], tmp_path)
    finally:
        for process, _ in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    logs = {name: Path(tmp_path / f"{name}.log").read_text()[-1500:] for name in processes}
    assert exited == {}, f"exited: {exited}\n{logs}"
    assert {name: kinds for name, kinds in failing.items() if kinds} == {}, logs
    # TLS ends at the Ingress: a call from inside the cluster is served as it came, over plain HTTP...
    assert inside[0] == 200, inside
    assert {pair["pair"] for pair in json.loads(inside[2])} >= {"BTCUSDT"}
    # ...while what reached the Ingress over plain HTTP is sent to HTTPS, and HTTPS gets HSTS.
    assert through_the_ingress[0] == 301, through_the_ingress
    assert through_the_ingress[1]["location"] == f"https://trading-service:{ports['http']}/admin/migration/status"
    assert secure[0] == 200 and "max-age=31536000" in secure[1]["strict-transport-security"]
    # Prometheus, with the shipped job and the token where the Secret is mounted, scrapes production's /metrics.
    assert scraped.get("health") == "up", scraped
    assert scraped["trading_series"] > 0 and len(scraped["rules"]) == 7, scraped
