"""The control screens in a real browser (Debian's Chromium, driven by Playwright), against the real processes:
an ASGI server (daphne: the pages and the websocket on one port) and a matching worker, on the test database.
Screenshots of each screen are kept in var/test-artifacts/screens/."""
import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from playwright import sync_api as playwright

from exchange.models import EngineState
from migrations_admin import actions
from migrations_admin.operators import OPERATORS
from tests.browser.conftest import PASSWORD, release_database, screenshot
from tests.integration.conftest import WorkerProcess
from tests.integration.order_stream import PAIRS, feed, make_stream, prepare_market

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(browser, base: str, username: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/backoffice/login/?next=/control/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    return page


def row(page, pair: str):
    return page.locator(f"#pairs tr[data-pair={pair}]")


def confirm(page, action: str, pair: str | None = None, **fields: str):
    (row(page, pair).locator(f"button[data-action={action}]") if pair else page.locator("#emergency-stop")).click()
    dialog = page.locator("#confirm")
    playwright.expect(dialog).to_be_visible()
    for name, value in fields.items():
        field = dialog.locator(f"[name={name}]")
        field.select_option(value) if name == "preset" else field.fill(value)
    text = page.locator("#confirm-text").inner_text()
    page.click("#confirm-button")
    return text


def test_an_operator_steers_a_migration_live(server, browser):
    users = prepare_market()
    User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    worker = WorkerProcess()
    worker.env = {"MATCHING_ADAPTIVE_BOOK": "tests.matching.faulty_books:WrongFillsBook"}
    worker.start()
    worker.wait_ready()
    page = logged_in(browser, server, "operator")
    expect = playwright.expect
    try:
        expect(page.locator("#connection")).to_have_text("live")
        expect(row(page, "BTCUSDT").locator("td.current")).to_have_text("0%")

        said = confirm(page, "start", "BTCUSDT", preset="testing", target="50")
        assert "Start migrating BTCUSDT" in said
        expect(page.locator("#result")).to_contain_text("BTCUSDT: running")
        # The worker applies the start: the applied percentage moves without a reload.
        expect(row(page, "BTCUSDT").locator("td.mode")).to_have_text("migrating", timeout=20_000)
        expect(row(page, "BTCUSDT").locator("td.current")).not_to_have_text("0%")
        expect(page.locator("#result a")).to_contain_text("audit entry")

        # Orders flow; the faulty adaptive book diverges, its breaker opens, the charts fill.
        stream = make_stream(3_000, seed=31)
        feeder = threading.Thread(target=lambda: (feed(stream, users, chunk=200, pause=0.1), connection.close()))
        feeder.start()
        page.select_option("#chart-pair", "BTCUSDT")
        expect(page.locator("#chart-latency")).not_to_have_attribute("data-points", "0", timeout=30_000)
        expect(row(page, "BTCUSDT").locator("td.breaker")).not_to_have_text("closed (0)", timeout=30_000)
        feeder.join()
        screenshot(page, "migration-control")

        confirm(page, "reset", "BTCUSDT")
        expect(page.locator("#result")).to_contain_text("breaker reset sent")
        expect(row(page, "BTCUSDT").locator("td.breaker")).to_contain_text("closed", timeout=20_000)

        page.goto(f"{server}/control/BTCUSDT/")
        expect(page.locator("#pair-status")).to_contain_text("migrating")
        expect(page.locator(".divergence").first).to_contain_text("Legacy book (stood)")
        expect(page.locator("#timeline li").first).to_contain_text("reset_breaker")
        screenshot(page, "pair-page")
        actions.pause("BTCUSDT", "operator:elsewhere")      # another operator, another screen: this one follows
        expect(page.locator("#timeline li").first).to_contain_text("pause")
        expect(page.locator("#timeline li").first).to_contain_text("operator:elsewhere")

        page.goto(f"{server}/control/")
        said = confirm(page, "emergency")
        assert "every pair not on the legacy book alone goes back to it" in said
        expect(page.locator("#result")).to_contain_text("Emergency stop: BTCUSDT")
        for pair in PAIRS:
            expect(row(page, pair).locator("td.current")).to_have_text("0%", timeout=20_000)
            expect(row(page, pair).locator("td.mode")).to_have_text("legacy_only")
        assert set(EngineState.objects.values_list("mode", "percentage")) == {("legacy_only", 0)}
    finally:
        screenshot(page, "last-state")
        worker.stop() if worker.running() else None
        release_database()


def test_every_other_action_from_the_dashboard(server, browser):
    prepare_market()
    operator = User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    operator.groups.add(Group.objects.get(name=OPERATORS))
    worker = WorkerProcess()
    worker.start()
    worker.wait_ready()
    page = logged_in(browser, server, "operator")
    expect = playwright.expect
    eth = row(page, "ETHUSDT")
    try:
        confirm(page, "start", "ETHUSDT", preset="conservative", target="100")
        expect(page.locator("#result")).to_contain_text("Refused (HTTP 400): target_percentage must be between 0 "
                                                        "and 50")
        confirm(page, "start", "ETHUSDT", preset="conservative", target="50")
        expect(eth.locator("td.mode")).to_have_text("migrating", timeout=20_000)
        expect(eth.locator("td.current")).to_have_text("5%")

        said = confirm(page, "percentage", "ETHUSDT", percentage="30")
        assert "Set the share of ETHUSDT's orders" in said
        expect(eth.locator("td.current")).to_have_text("30%", timeout=20_000)
        said = confirm(page, "step", "ETHUSDT")
        assert "from 30% to" in said
        expect(eth.locator("td.current")).not_to_have_text("30%", timeout=20_000)

        confirm(page, "pause", "ETHUSDT")
        expect(eth.locator("td.plan")).to_have_text("paused: paused by an operator")
        expect(page.locator("#result a")).to_contain_text("audit entry")
        confirm(page, "resume", "ETHUSDT")
        expect(eth.locator("td.plan")).to_have_text("running")

        page.locator("#pairs tr[data-pair=ETHUSDT] button[data-action=percentage]").click()
        page.locator("#confirm [name=percentage]").fill("60")
        page.click("#confirm-button")
        expect(page.locator("#result")).to_contain_text("Refused (HTTP 400): percentage must be between 0 and 50")

        said = confirm(page, "rollback", "ETHUSDT")
        assert "back to the legacy book at 0%" in said
        expect(eth.locator("td.mode")).to_have_text("legacy_only", timeout=20_000)
        expect(eth.locator("td.plan")).to_have_text("rolled_back")

        page.locator("#result a").click()               # the audit entry of the rollback, in the back office
        expect(page.locator("#content h1, #content h2").first).to_contain_text("audit")
        page.goto(f"{server}/backoffice/exchange/auditlog/?q=pair%3AETHUSDT")
        expect(page.locator("#result_list")).to_contain_text("migration_rollback")
        screenshot(page, "admin-audit")
    finally:
        worker.stop()
        release_database()


def test_a_trader_is_refused(server, browser):
    User.objects.create_user("trader", password=PASSWORD)
    page = logged_in(browser, server, "trader")

    page.goto(f"{server}/control/")

    playwright.expect(page.locator("#pairs")).to_have_count(0)
    assert "/backoffice/login/" in page.url
    page.goto(f"{server}/control/BTCUSDT/")
    assert "/backoffice/login/" in page.url
    release_database()
