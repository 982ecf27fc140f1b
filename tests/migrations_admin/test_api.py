"""The operator API: staff only; each call writes the right EngineCommand, plan, event and audit row in one
go; each refusal is a 4xx that writes nothing; the status is an array the guide's jq filter works on."""

from datetime import timedelta

import pytest

from exchange.models import AuditLog, EngineCommand, HealthSample
from migrations_admin import automation
from migrations_admin.models import MigrationEvent, MigrationPlan, MigrationSettings
from tests.migrations_admin.conftest import NOW, add_minutes, set_engine

pytestmark = pytest.mark.django_db

START_BTC = {"pair": "BTCUSDT", "target_percentage": 50}
CALLS = [
    ("post", "/admin/migration/start", START_BTC),
    ("post", "/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 20}),
    ("post", "/admin/migration/finalize", {"pair": "BTCUSDT"}),
    ("post", "/admin/migration/rollback", {"pair": "BTCUSDT"}),
    ("post", "/admin/migration/emergency-stop", {}),
    ("get", "/admin/migration/status", None),
    ("get", "/admin/circuit-breaker/status", None),
    ("post", "/admin/circuit-breaker/reset/BTCUSDT", {}),
]


def call(client, method, path, body=None):
    return getattr(client, method)(path, body, format="json") if method == "post" else client.get(path)


def written() -> tuple[int, int, int, int]:
    return (EngineCommand.objects.count(), MigrationPlan.objects.count(), MigrationEvent.objects.count(),
            AuditLog.objects.count())


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_anonymous_callers_get_401(client, pairs, method, path, body):
    response = call(client, method, path, body)

    assert response.status_code == 401
    assert written() == (0, 0, 0, 0)


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_non_staff_users_get_403(trader_api, pairs, method, path, body):
    response = call(trader_api, method, path, body)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert written() == (0, 0, 0, 0)


def test_start_creates_a_running_plan_and_sends_start(staff_api, btc):
    response = staff_api.post("/admin/migration/start", START_BTC, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["pair"], body["state"], body["current_percentage"], body["target_percentage"]) == \
        ("BTCUSDT", "running", 10, 50)
    command = EngineCommand.objects.get()
    assert (command.kind, command.percentage, command.actor, command.status) == ("start", 10, "operator:ops", "pending")
    assert command.settings == {"breaker_failure_threshold": 3, "breaker_failure_window_s": 60.0,
                                "breaker_recovery_timeout_s": 180.0, "breaker_half_open_calls": 5,
                                "adaptive_latency_limit_ms": 50.0, "hash_key": "adaptive-rollout"}
    event = MigrationEvent.objects.get()
    assert (event.kind, event.actor, event.from_percentage, event.to_percentage) == ("start", "operator:ops", 0, 10)
    audit = AuditLog.objects.get()
    assert (audit.actor, audit.action, audit.target) == ("operator:ops", "migration_start", "pair:BTCUSDT")


def test_start_at_zero_is_shadow_mode(staff_api, btc):
    response = staff_api.post("/admin/migration/start", {"pair": "BTCUSDT", "target_percentage": 0}, format="json")

    assert response.json()["current_percentage"] == 0
    assert EngineCommand.objects.get().percentage == 0


def test_start_never_begins_above_the_target(staff_api, btc):
    response = staff_api.post("/admin/migration/start", {"pair": "btcusdt", "target_percentage": 5}, format="json")

    assert response.json()["current_percentage"] == 5


def test_percentage_moves_the_plan_and_sends_set_percentage(staff_api, btc):
    staff_api.post("/admin/migration/start", START_BTC, format="json")

    response = staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 35}, format="json")

    assert response.status_code == 200
    assert (response.json()["current_percentage"], response.json()["target_percentage"]) == (35, 35)
    command = EngineCommand.objects.first()
    assert (command.kind, command.percentage) == ("set_percentage", 35)
    assert command.settings["breaker_failure_threshold"] == 3
    assert MigrationEvent.objects.first().kind == "set_percentage"
    assert AuditLog.objects.first().action == "migration_set_percentage"


def test_operators_may_step_past_the_safety_max_step_as_the_guide_does(staff_api, btc):
    staff_api.post("/admin/migration/start", START_BTC, format="json")

    for percentage in (25, 50, 75, 100):
        response = staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": percentage},
                                  format="json")
        assert response.status_code == 200


def test_finalize_at_100_sends_finalize(staff_api, btc):
    staff_api.post("/admin/migration/start", {"pair": "BTCUSDT", "target_percentage": 100}, format="json")
    staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 100}, format="json")

    response = staff_api.post("/admin/migration/finalize", {"pair": "BTCUSDT"}, format="json")

    assert response.json()["state"] == "completed"
    assert EngineCommand.objects.first().kind == "finalize"
    assert AuditLog.objects.first().action == "migration_finalize"


