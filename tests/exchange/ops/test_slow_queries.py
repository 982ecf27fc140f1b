"""`GET /admin/slow-queries`, for staff: the slowest recent statements with calls, mean, max and origin, from
pg_stat_statements where the server loads it, otherwise from what every process records of its own statements."""
import uuid

import psycopg2
import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from exchange.market.published import store
from exchange.ops import slow_queries
from exchange.ops.slow_queries import StatementRecorder, TimedCursor, fingerprint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_published_statements():
    keys = list(store().scan_iter(slow_queries.KEY_PREFIX + "*", count=1000))
    if keys:
        store().delete(*keys)


def client_of(staff: bool) -> APIClient:
    client = APIClient()
    user, _ = User.objects.get_or_create(username="staff" if staff else "trader", defaults={"is_staff": staff})
    client.force_authenticate(user)
    return client


def pg_stat_statements_loaded() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_preload_libraries")
        return "pg_stat_statements" in cursor.fetchone()[0]


def sleep_statement(seconds: float) -> str:
    """A statement of its own (a unique column name), slow by `seconds`."""
    marker = f"slow_marker_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_sleep(%s) AS {marker}", [seconds])
    return marker


def test_fingerprints_replace_literals_and_lists_as_pg_stat_statements_does():
    assert fingerprint("SELECT * FROM t WHERE id IN (%s, %s, %s) AND name = 'o''brien' AND x > 1.5e3") == \
        "SELECT * FROM t WHERE id IN (?, ...) AND name = ? AND x > ?"
    assert fingerprint(b"INSERT INTO t2 (a, b) VALUES (1, 'x'), (2, 'y')") == \
        "INSERT INTO t2 (a, b) VALUES (?, ...), ..."
    bulk = b"INSERT INTO t3 VALUES " + b",".join(b"(1, 2)" for _ in range(10_000))
    assert fingerprint(bulk) == "INSERT INTO t3 VALUES (?, ...), ... ..."
    assert fingerprint("EXECUTE claim_inbox (%(pairs)s, %(limit)s)") == "EXECUTE claim_inbox (?, ...)"
    assert fingerprint("SELECT $1 FROM order_book_2") == "SELECT ? FROM order_book_2"


def test_staff_see_the_slowest_statement_first_with_its_figures_and_origin(settings):
    settings.SLOW_QUERIES_SOURCE = "processes"
    slow = sleep_statement(0.2)
    quick = sleep_statement(0.01)

    response = client_of(staff=True).get("/admin/slow-queries", {"limit": 200})

    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "processes"
    queries = [statement["query"] for statement in body["statements"]]
    position = {marker: next(i for i, query in enumerate(queries) if marker in query) for marker in (slow, quick)}
    assert position[slow] < position[quick]
    slowest = body["statements"][position[slow]]
    assert "pg_sleep(?)" in slowest["query"]
    assert slowest["calls"] == 1 and slowest["mean_ms"] >= 200 and slowest["max_ms"] >= 200
    assert slowest["origin"][0].startswith("web:")
    means = [statement["mean_ms"] for statement in body["statements"]]
    assert means == sorted(means, reverse=True)
    assert len(client_of(staff=True).get("/admin/slow-queries", {"limit": 1}).json()["statements"]) == 1


def test_statements_of_every_process_are_merged(settings):
    """The worker's batch sessions time theirs through TimedCursor and publish them like any process."""
    settings.SLOW_QUERIES_SOURCE = "processes"
    worker_recorder = StatementRecorder("matching-worker", 30, store)
    shared = "SELECT pg_sleep(%s) AS merged_marker"
    raw = psycopg2.connect(**connection.get_connection_params())
    raw.cursor_factory = TimedCursor
    try:
        with raw.cursor() as cursor:
            cursor.execute(shared, [0.05])           # recorded by this process's recorder, like the web's
    finally:
        raw.close()
    worker_recorder.record(shared, 0.15)
    worker_recorder.record(shared, 0.25)
    worker_recorder.publish()

    statements = client_of(staff=True).get("/admin/slow-queries", {"limit": 200}).json()["statements"]

    merged = next(statement for statement in statements if "merged_marker" in statement["query"])
    assert merged["calls"] == 3
    assert merged["max_ms"] == 250.0
    assert 140 <= merged["mean_ms"] <= 160
    assert [origin.split(":")[0] for origin in merged["origin"]] == ["matching-worker", "web"]


def test_a_created_but_unloaded_extension_falls_back_and_leaves_the_connection_usable():
    if pg_stat_statements_loaded():
        pytest.skip("the server loads pg_stat_statements")
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    response = client_of(staff=True).get("/admin/slow-queries")

    assert (response.status_code, response.json()["source"]) == (200, "processes")
    assert User.objects.filter(username="staff").exists(), "the test's transaction survived the refusal"


def test_where_the_server_loads_it_pg_stat_statements_answers():
    """The embedded server loads it and the migrations create it in the database; a server without it (skipped
    here) is the fallback's case above."""
    if not pg_stat_statements_loaded():
        pytest.skip("this server has no pg_stat_statements in shared_preload_libraries")
    sleep_statement(0.25)

    body = client_of(staff=True).get("/admin/slow-queries", {"limit": 50}).json()

    # pg_stat_statements groups statements by their parse tree, column aliases aside: every marker is one entry.
    assert body["source"] == "pg_stat_statements"
    sleeping = [statement for statement in body["statements"] if "pg_sleep($1)" in statement["query"]]
    assert sleeping and sleeping[0]["max_ms"] >= 250 and sleeping[0]["origin"] == ["role:postgres"]


def test_a_full_recorder_forgets_its_quickest_half_and_keeps_recording():
    recorder = StatementRecorder("web", 3600, store)
    for number in range(slow_queries.MAX_STATEMENTS):
        recorder.record(f"SELECT {number} AS column_{number}", 0.001 if number % 2 else 0.002)

    recorder.record("SELECT new_slow_one", 0.5)

    kept = {row["query"] for row in recorder.slowest(slow_queries.MAX_STATEMENTS)}
    assert "SELECT new_slow_one" in kept
    assert len(kept) == slow_queries.MAX_STATEMENTS // 2 + 1 and recorder.forgotten == slow_queries.MAX_STATEMENTS // 2
    assert "SELECT ? AS column_1" not in kept and "SELECT ? AS column_0" in kept


def test_slow_queries_are_for_staff_only_and_refuse_bad_parameters():
    assert APIClient().get("/admin/slow-queries").status_code == 401
    assert client_of(staff=False).get("/admin/slow-queries").status_code == 403
    response = APIClient()
    response.force_authenticate(User.objects.create_user("ops", is_staff=True))
    refused = response.get("/admin/slow-queries", {"limit": 0})
    assert refused.status_code == 400 and "limit" in refused.json()["error"]["fields"]
