"""The OpenAPI schema describes the whole API without a guess, and the docs page renders it."""
import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_is_served_with_the_trading_and_operator_endpoints(anonymous_api):
    response = anonymous_api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/orders/", "/api/orders/batch/", "/api/pairs/", "/admin/migration/start"):
        assert path in schema["paths"], path
    start = schema["paths"]["/admin/migration/start"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Start")


def test_every_view_is_described_without_a_warning(tmp_path):
    """drf-spectacular falls back to a guess, and warns, for a view it cannot read; a guess is a wrong document."""
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


@pytest.mark.django_db
def test_the_docs_page_renders_without_a_cdn(anonymous_api):
    response = anonymous_api.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    assert "cdn." not in page and "unpkg.com" not in page
