"""URL routes: the Django admin at /backoffice/, health, metrics, the trading API under /api/ with its schema
and docs, the operator API of engine migrations under /admin/ (the deployment guide's paths)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from exchange.market import page
from exchange.market.views import PairMarketDataViewSet
from exchange.ops import views
from exchange.trading.views import OrderViewSet, TradingPairViewSet

# The REST trading API. A pair's own routes and its market data's share `pairs/<symbol>/` and the route names
# `pair-*` (the `view` label of the HTTP metrics, which dashboards filter on): two routers, since one refuses a
# name given twice.
api = SimpleRouter()
api.register("orders", OrderViewSet, basename="order")
api.register("pairs", TradingPairViewSet, basename="pair")
market_api = SimpleRouter()
market_api.register("pairs", PairMarketDataViewSet, basename="pair")

urlpatterns = [
    path("backoffice/", admin.site.urls),
    path("health", views.health, name="health"),
    path("live", views.live, name="live"),
    path("ready", views.ready, name="ready"),
    path("debug/pprof/heap", views.HeapView.as_view(), name="debug-heap"),
    path("debug/pprof/profile", views.ProfileView.as_view(), name="debug-profile"),
    path("metrics", views.metrics, name="prometheus-django-metrics"),
    path("api/", include(api.urls + market_api.urls)),
    path("admin/slow-queries", views.SlowQueriesView.as_view(), name="slow-queries"),
    path("admin/", include("migrations_admin.urls")),
    path("control/", include("migrations_admin.control_urls")),
    path("market/<str:symbol>/", page.market, name="market-page"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
