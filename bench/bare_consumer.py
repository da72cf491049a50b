"""The baseline of bench/step4.py: a bare Channels broadcast consumer, no auth, no database.

    daphne bench.bare_consumer:application   (REDIS_URL and BARE_SECRET set by step4.py)

A socket at /ws/<thread>/ joins the group of that thread; each message.send frame is
answered with message.ack and group_sent to the thread's group, whose members (the sender
too) each get message.new: the same frames, and about the same payload, as the real
consumer sends. A read frame is group_sent to the thread as read.updated. The channel
layer is the production one (channels_redis Pub/Sub with symmetric encryption),
configured here without a settings module.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {
                    "hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")],
                    "symmetric_encryption_keys": [os.environ.get("BARE_SECRET", "bare")],
                },
            }
        },
    )

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

# The messages of each thread numbered 1, 2, 3 ... as the platform numbers them (one
# process), so that each reader reports every message it shows read, as on the platform.
_last_seq: dict[str, int] = {}


class BroadcastConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.thread = str(self.scope["url_route"]["kwargs"]["thread"])
        self.group = f"thread.{self.thread}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        if frame.get("type") == "read":
            # As the platform tells the thread's readers of a marker moved.
            event = {"type": "read.updated", "thread": self.thread, "seq": frame.get("seq")}
            await self.channel_layer.group_send(self.group, {"type": "deliver", "event": event})
            return
        if frame.get("type") != "message.send":
            return
        seq = _last_seq[self.thread] = _last_seq.get(self.thread, 0) + 1
        message = {
            "id": str(uuid.uuid4()),
            "seq": seq,
            "thread": self.thread,
            "author": None,
            "author_name": "Bench",
            "body": frame.get("body", ""),
            "created_at": datetime.now(UTC).isoformat(),
            "edited": False,
            "deleted": False,
            "attachments": [],
        }
        await self.channel_layer.group_send(
            self.group, {"type": "deliver", "event": {"type": "message.new", "message": message}}
        )
        await self.send(
            text_data=json.dumps(
                {"type": "message.ack", "client_id": frame.get("client_id"), "message": message}
            )
        )

    async def deliver(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message["event"], ensure_ascii=False))


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/<uuid:thread>/", BroadcastConsumer.as_asgi())])}
)
