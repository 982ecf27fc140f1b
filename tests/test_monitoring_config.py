"""The Prometheus and Alertmanager configuration in deploy/, checked by the tools that will load it: promtool
(config, rules, and the rule tests that fire each alert on synthetic series) and amtool (config and routes)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def tool(name: str) -> str:
    """The tool's path; `make test` installs it (Debian's prometheus and prometheus-alertmanager). Outside CI a
    machine without it skips these tests; in CI its absence is a failure."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: `make monitoring-tools` installs it")
        pytest.skip(f"{name} is not installed (`make monitoring-tools`)")
    return path


def run(*argv: str, cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_prometheus_configuration_and_its_rules_are_valid():
    promtool = tool("promtool")
    # --syntax-only: the token file exists where the Secret is mounted, not here (the containers' test scrapes with
    # the file in place).
    run(promtool, "check", "config", "--syntax-only", "prometheus.yml", cwd=DEPLOY / "prometheus")
    output = run(promtool, "check", "rules", "alerts.yml", cwd=DEPLOY / "prometheus")
    assert "7 rules found" in output


def test_each_alert_fires_on_synthetic_series_past_its_threshold_and_not_before():
    output = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")
    assert "SUCCESS" in output


def test_the_rule_tests_fail_when_a_threshold_is_loosened(tmp_path):
    """The rule tests can fail: with the guide's 10 ms latency threshold at 50 ms, HighLatency no longer fires."""
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    loosened = rules.replace("latency_p95 > 0.010", "latency_p95 > 0.050")
    assert loosened != rules
    (tmp_path / "alerts.yml").write_text(loosened)
    shutil.copy(DEPLOY / "prometheus" / "alerts_test.yml", tmp_path)
    result = subprocess.run([tool("promtool"), "test", "rules", "alerts_test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "HighLatency" in result.stdout + result.stderr


def test_every_alert_of_the_guide_and_each_rollback_trigger_is_there():
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for alert in ("HighLatency", "CircuitBreakerOpen", "HighErrorRate", "RollbackTriggerErrorRate",
                  "RollbackTriggerLatency", "RollbackTriggerBreakerTrips", "RollbackTriggerMemory"):
        assert f"alert: {alert}\n" in rules


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=critical", "alertname=CircuitBreakerOpen", "pair=BTCUSDT"], "on-call"),
    (["severity=warning", "alertname=HighLatency"], "trading-team"),
])
def test_the_alertmanager_route_sends_critical_alerts_to_the_on_call(labels, receiver):
    amtool = tool("amtool")
    run(amtool, "check-config", "alertmanager.yml", cwd=DEPLOY / "alertmanager")
    run(amtool, "config", "routes", "test", "--config.file=alertmanager.yml", f"--verify.receivers={receiver}",
        *labels, cwd=DEPLOY / "alertmanager")


def test_the_scrape_presents_the_metrics_token_from_the_mounted_secret():
    """Production's /metrics answers 401 without METRICS_TOKEN: the shipped scrape job must send it."""
    import yaml

    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "adaptive-trading"]
    assert job["authorization"] == {"type": "Bearer",
                                    "credentials_file": "/etc/prometheus/secrets/trading-secrets/METRICS_TOKEN"}
