"""The control dashboard's websocket: staff get the snapshot at once and again when something changes; anyone
else is refused with close code 4403. The pages ship every script and style themselves (no CDN)."""
import asyncio
import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection

from migrations_admin import actions
from migrations_admin.consumers import NOT_STAFF, ControlConsumer

pytestmark = pytest.mark.django_db(transaction=True)


def close_connection() -> None:
    connection.close()      # resolved in the thread that runs it: the consumer's


async def talk(user, then=None, say=None) -> list:
    communicator = WebsocketCommunicator(ControlConsumer.as_asgi(), "/ws/control/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    if not connected:
        await database_sync_to_async(close_connection)()
        return [("refused", code)]
    received = [json.loads(await communicator.receive_from(timeout=10))]
    if say is not None:
        await communicator.send_to(text_data=say)
        received.append(json.loads(await communicator.receive_from(timeout=10)))
    if then is not None:
        await sync_to_async(then)()
        received.append(json.loads(await communicator.receive_from(timeout=10)))
    await communicator.disconnect()
    await database_sync_to_async(close_connection)()     # the consumer's thread's connection, not left to the end
    return received


def test_staff_get_the_snapshot_and_every_change(pairs, settings):
    settings.CONTROL_REFRESH_SECONDS = 1
    staff = User.objects.create_user("ops", is_staff=True)

    first, changed = asyncio.run(talk(staff, then=lambda: actions.start_migration("BTCUSDT", 50, "operator:ops")))

    assert first["type"] == "snapshot"
    assert [row["pair"] for row in first["pairs"]] == ["ADAUSDT", "BTCUSDT", "DOTUSDT", "ETHUSDT"]
    assert {"series", "audit"} <= set(first)
    btc = next(row for row in changed["pairs"] if row["pair"] == "BTCUSDT")
    assert (btc["state"], btc["requested_percentage"], btc["applied"]) == ("running", 10, False)
    assert changed["audit"][0]["action"] == "migration_start"


def test_watching_a_pair_adds_its_history(pairs):
    staff = User.objects.create_user("ops", is_staff=True)
    actions.start_migration("ETHUSDT", 50, "operator:ops")

    _, watched = asyncio.run(talk(staff, say='{"op": "watch", "pair": "ethusdt"}'))
    _, refused = asyncio.run(talk(staff, say='{"op": "dance"}'))

    assert watched["detail"]["pair"] == "ETHUSDT"
    assert [event["kind"] for event in watched["detail"]["events"]] == ["start"]
    assert watched["detail"]["divergences"] == []
    assert (refused["type"], refused["code"]) == ("error", "invalid_message")


@pytest.mark.parametrize("who", ["anonymous", "trader"])
def test_anyone_but_staff_is_refused(pairs, who):
    user = AnonymousUser() if who == "anonymous" else User.objects.create_user("trader")

    assert asyncio.run(talk(user)) == [("refused", NOT_STAFF)]


def test_the_screens_load_nothing_from_elsewhere(client, pairs):
    client.force_login(User.objects.create_user("ops", is_staff=True))
    for path in ("/control/", "/control/BTCUSDT/", "/market/BTCUSDT/"):
        page = client.get(path).content.decode()
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
        assert sources and all(source.startswith("/static/") for source in sources), (path, sources)
        assert client.get(sources[0]).status_code == 200
