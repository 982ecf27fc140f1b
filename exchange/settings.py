"""Django settings, read from the environment; this one module serves every process and environment.

With neither `DATABASE_URL` nor `DB_HOST` set, the project uses a private embedded PostgreSQL, and with
neither `REDIS_URL` nor `REDIS_HOST`, a private embedded Redis (see `exchange.serving.embedded`).
"""

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from exchange.serving import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str = "") -> str:
    """The variable's value, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def envbool(name: str, default: bool) -> bool:
    """`true`/`yes`/`on`/`1` (any case) is True, `false`/`no`/`off`/`0` is False, unset is `default`."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false")


def envint(name: str, default: int) -> int:
    """The variable as an integer, or `default` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def envseconds(name: str, default: int) -> int:
    """A duration as the deployment guide writes it (`10s`, `5m`, `1h`, or bare seconds), in seconds."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    number, unit = (value[:-1], value[-1]) if value[-1] in DURATION_UNITS else (value, "s")
    if not number.isdigit():
        raise ImproperlyConfigured(f"{name}={value!r} is not a duration like 10s, 5m or 1h")
    return int(number) * DURATION_UNITS[unit]


def database_config_from_env(env: Mapping[str, str]) -> dict | None:
    """The default database from `DATABASE_URL`, else from `DB_HOST` and friends; None if neither is set."""
    if env.get("DATABASE_URL"):
        return dict(dj_database_url.parse(env["DATABASE_URL"]))
    if not env.get("DB_HOST"):
        return None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env["DB_HOST"],
        "PORT": env.get("DB_PORT") or "5432",
        "NAME": env.get("DB_NAME") or "exchange",
        "USER": env.get("DB_USER") or "postgres",
        "PASSWORD": env.get("DB_PASSWORD") or "",
    }


def redis_url_from_env(env: Mapping[str, str]) -> str | None:
    """The Redis URL from `REDIS_URL`, else built from `REDIS_HOST` and friends; None if neither is set."""
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    if not env.get("REDIS_HOST"):
        return None
    password = env.get("REDIS_PASSWORD")
    credentials = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{credentials}{env['REDIS_HOST']}:{env.get('REDIS_PORT') or '6379'}/0"


def celery_url_from_redis_url(redis_url: str) -> str:
    """Kombu spells a Unix-socket Redis `redis+socket:///path`, where redis-py says `unix:///path`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


VAR_DIR = embedded.default_var_dir()

def envlist(name: str) -> list[str]:
    """A comma-separated list; unset or empty is the empty list."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


TRADING_ENVIRONMENTS = ("development", "production")
TRADING_ENV = os.environ.get("TRADING_ENV", "development")
if TRADING_ENV not in TRADING_ENVIRONMENTS:
    raise ImproperlyConfigured(f"TRADING_ENV={TRADING_ENV!r}: use exactly development or production")
PRODUCTION = TRADING_ENV == "production"
DEBUG = envbool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG=true is refused when TRADING_ENV=production: its pages show the settings")
SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when TRADING_ENV=production")
    SECRET_KEY = "insecure-development-key-never-used-in-production"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS") or (["*"] if not PRODUCTION else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the exchange's host names when TRADING_ENV=production")
# In Kubernetes the kubelet's probes and Prometheus's scrapes address the pod by its IP (POD_IP, from the
# downward API): that host is allowed too.
if envstr("POD_IP") and "*" not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(envstr("POD_IP"))
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# HTTPS in production (`manage.py check --deploy` passes with these defaults). Where TLS ends at a proxy or load
# balancer, SECURE_PROXY_SSL_HEADER names the header it sets, e.g. X-Forwarded-Proto; only set it if the proxy
# always sets or strips that header. Health probes and the metrics scraper may use plain HTTP.
TLS_AT_PROXY = bool(envstr("SECURE_PROXY_SSL_HEADER"))
# Behind the proxy, only what came through it over plain HTTP is redirected (`exchange.serving.production`,
# `ProxiedHttpsRedirectMiddleware`): a call from inside the cluster (`http://trading-service:8080/admin/...`, the
# deployment guide's operator calls) never passed the proxy and is served as it came. Django's own redirect would
# send it to https://trading-service:8080/, where nothing speaks TLS; so it is off there, and its deploy check
# (security.W008) with it.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", PRODUCTION and not TLS_AT_PROXY)
SILENCED_SYSTEM_CHECKS = ["security.W008"] if PRODUCTION and TLS_AT_PROXY and not SECURE_SSL_REDIRECT else []
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^live$", r"^ready$", r"^metrics$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", PRODUCTION)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + os.environ["SECURE_PROXY_SSL_HEADER"].upper().replace("-", "_"), "https")

