"""What the exchange refuses to serve production with: anything `manage.py check --deploy` warns about (the
settings in `exchange/settings.py` fix each by default) and an open /metrics. The entry points of every
serving process (`exchange.wsgi`, `exchange.asgi`, `run_exchange`) call `refuse_unsafe_production`.

Where TLS ends at a proxy, HTTPS is enforced for what comes through the proxy (`ProxiedHttpsRedirectMiddleware`),
not for calls from inside the cluster, which never pass it."""
import re
from collections.abc import Callable

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect


def unsafe_production_settings() -> list[str]:
    """Every problem found, as `<check id>: <message>`."""
    problems = [f"{message.id}: {message.msg}" for message in checks.run_checks(include_deployment_checks=True)
                if message.level >= checks.WARNING and message.id not in settings.SILENCED_SYSTEM_CHECKS]
    if not settings.METRICS_TOKEN:
        problems.append("METRICS_TOKEN is not set: /metrics would be open to anyone")
    return problems


def refuse_unsafe_production() -> None:
    if not settings.PRODUCTION:
        return
    problems = unsafe_production_settings()
    if problems:
        raise ImproperlyConfigured("refusing to serve TRADING_ENV=production:\n  " + "\n  ".join(problems))


class ProxiedHttpsRedirectMiddleware:
    """Behind a TLS proxy (SECURE_PROXY_SSL_HEADER), a request the proxy forwarded from plain HTTP (its header
    says so) is sent to HTTPS; one without the header came from inside the cluster and is served. Off where no
    proxy is named (Django's own SECURE_SSL_REDIRECT then decides) and for the redirect's exempt paths."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        proxy: tuple[str, str] | None = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        self.header: str | None = proxy[0] if proxy else None
        self.secure_value = proxy[1] if proxy else "https"
        self.exempt = [re.compile(pattern) for pattern in settings.SECURE_REDIRECT_EXEMPT]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.header is not None:
            forwarded = request.META.get(self.header)
            if forwarded is not None and forwarded.split(",")[0].strip() != self.secure_value \
                    and not any(pattern.search(request.path.lstrip("/")) for pattern in self.exempt):
                return HttpResponsePermanentRedirect(f"https://{request.get_host()}{request.get_full_path()}")
        return self.get_response(request)
