"""Routes of the operator API, mounted at /admin/ (the Django admin itself is at /backoffice/)."""

from django.urls import path

from migrations_admin import api

urlpatterns = [
    path("migration/start", api.StartView.as_view(), name="migration-start"),
    path("migration/percentage", api.PercentageView.as_view(), name="migration-percentage"),
    path("migration/finalize", api.FinalizeView.as_view(), name="migration-finalize"),
    path("migration/rollback", api.RollbackView.as_view(), name="migration-rollback"),
    path("migration/pause", api.PauseView.as_view(), name="migration-pause"),
    path("migration/resume", api.ResumeView.as_view(), name="migration-resume"),
    path("migration/emergency-stop", api.EmergencyStopView.as_view(), name="migration-emergency-stop"),
    path("migration/status", api.StatusView.as_view(), name="migration-status"),
    path("circuit-breaker/status", api.BreakerStatusView.as_view(), name="circuit-breaker-status"),
    path("circuit-breaker/reset/<str:pair>", api.BreakerResetView.as_view(), name="circuit-breaker-reset"),
]
