"""The control dashboard's websocket, `ws/control/`, for staff only (their admin session): the snapshot of
`migrations_admin/control.py` on connect, then again whenever it has changed, looked at every
CONTROL_REFRESH_SECONDS. A handful of operators each cost a few queries a second; no reload is ever needed."""
import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections

from migrations_admin.control import snapshot

NOT_STAFF = 4403


@database_sync_to_async
def encoded_snapshot(pair: str | None) -> str:
    """Read as a request is: connections past their age closed before and after (the websocket server runs
    with DB_CONN_MAX_AGE=0, so nothing is held between looks)."""
    close_old_connections()
    try:
        return json.dumps({"type": "snapshot", **snapshot(pair)}, cls=DjangoJSONEncoder)
    finally:
        close_old_connections()


class ControlConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_active or not user.is_staff:
            await self.close(code=NOT_STAFF)
            return
        await self.accept()
        self.pair: str | None = None
        self.wake = asyncio.Event()
        self.sender = asyncio.ensure_future(self._send_changes())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """`{"op": "watch", "pair": "BTCUSDT"}`: the snapshots carry that pair's history too (its page)."""
        try:
            message = json.loads(text_data or "")
            pair = str(message["pair"]).upper() if message.get("op") == "watch" else None
        except (ValueError, KeyError, TypeError, AttributeError):
            pair = None
        if pair is None or not pair.isalnum():
            await self.send(text_data=json.dumps({"type": "error", "code": "invalid_message",
                                                  "message": 'send {"op": "watch", "pair": "<PAIR>"}'}))
            return
        self.pair = pair
        self.wake.set()

    async def disconnect(self, code: int) -> None:
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.cancel()

    async def _send_changes(self) -> None:
        last = None
        while True:
            current = await encoded_snapshot(self.pair)
            if current != last:
                await self.send(text_data=current)
                last = current
            self.wake.clear()
            try:      # the next look: after the refresh period, or at once when the client asks to watch a pair
                await asyncio.wait_for(self.wake.wait(), settings.CONTROL_REFRESH_SECONDS)
            except TimeoutError:
                pass
