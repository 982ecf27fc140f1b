"""Logins and the API are throttled: a user beyond their rate gets 429 with Retry-After, an address beyond the
anonymous rate too, and a username that failed its login 5 times from an address is locked out there."""
import pytest
from django.contrib.auth.models import User

from exchange.api.throttling import parse_rate
from exchange.stores import redis_client


@pytest.fixture
def fresh_counts():
    for key in redis_client().scan_iter("throttle:*"):
        redis_client().delete(key)


@pytest.mark.django_db
def test_a_user_beyond_their_rate_gets_429_with_a_retry_hint(api, btc, settings, fresh_counts):
    settings.API_RATE_USER = "3/min"

    answers = [api.get("/api/orders/") for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "throttled"
    assert 0 < int(answers[-1]["Retry-After"]) <= 60


@pytest.mark.django_db
def test_an_anonymous_address_beyond_its_rate_gets_429(anonymous_api, btc, settings, fresh_counts):
    settings.API_RATE_ANONYMOUS = "2/min"

    answers = [anonymous_api.get("/api/pairs/BTCUSDT/depth/").status_code for _ in range(3)]

    assert answers == [200, 200, 429]


@pytest.mark.django_db
def test_each_user_has_their_own_count(api, other_api, btc, settings, fresh_counts):
    settings.API_RATE_USER = "1/min"

    assert (api.get("/api/orders/").status_code, other_api.get("/api/orders/").status_code) == (200, 200)
    assert api.get("/api/orders/").status_code == 429


@pytest.mark.parametrize(("rate", "expected"), [("100/s", (100, 1)), ("6000/min", (6000, 60)),
                                                ("10/hour", (10, 3600))])
def test_rates_are_read_as_requests_per_period(rate, expected):
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["fast", "100", "100/fortnight", "-1/s"])
def test_a_rate_that_says_nothing_clear_is_refused(rate):
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(rate)


@pytest.mark.django_db
def test_a_login_that_failed_five_times_is_locked_out_even_with_the_right_password(client):
    User.objects.create_superuser("operator", "", "the-right-password")
    for _ in range(5):
        client.post("/backoffice/login/", {"username": "operator", "password": "a-guess"})

    response = client.post("/backoffice/login/", {"username": "operator", "password": "the-right-password"})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