def test_the_guides_gradual_rollback_loop_works_on_a_finalized_pair(staff_api, btc):
    staff_api.post("/admin/migration/start", {"pair": "BTCUSDT", "target_percentage": 100}, format="json")
    staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 100}, format="json")
    finalized = staff_api.post("/admin/migration/finalize", {"pair": "BTCUSDT"}, format="json").json()
    set_engine(btc, "adaptive_only", 100)

    for percentage in (75, 50, 25, 0):
        response = staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": percentage},
                                  format="json")
        assert (response.status_code, response.json()["current_percentage"]) == (200, percentage)

    reopened = MigrationPlan.objects.first()
    assert reopened.id != finalized["id"] and (reopened.state, reopened.current_percentage) == ("running", 0)
    assert list(reopened.events.order_by("id").values_list("kind", "from_percentage", "to_percentage")) == [
        ("start", 100, 100), ("set_percentage", 100, 75), ("set_percentage", 75, 50), ("set_percentage", 50, 25),
        ("set_percentage", 25, 0)]
    assert "reopened after finalize" in reopened.events.order_by("id").first().reason
    assert list(EngineCommand.objects.order_by("-id").values_list("kind", "percentage")[:4]) == [
        ("set_percentage", 0), ("set_percentage", 25), ("set_percentage", 50), ("set_percentage", 75)]


def test_rollback_sends_rollback_and_records_the_reason(staff_api, btc):
    staff_api.post("/admin/migration/start", START_BTC, format="json")

    response = staff_api.post("/admin/migration/rollback", {"pair": "BTCUSDT", "reason": "p99 looks odd"},
                              format="json")

    assert (response.json()["state"], response.json()["current_percentage"]) == ("rolled_back", 0)
    command = EngineCommand.objects.first()
    assert (command.kind, command.percentage, command.reason) == ("rollback", 0, "p99 looks odd")
    assert MigrationEvent.objects.first().reason == "p99 looks odd"


def test_emergency_stop_stops_every_live_pair(staff_api, pairs):
    for symbol in ("BTCUSDT", "ETHUSDT"):
        staff_api.post("/admin/migration/start", {"pair": symbol, "target_percentage": 50}, format="json")
    set_engine(pairs["DOTUSDT"], "adaptive_only", 100)  # no plan, but not on the legacy book

    response = staff_api.post("/admin/migration/emergency-stop", format="json")

    assert response.json() == {"stopped": ["BTCUSDT", "DOTUSDT", "ETHUSDT"]}
    stops = EngineCommand.objects.filter(kind="emergency_stop")
    assert sorted(stops.values_list("pair__symbol", flat=True)) == ["BTCUSDT", "DOTUSDT", "ETHUSDT"]
    assert set(MigrationPlan.objects.values_list("state", flat=True)) == {"stopped"}
    assert AuditLog.objects.filter(action="migration_emergency_stop").count() == 3


def test_emergency_stop_with_nothing_live_stops_nothing(staff_api, pairs):
    response = staff_api.post("/admin/migration/emergency-stop", format="json")

    assert response.json() == {"stopped": []}
    assert written() == (0, 0, 0, 0)


def apply_commands(pair, mode: str, percentage: int) -> None:
    """What the worker does with the pair's pending commands: apply them and commit its engine's state."""
    EngineCommand.objects.filter(pair=pair, status=EngineCommand.Status.PENDING).update(
        status=EngineCommand.Status.APPLIED)
    set_engine(pair, mode, percentage)