# /metrics: with METRICS_TOKEN set, only a scraper presenting `Authorization: Bearer <token>` reads it.
# Production refuses to start without one.
METRICS_TOKEN = envstr("METRICS_TOKEN")

# How often the matching worker samples its health, and how often performance reports are written.
METRICS_COLLECTION_INTERVAL = envseconds("METRICS_COLLECTION_INTERVAL", 10)
# How often each process writes its slowest statements to Redis for /admin/slow-queries (exchange/ops/slow_queries.py),
# where the database has no pg_stat_statements.
SLOW_QUERY_PUBLISH_SECONDS = envseconds("SLOW_QUERY_PUBLISH_SECONDS", 30)
# `auto`: pg_stat_statements where the database has it, else the processes' records; `processes`: always those.
SLOW_QUERIES_SOURCE = envstr("SLOW_QUERIES_SOURCE", "auto")
if SLOW_QUERIES_SOURCE not in ("auto", "processes"):
    raise ImproperlyConfigured(f"SLOW_QUERIES_SOURCE={SLOW_QUERIES_SOURCE!r}: auto or processes")
PERFORMANCE_REPORT_INTERVAL = envseconds("PERFORMANCE_REPORT_INTERVAL", 300)

# Engine migrations: the preset every pair starts from (the admin's migration settings go on top; the control
# plane checks the name at start-up), and the master switch. The control plane's celery tasks tick every
# MIGRATION_TICK_INTERVAL (0, the default: the preset's metrics interval); each plan is then re-evaluated at
# its own metrics interval.
MIGRATION_PRESET = envstr("MIGRATION_PRESET", "production")
ADAPTIVE_ORDER_BOOKS_ENABLED = envbool("ADAPTIVE_ORDER_BOOKS_ENABLED", True)
MIGRATION_TICK_SECONDS = envseconds("MIGRATION_TICK_INTERVAL", 0)

INSTALLED_APPS = [
    # daphne first: it makes `runserver` serve the ASGI application (HTTP and websockets).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "channels",
    "axes",
    "exchange",
    "migrations_admin",
    "matching_worker",
]

MIDDLEWARE = [
    "exchange.ops.request_id.RequestIdMiddleware",
    "exchange.api.json_errors.JsonErrorsMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "exchange.serving.production.ProxiedHttpsRedirectMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it answers a locked-out login.
    "axes.middleware.AxesMiddleware",
]

# Logins (the admin's, a session's) are throttled by django-axes: after 5 failures for a username from an
# address, that username is locked out from that address for 15 minutes; a success resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

ROOT_URLCONF = "exchange.urls"
WSGI_APPLICATION = "exchange.wsgi.application"
ASGI_APPLICATION = "exchange.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_config_from_env(os.environ)
    or dj_database_url.parse(embedded.ensure_embedded_postgres(VAR_DIR)),
}
# Persistent connections, checked at the start of each request: a new connection per request cost ~1.8 ms.
# Every server here keeps a thread's connection for that thread (gunicorn's threads, daphne's and Celery's
# executors), never one thread per request as Django's own ASGI handler would for HTTP.
DATABASES["default"]["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = redis_url_from_env(os.environ) or embedded.ensure_embedded_redis(VAR_DIR)

# Redis pub/sub: a message to a group is published once and fanned out to the group's consumers inside each
# websocket process; the list-based layer would write one copy per consumer into Redis.
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    },
}

