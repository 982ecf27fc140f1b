"""Routes of the REST trading API, mounted under /api/."""

from rest_framework.routers import SimpleRouter

from exchange.api import OrderViewSet, TradingPairViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("pairs", TradingPairViewSet, basename="pair")

urlpatterns = router.urls