def test_status_is_an_array_and_the_guides_jq_filter_holds(staff_api, pairs):
    staff_api.post("/admin/migration/start", START_BTC, format="json")
    add_minutes(pairs["BTCUSDT"], NOW, 1, commands=200, errors=2, divergences=1, latency_p95_us=80.0)
    add_minutes(pairs["BTCUSDT"], NOW, 1, book="legacy", commands=800)

    statuses = staff_api.get("/admin/migration/status").json()

    assert isinstance(statuses, list)
    assert [status["pair"] for status in statuses] == ["ADAUSDT", "BTCUSDT", "DOTUSDT", "ETHUSDT"]
    btc = statuses[1]
    # Asked, not yet applied by a worker: the status says so rather than claim 10% is serving.
    assert (btc["state"], btc["mode"], btc["current_percentage"], btc["requested_percentage"],
            btc["target_percentage"], btc["pending_commands"], btc["applied"]) == \
        ("running", "legacy_only", 0, 10, 50, 1, False)
    assert btc["health"]["adaptive"]["error_rate"] == 0.01
    assert btc["health"]["adaptive"]["divergences"] == 1
    assert btc["health"]["legacy"]["commands"] == 800
    assert btc["last_step_at"] and btc["next_step_at"]
    assert statuses[0]["state"] == "none"
    assert statuses[0]["health"] == {"adaptive": None, "legacy": None}

    apply_commands(pairs["BTCUSDT"], "migrating", 10)
    statuses = staff_api.get("/admin/migration/status").json()
    # jq '.[] | select(.current_percentage > 0)'
    assert [(status["pair"], status["applied"]) for status in statuses if status["current_percentage"] > 0] == \
        [("BTCUSDT", True)]

    staff_api.post("/admin/migration/emergency-stop", format="json")
    # The guide's check waits for the truth: until the worker has applied the stop, BTCUSDT still serves 10%.
    waiting = [status for status in staff_api.get("/admin/migration/status").json() if status["current_percentage"] > 0]
    assert [(status["pair"], status["requested_percentage"], status["applied"]) for status in waiting] == \
        [("BTCUSDT", 0, False)]
    apply_commands(pairs["BTCUSDT"], "legacy_only", 0)
    after = staff_api.get("/admin/migration/status").json()
    assert [status for status in after if status["current_percentage"] > 0] == []
    assert all(status["applied"] for status in after)


def test_pairs_without_plan_show_the_engines_percentage(staff_api, pairs):
    set_engine(pairs["ADAUSDT"], "migrating", 30, breaker_state="open", breaker_trips=2)

    ada = staff_api.get("/admin/migration/status").json()[0]

    assert (ada["state"], ada["current_percentage"], ada["breaker_state"], ada["breaker_trips"]) == \
        ("none", 30, "open", 2)


def test_breaker_status_and_reset(staff_api, pairs):
    set_engine(pairs["BTCUSDT"], "migrating", 10, breaker_state="open", breaker_trips=3)

    breakers = staff_api.get("/admin/circuit-breaker/status").json()
    response = staff_api.post("/admin/circuit-breaker/reset/BTCUSDT")

    assert [(b["pair"], b["breaker_state"], b["breaker_trips"]) for b in breakers][:2] == \
        [("ADAUSDT", "closed", 0), ("BTCUSDT", "open", 3)]
    assert response.status_code == 202
    command = EngineCommand.objects.get()
    assert (command.kind, command.pair.symbol) == ("reset_breaker", "BTCUSDT")
    audit = AuditLog.objects.get(action="migration_reset_breaker")
    assert (audit.action, audit.details["breaker_state"]) == ("migration_reset_breaker", "open")


def test_reset_of_an_unknown_pair_is_404(staff_api, pairs):
    response = staff_api.post("/admin/circuit-breaker/reset/NOPE")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_pair"
    assert written() == (0, 0, 0, 0)


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("start", {"pair": "NOPEUSDT", "target_percentage": 10}, 400, "unknown_pair"),
    ("start", {"pair": "BTCUSDT", "target_percentage": 101}, 400, "invalid_request"),
    ("start", {"pair": "BTCUSDT", "target_percentage": -1}, 400, "invalid_request"),
    ("start", {"pair": "BTCUSDT", "target_percentage": "ten"}, 400, "invalid_request"),
    ("start", {"pair": "BTCUSDT"}, 400, "invalid_request"),
    ("start", {"pair": "BTCUSDT", "target_percentage": 10, "typo": 1}, 400, "invalid_request"),
    ("start", [1, 2], 400, "invalid_request"),
    ("percentage", {"pair": "BTCUSDT", "percentage": 20}, 409, "no_live_plan"),
    ("percentage", {"pair": "BTCUSDT", "percentage": 200}, 400, "invalid_request"),
    ("finalize", {"pair": "BTCUSDT"}, 409, "no_live_plan"),
    ("rollback", {"pair": "BTCUSDT"}, 409, "nothing_to_roll_back"),
    ("rollback", {}, 400, "invalid_request"),
])
def test_invalid_requests_are_refused_and_write_nothing(staff_api, pairs, path, body, status, code):
    response = staff_api.post(f"/admin/migration/{path}", body, format="json")

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert written() == (0, 0, 0, 0)


def test_malformed_json_is_400(staff_api, pairs):
    response = staff_api.post("/admin/migration/start", "{not json", content_type="application/json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "malformed_body")


def refused_after_start(staff_api, path, body):
    staff_api.post("/admin/migration/start", START_BTC, format="json")
    before = written()
    response = staff_api.post(path, body, format="json")
    assert written() == before
    return response


def test_a_percentage_above_the_configured_max_is_400(staff_api, btc, settings):
    settings.MIGRATION_PRESET = "conservative"  # max 50%

    response = refused_after_start(staff_api, "/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 60})

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "percentage_out_of_range", "fields": {"percentage": response.json()["error"]["message"]},
        "message": "percentage must be between 0 and 50 (the configured maximum), not 60"}


def test_a_second_start_is_409(staff_api, btc):
    response = refused_after_start(staff_api, "/admin/migration/start", START_BTC)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "migration_in_progress")


