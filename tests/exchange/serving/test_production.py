"""Production is safe by default: an unknown TRADING_ENV, a missing ALLOWED_HOSTS, DEBUG on, a setting that
`check --deploy` warns about, an open /metrics or the default admin password each stop it from starting."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management.base import CommandError

from exchange.serving.preparation import refuse_default_admin_password

ROOT = Path(__file__).resolve().parents[3]
SAFE_PRODUCTION = {"TRADING_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(50),
                   "ALLOWED_HOSTS": "exchange.example.com", "METRICS_TOKEN": "scraper-secret"}
SERVE_CHECK = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'exchange.settings'; django.setup();"
               " from exchange.serving.production import refuse_unsafe_production; refuse_unsafe_production()")


def start_serving(**env: str) -> subprocess.CompletedProcess:
    """What every serving process does first: load the settings, then refuse an unsafe production."""
    environment = {key: value for key, value in os.environ.items() if key not in SAFE_PRODUCTION}
    return subprocess.run([sys.executable, "-c", SERVE_CHECK], cwd=ROOT, capture_output=True, text=True,
                          env={**environment, **env})


def test_a_safe_production_configuration_starts():
    result = start_serving(**SAFE_PRODUCTION)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"TRADING_ENV": "prod"}, "TRADING_ENV='prod': use exactly development or production"),
    ({"TRADING_ENV": "Production"}, "TRADING_ENV='Production': use exactly development or production"),
    ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
    ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must name the exchange's host names"),
    ({"DEBUG": "true"}, "DEBUG=true is refused"),
    ({"METRICS_TOKEN": ""}, "METRICS_TOKEN is not set"),
    ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
    ({"SECURE_COOKIES": "false"}, "security.W012"),
], ids=["prod", "Production", "no-secret-key", "no-allowed-hosts", "debug", "open-metrics", "no-hsts",
        "no-ssl-redirect", "insecure-cookies"])
def test_an_unsafe_production_configuration_is_refused(change, message):
    result = start_serving(**{**SAFE_PRODUCTION, **change})

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
def test_production_refuses_to_create_the_admin_with_the_default_password():
    with pytest.raises(CommandError, match="set EXCHANGE_ADMIN_PASSWORD"):
        refuse_default_admin_password("admin")


@pytest.mark.django_db
def test_production_refuses_an_admin_that_still_has_the_default_password():
    User.objects.create_superuser("admin", "", "admin")

    with pytest.raises(CommandError, match="still has the default password"):
        refuse_default_admin_password("a-strong-password-from-the-vault")


@pytest.mark.django_db
def test_the_metrics_need_the_scrapers_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scraper-secret"

    refused = client.get("/metrics")
    served = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scraper-secret")

    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "not_authenticated")
    assert served.status_code == 200 and b"django_http_requests" in served.content


def test_behind_a_tls_proxy_production_starts_and_leaves_the_redirect_to_the_proxy_aware_one():
    """TLS at the Ingress: Django's own redirect (and its deploy check) is off, the proxy-aware one on."""
    check = SERVE_CHECK + "; from django.conf import settings; print(settings.SECURE_SSL_REDIRECT)"
    environment = {key: value for key, value in os.environ.items() if key not in SAFE_PRODUCTION}
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True,
                            env={**environment, **SAFE_PRODUCTION, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("forwarded", "path", "status"), [
    (None, "/api/pairs/", 200),                 # from inside the cluster: never passed the proxy
    ("https", "/api/pairs/", 200),
    ("http", "/api/pairs/", 301),               # reached the proxy over plain HTTP
    ("http, https", "/api/pairs/", 301),        # the first proxy's word counts, as Django reads it
    ("http", "/live", 200),                     # the probes' paths are exempt
], ids=["inside", "https", "http", "chain", "exempt"])
@pytest.mark.django_db
def test_only_what_came_through_the_proxy_over_plain_http_is_redirected(settings, forwarded, path, status):
    from django.test import Client

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = False
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_PROTO": forwarded}
    answer = Client().get(path, HTTP_HOST="trading-service:8080", **headers)

    assert answer.status_code == status
    if status == 301:
        assert answer["Location"] == f"https://trading-service:8080{path}"


@pytest.mark.django_db
def test_without_a_proxy_named_nothing_is_redirected_by_the_proxy_aware_middleware(settings):
    from django.test import Client

    settings.SECURE_SSL_REDIRECT = False
    answer = Client().get("/api/pairs/", HTTP_X_FORWARDED_PROTO="http")

    assert answer.status_code == 200


@pytest.mark.parametrize(("version", "refused"), [(130010, True), (139999, True), (140000, False), (180001, False)])
def test_a_postgresql_older_than_14_is_refused_by_name(version, refused):
    from exchange.serving.preparation import refuse_unsupported_postgres

    if refused:
        with pytest.raises(CommandError, match=r"PostgreSQL 13\.\d+ is too old: the exchange needs PostgreSQL 14"):
            refuse_unsupported_postgres(version)
    else:
        refuse_unsupported_postgres(version)


@pytest.mark.django_db
def test_this_machines_postgresql_is_accepted():
    from django.db import connection

    from exchange.serving.preparation import postgres_version, refuse_unsupported_postgres

    assert postgres_version() == connection.pg_version
    refuse_unsupported_postgres(postgres_version())


@pytest.mark.django_db
def test_the_redirect_never_sends_a_client_to_a_host_the_exchange_does_not_serve(settings):
    """The target is built from the checked host: a forged Host is refused (400), not redirected to."""
    from django.test import Client

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["trading.example.com"]
    answer = Client().get("//evil.example/x", HTTP_HOST="evil.example", HTTP_X_FORWARDED_PROTO="http")

    assert answer.status_code == 400 and "Location" not in answer
