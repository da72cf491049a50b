"""A bare ASGI app for test_slow_client.py, so the server test needs no login: it accepts any
WebSocket and answers a text frame naming a mode in MODES with that many 60 KB binary frames,
then "done"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

FRAME_SIZE = 60_000
# mode: (frames, seconds between two). Daphne's send never waits, so "burst" and "flood" fill
# its buffer as fast as the loop turns; "stream" paces 120 MB to about 50 MB/s.
MODES = {"burst": (200, 0.0), "flood": (2_000, 0.0), "stream": (2_000, 0.001)}

logger = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        raise ValueError(f"only WebSockets here, not {scope['type']}")
    payload = b"x" * FRAME_SIZE  # one object for every frame: the app itself holds 60 KB
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive" and event.get("text") in MODES:
            count, pause = MODES[event["text"]]
            for _ in range(count):
                await send({"type": "websocket.send", "bytes": payload})
                # Even without a pause, yield like a consumer between two events, so that
                # Twisted gets its turn to write to the socket.
                await asyncio.sleep(pause)
            await send({"type": "websocket.send", "text": "done"})
            logger.warning("sent %d frames of %d bytes", count, FRAME_SIZE)
        elif event["type"] == "websocket.disconnect":
            return
