"""The public market page in a real browser: it follows orders placed through the API, live: the ladder shows
the new levels, the tape the trade, the sequence moves on and the book's checksum matches the server's."""
import pytest
import requests
from django.contrib.auth.models import User
from playwright import sync_api as playwright
from rest_framework.authtoken.models import Token

from tests.browser.conftest import release_database, screenshot
from tests.integration.conftest import WorkerProcess
from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)


def place(server: str, token: str, side: str, price: str, quantity: str) -> dict:
    answer = requests.post(f"{server}/api/orders/?wait=5000", json={"pair": "BTCUSDT", "side": side, "price": price,
                                                                   "quantity": quantity},
                           headers={"Authorization": f"Token {token}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_the_market_page_follows_orders_placed_through_the_api(server, browser):
    prepare_market()
    maker, taker = (Token.objects.create(user=User.objects.create_user(name)).key for name in ("maker", "taker"))
    worker = WorkerProcess()
    worker.start()
    worker.wait_ready()
    expect = playwright.expect
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{server}/market/BTCUSDT/")
        expect(page.locator("#connection")).to_have_text("live")
        first_sequence = page.locator("#sequence").inner_text()

        place(server, maker, "sell", "50100.00", "0.250")
        place(server, maker, "buy", "49900.00", "0.500")
        expect(page.locator("#asks")).to_contain_text("50100")
        expect(page.locator("#bids")).to_contain_text("49900")
        expect(page.locator("#checksum")).to_have_text("checksum ok")

        place(server, taker, "buy", "50100.00", "0.100")
        expect(page.locator("#tape tbody tr").first).to_contain_text("50100")
        expect(page.locator("#tape tbody tr").first).to_contain_text("0.1")
        expect(page.locator("#asks")).to_contain_text("0.15")
        expect(page.locator("#checksum")).to_have_text("checksum ok")
        assert int(page.locator("#sequence").inner_text()) > int(first_sequence)
        expect(page.locator("#depth-chart")).not_to_have_attribute("data-levels", "0")
        for step in range(1, 6):                 # a deeper book for the picture
            place(server, maker, "sell", f"{50100 + 25 * step}.00", f"0.{step}00")
            place(server, maker, "buy", f"{49900 - 25 * step}.00", f"0.{6 - step}00")
        expect(page.locator("#depth-chart")).to_have_attribute("data-levels", "12")
        expect(page.locator("#checksum")).to_have_text("checksum ok")
        screenshot(page, "market-page")
    finally:
        worker.stop()
        release_database()
