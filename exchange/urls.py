"""URL routes: the Django admin at /backoffice/, health, metrics, the trading API under /api/ with its schema
and docs, the operator API of engine migrations under /admin/ (the deployment guide's paths)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from exchange import debug_api, market_page, views

urlpatterns = [
    path("backoffice/", admin.site.urls),
    path("health", views.health, name="health"),
    path("live", views.live, name="live"),
    path("ready", views.ready, name="ready"),
    path("debug/pprof/heap", debug_api.HeapView.as_view(), name="debug-heap"),
    path("debug/pprof/profile", debug_api.ProfileView.as_view(), name="debug-profile"),
    path("metrics", views.metrics, name="prometheus-django-metrics"),
    path("api/", include("exchange.api_urls")),
    path("admin/slow-queries", debug_api.SlowQueriesView.as_view(), name="slow-queries"),
    path("admin/", include("migrations_admin.urls")),
    path("control/", include("migrations_admin.control_urls")),
    path("market/<str:symbol>/", market_page.market, name="market-page"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