# A websocket process holds at most this many streams (more are refused with close code 1013, "try again
# later"), and drops a client whose socket stays full (it does not read) for WEBSOCKET_SEND_TIMEOUT_SECONDS.
WEBSOCKET_MAX_CONNECTIONS = envint("WEBSOCKET_MAX_CONNECTIONS", 10_000)
WEBSOCKET_SEND_TIMEOUT_SECONDS = envint("WEBSOCKET_SEND_TIMEOUT_SECONDS", 2)
# Where browsers reach the websocket server: WEBSOCKET_URL (e.g. wss://trading.example.com behind an ingress that
# routes /ws/), else the page's host on WEBSOCKET_PORT ($PORT + 1, as run_exchange serves it).
WEBSOCKET_URL = envstr("WEBSOCKET_URL")
WEBSOCKET_PORT = envint("WEBSOCKET_PORT", envint("PORT", 8080) + 1)
# Websocket routes of other apps, added to exchange/routing.py's (the control plane's screens).
WEBSOCKET_ROUTE_MODULES = ["migrations_admin.routing"]
# How often a control screen's websocket looks for a change to send.
CONTROL_REFRESH_SECONDS = envseconds("CONTROL_REFRESH_SECONDS", 1)

# Webhooks (Slack-compatible) told of breaker trips, rollbacks, emergency stops and finished migrations.
ALERT_WEBHOOK_URLS = envlist("ALERT_WEBHOOK_URLS")
WEBHOOK_TIMEOUT_SECONDS = envint("WEBHOOK_TIMEOUT_SECONDS", 5)
WEBHOOK_MAX_RETRIES = envint("WEBHOOK_MAX_RETRIES", 8)

# Retention: what the control plane's daily prune keeps (days); 0 keeps forever. Reads of the migration and
# breaker status are audited once per READ_AUDIT_SECONDS per operator.
RETENTION_HEALTH_SAMPLE_DAYS = envint("RETENTION_HEALTH_SAMPLE_DAYS", 14)
RETENTION_ENGINE_COMMAND_DAYS = envint("RETENTION_ENGINE_COMMAND_DAYS", 90)
RETENTION_AUDIT_DAYS = envint("RETENTION_AUDIT_DAYS", 400)
READ_AUDIT_SECONDS = envint("READ_AUDIT_SECONDS", 3600)

CELERY_BROKER_URL = celery_url_from_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Celery's processes log through LOGGING too (JSON lines, `component` celery-worker or celery-beat), not its own
# plain-text format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The periodic tasks are scheduled by the apps that own them (migrations_admin/tasks.py, exchange/tasks.py); the
# tasks of modules that are not an app's `tasks` are imported by name.
CELERY_IMPORTS = ["exchange.ops.webhooks"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Deployments that run `collectstatic` set STATIC_ROOT; otherwise WhiteNoise serves static files (admin, API
# docs) straight from the apps, so `make run` needs no collectstatic step.
STATIC_ROOT = envstr("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "exchange.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every error answer is {"error": {"code", "message", "fields"}}; see exchange/api/json_errors.py.
    "EXCEPTION_HANDLER": "exchange.api.json_errors.handle_exception",
    "DEFAULT_THROTTLE_CLASSES": ["exchange.api.throttling.WindowRateThrottle"],
}
# Requests per user (authenticated) and per address (anonymous), counted across all web processes.
API_RATE_USER = envstr("API_RATE_USER", "100/s")
API_RATE_ANONYMOUS = envstr("API_RATE_ANONYMOUS", "20/s")

SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange back office API",
    "DESCRIPTION": "Trading API and operator API of the exchange back office.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchange.api.schema.document_errors",
    ],
    # An order's side and a trade's taker side are one choice set; the two statuses are distinct ones.
    "ENUM_NAME_OVERRIDES": {
        "SideEnum": "exchange.models.Order.Side",
        "OrderStatusEnum": "exchange.models.Order.Status",
        "PairStatusEnum": "exchange.models.TradingPair.Status",
    },
}

SERVICE_NAME = envstr("SERVICE_NAME", "adaptive-trading")
LOG_COMPONENT = envstr("LOG_COMPONENT", "web")
LOG_LEVEL = envstr("LOG_LEVEL", "info").upper()
LOG_FILE = envstr("LOG_FILE")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "exchange.ops.json_logging.JsonLineFormatter", "service": SERVICE_NAME,
                 "component": LOG_COMPONENT},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json"},
        # LOG_FILE: the same lines appended to a file too (the deployment guide greps
        # /var/log/trading/application.log; in Kubernetes a volume mounted there). Reopened when logrotate moves it.
        **({"file": {"class": "logging.handlers.WatchedFileHandler", "filename": LOG_FILE, "formatter": "json"}}
           if LOG_FILE else {}),
    },
    "root": {"handlers": ["console", "file"] if LOG_FILE else ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The embedded PostgreSQL helper logs every command it runs at INFO.
        "embedded_postgres": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
