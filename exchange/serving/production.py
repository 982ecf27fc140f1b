"""What the exchange refuses to serve production with: anything `manage.py check --deploy` warns about (the
settings in `exchange/settings.py` fix each by default) and an open /metrics. The entry points of every
serving process (`exchange.wsgi`, `exchange.asgi`, `run_exchange`) call `refuse_unsafe_production`."""
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def unsafe_production_settings() -> list[str]:
    """Every problem found, as `<check id>: <message>`."""
    problems = [f"{message.id}: {message.msg}" for message in checks.run_checks(include_deployment_checks=True)
                if message.level >= checks.WARNING]
    if not settings.METRICS_TOKEN:
        problems.append("METRICS_TOKEN is not set: /metrics would be open to anyone")
    return problems


def refuse_unsafe_production() -> None:
    if not settings.PRODUCTION:
        return
    problems = unsafe_production_settings()
    if problems:
        raise ImproperlyConfigured("refusing to serve TRADING_ENV=production:\n  " + "\n  ".join(problems))