def test_finalize_below_100_is_409(staff_api, btc):
    response = refused_after_start(staff_api, "/admin/migration/finalize", {"pair": "BTCUSDT"})

    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_at_full_percentage")


def test_start_on_an_adaptive_only_engine_is_409(staff_api, btc):
    set_engine(btc, "adaptive_only", 100)

    response = staff_api.post("/admin/migration/start", START_BTC, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "engine_not_legacy")
    assert written() == (0, 0, 0, 0)


@pytest.mark.parametrize("switch", ["admin", "environment"])
def test_disabled_migrations_refuse_start_and_percentage(staff_api, btc, settings, switch):
    staff_api.post("/admin/migration/start", START_BTC, format="json")
    if switch == "admin":
        MigrationSettings.objects.create(adaptive_order_books_enabled=False)
    else:
        settings.ADAPTIVE_ORDER_BOOKS_ENABLED = False
    before = written()

    start = staff_api.post("/admin/migration/start", {"pair": "ETHUSDT", "target_percentage": 10}, format="json")
    percentage = staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 20}, format="json")
    rollback = staff_api.post("/admin/migration/rollback", {"pair": "BTCUSDT"}, format="json")

    assert (start.status_code, start.json()["error"]["code"]) == (409, "migrations_disabled")
    assert (percentage.status_code, percentage.json()["error"]["code"]) == (409, "migrations_disabled")
    assert rollback.status_code == 200, "rolling back always works"
    assert written()[0] == before[0] + 1


def test_lowering_the_percentage_works_with_migrations_disabled(staff_api, btc, settings):
    staff_api.post("/admin/migration/start", START_BTC, format="json")
    settings.ADAPTIVE_ORDER_BOOKS_ENABLED = False

    lower = staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 5}, format="json")

    assert (lower.status_code, lower.json()["current_percentage"]) == (200, 5), "a gradual rollback is a rollback"


def test_session_authentication_works_for_staff(client, staff, pairs):
    client.force_login(staff)

    assert client.get("/admin/migration/status").status_code == 200


def test_health_samples_of_other_pairs_do_not_leak(staff_api, pairs):
    add_minutes(pairs["ETHUSDT"], NOW, 1, commands=5)

    statuses = {status["pair"]: status for status in staff_api.get("/admin/migration/status").json()}

    assert statuses["BTCUSDT"]["health"]["adaptive"] is None
    assert statuses["ETHUSDT"]["health"]["adaptive"]["commands"] == 5
    assert HealthSample.objects.count() == 1


@pytest.mark.parametrize("path, action", [("/admin/migration/status", "migration_status_read"),
                                          ("/admin/circuit-breaker/status", "breaker_status_read")])
def test_reading_status_is_audited_with_the_operator_once_an_hour(staff_api, staff, pairs, path, action):
    for _ in range(3):
        assert staff_api.get(path).status_code == 200
    entry = AuditLog.objects.get(action=action)          # one row for the three reads
    assert entry.actor == f"operator:{staff.username}"
    assert entry.details == {"sampled_every_s": 3600}


def test_an_operator_pauses_and_resumes_a_migration(staff_api, btc):
    staff_api.post("/admin/migration/start", START_BTC, format="json")

    paused = staff_api.post("/admin/migration/pause", {"pair": "BTCUSDT"}, format="json")
    plan = MigrationPlan.objects.get()
    set_engine(btc, "migrating", 10)
    add_minutes(btc, NOW + timedelta(hours=1), 5)
    left_alone = automation.auto_migrate(NOW + timedelta(hours=1))
    plan.refresh_from_db()
    resumed = staff_api.post("/admin/migration/resume", {"pair": "BTCUSDT"}, format="json")
    again = staff_api.post("/admin/migration/resume", {"pair": "BTCUSDT"}, format="json")

    assert (paused.status_code, paused.json()["state"], paused.json()["hold_reason"]) == \
        (200, "paused", "paused by an operator")
    assert plan.next_step_at is None and left_alone == {}, "auto-migration leaves a paused plan alone"
    assert (resumed.status_code, resumed.json()["state"]) == (200, "running")
    assert resumed.json()["next_step_at"] is not None
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_paused")
    assert list(MigrationEvent.objects.order_by("id").values_list("kind", flat=True)) == ["start", "pause", "resume"]
    assert AuditLog.objects.filter(action__in=["migration_pause", "migration_resume"]).count() == 2
