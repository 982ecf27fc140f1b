"""The control screens, mounted at /control/."""
from django.urls import path

from migrations_admin import control

urlpatterns = [
    path("", control.dashboard, name="control-dashboard"),
    path("<str:symbol>/", control.pair_page, name="control-pair"),
]
