"""Settings read the database and Redis locations from the environment."""

import os

import pytest

from exchange.settings import celery_url_from_redis_url, database_config_from_env, redis_url_from_env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"DB_PORT": "5433"}, None),
        (
            {"DB_HOST": "db.internal"},
            {"HOST": "db.internal", "PORT": "5432", "NAME": "exchange", "USER": "postgres", "PASSWORD": ""},
        ),
        (
            {
                "DB_HOST": "db.internal",
                "DB_PORT": "6432",
                "DB_NAME": "pincex_trading",
                "DB_USER": "trading_service",
                "DB_PASSWORD": "secure_password",
            },
            {
                "HOST": "db.internal",
                "PORT": "6432",
                "NAME": "pincex_trading",
                "USER": "trading_service",
                "PASSWORD": "secure_password",
            },
        ),
        (
            {"DATABASE_URL": "postgresql://trader:s3cret@db.internal:6432/trading"},
            {"HOST": "db.internal", "PORT": 6432, "NAME": "trading", "USER": "trader", "PASSWORD": "s3cret"},
        ),
        (
            {"DATABASE_URL": "postgresql://postgres@%2Fsrv%2Fpg/exchange", "DB_HOST": "ignored"},
            {"HOST": "/srv/pg", "PORT": "", "NAME": "exchange", "USER": "postgres", "PASSWORD": ""},
        ),
    ],
    ids=["nothing", "port-only", "host-only", "all-db-vars", "url", "socket-url-wins-over-host"],
)
def test_database_config_from_env(env, expected):
    config = database_config_from_env(env)

    if expected is None:
        assert config is None
        return
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert {key: config[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"REDIS_URL": "redis://cache:6380/2", "REDIS_HOST": "ignored"}, "redis://cache:6380/2"),
        ({"REDIS_HOST": "cache"}, "redis://cache:6379/0"),
        ({"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss"}, "redis://:p%40ss@cache:6380/0"),
    ],
    ids=["nothing", "url-wins", "host-only", "host-port-password"],
)
def test_redis_url_from_env(env, expected):
    assert redis_url_from_env(env) == expected


@pytest.mark.parametrize(
    ("redis_url", "expected"),
    [
        ("unix:///var/run/redis.sock", "redis+socket:///var/run/redis.sock"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_celery_url_from_redis_url(redis_url, expected):
    assert celery_url_from_redis_url(redis_url) == expected


def test_log_file_appends_the_same_json_lines_to_a_file(tmp_path):
    """LOG_FILE: where the deployment guide greps (`/var/log/trading/application.log`), the lines standard error
    gets, one JSON object each."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    log_file = tmp_path / "application.log"
    code = ("import django, logging, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'exchange.settings'; django.setup();"
            " logging.getLogger('exchange.test').warning('to the file', extra={'event': 'log_file_test'})")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, text=True, env={**os.environ, "LOG_FILE": str(log_file)})

    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert (line["event"], line["level"], line["message"]) == ("log_file_test", "WARNING", "to the file")
    assert '"event": "log_file_test"' in result.stderr
