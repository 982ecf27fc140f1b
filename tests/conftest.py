"""Shared test configuration.

Deliberately light: no autouse database fixtures, so the pure engine tests in tests/matching never touch a
database. Tests that need one ask for it with `@pytest.mark.django_db`; pytest-django creates the test
database on the configured (or embedded) PostgreSQL server.
"""
