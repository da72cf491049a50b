"""The one WebSocket of a browser tab (/ws/): a thin layer over messaging.access and
messaging.actions. Protocol (JSON text frames, DESIGN.md "Real time"):

    → {"type": "message.send", "thread": id, "client_id": uuid, "body": text}
    ← {"type": "message.ack", "client_id": uuid, "message": {...}}   to the sender
    ← {"type": "message.new", "message": {...}}                       to every reader
    → {"type": "message.edit", "message": id, "body": text}  /  {"type": "message.delete", ...}
    ← {"type": "message.updated", "message": {...}}
    → {"type": "read", "thread": id, "seq": n}      ← {"type": "read.updated", ...}
    → {"type": "typing", "thread": id}              ← {"type": "typing", ...}
    → {"type": "sync", "thread": id, "after": n}    ← {"type": "sync.result", "thread": id,
                                                        "messages": [...], "markers": {...}}
    ← {"type": "error", "code": ..., "message": ..., "ref": client id or thread}
    ← {"type": "access.revoked", "thread": id}

Bad input gets an error frame and changes nothing; the socket stays open."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from dienstweg.actions import ActionError
from dienstweg.events import session_tag, staff_group
from dienstweg.models import StaffSession, User
from messaging import actions
from messaging.access import access_thread_by_id, may_use_thread
from messaging.models import Message, Thread

# Closing codes the page understands: 4401 sign in again (no reconnect).
CLOSE_UNAUTHENTICATED = 4401
SESSION_CHECK_SECONDS = 30


class FrameError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StaffConsumer(AsyncWebsocketConsumer):
    user: User
    followed: set[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_verified():
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.session: SessionBase = self.scope["session"]
        self.session_tag = session_tag(self.session.session_key or "")
        self.session_checked = time.monotonic()
        self.followed = set()
        await self.channel_layer.group_add(staff_group(user.pk), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user"):
            await self.channel_layer.group_discard(staff_group(self.user.pk), self.channel_name)

    # Frames from the browser

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        ref = None
        try:
            frame = self._parse(text_data, bytes_data)
            ref = frame.get("client_id") or frame.get("thread")
            await self._check_rate()
            if not await self._session_alive():
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            handler = HANDLERS.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", _("Unbekannte Anfrage."))
            await handler(self, frame)
        except FrameError as error:
            await self._send(
                {"type": "error", "code": error.code, "message": error.message, "ref": ref}
            )

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        if text_data is None or len(text_data) > settings.WS_MAX_FRAME_CHARS:
            raise FrameError("too_large", _("Die Nachricht ist zu groß."))
        try:
            frame = json.loads(text_data)
        except ValueError:
            raise FrameError("malformed", _("Unlesbare Anfrage.")) from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        return frame

    async def _check_rate(self) -> None:
        # Per user over all her tabs, in a fixed window (the cache is Redis in production).
        window = settings.WS_RATE_WINDOW_SECONDS
        key = f"ws-frames:{self.user.pk}:{int(time.time() // window)}"
        if await cache.aadd(key, 1, timeout=window * 2):
            return
        try:
            count = await cache.aincr(key)
        except ValueError:
            return
        if count > settings.WS_RATE_FRAMES:
            raise FrameError("rate_limited", _("Zu viele Anfragen. Bitte kurz warten."))

    async def _session_alive(self) -> bool:
        if time.monotonic() - self.session_checked < SESSION_CHECK_SECONDS:
            return True
        self.session_checked = time.monotonic()
        return await database_sync_to_async(_session_alive)(self.session.session_key, self.user.pk)

    async def _send(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def _thread(self, frame: dict[str, Any]) -> Thread:
        thread_id = frame.get("thread")
        if not isinstance(thread_id, str):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        try:
            return await database_sync_to_async(access_thread_by_id)(self.user, thread_id)
        except Http404:
            raise FrameError("unknown_thread", _("Diese Unterhaltung gibt es nicht.")) from None

    async def on_send(self, frame: dict[str, Any]) -> None:
        body, client_id = frame.get("body"), _uuid(frame.get("client_id"))
        if not isinstance(body, str) or client_id is None:
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        thread = await self._thread(frame)
        posted = await database_sync_to_async(_call)(
            actions.post_message, thread, body=body, client_id=client_id, by=self.user
        )
        self.followed.add(str(thread.pk))
        message = await database_sync_to_async(actions.payload)(posted.message)
        await self._send({"type": "message.ack", "client_id": str(client_id), "message": message})

    async def on_change(self, frame: dict[str, Any]) -> None:
        message_id = _uuid(frame.get("message"))
        if message_id is None:
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        message = await database_sync_to_async(_own_message)(self.user, message_id)
        if frame["type"] == "message.edit":
            body = frame.get("body")
            if not isinstance(body, str):
                raise FrameError("malformed", _("Unlesbare Anfrage."))
            await database_sync_to_async(_call)(
                actions.edit_message, message, body=body, by=self.user
            )
        else:
            await database_sync_to_async(_call)(actions.delete_message, message, by=self.user)

    async def on_read(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if not isinstance(seq, int):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        thread = await self._thread(frame)
        await database_sync_to_async(actions.mark_read)(thread, seq=seq, by=self.user)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        thread = await self._thread(frame)
        await database_sync_to_async(actions.announce_typing)(thread, by=self.user)

    async def on_sync(self, frame: dict[str, Any]) -> None:
        after = frame.get("after", 0)
        if not isinstance(after, int):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        thread = await self._thread(frame)
        self.followed.add(str(thread.pk))
        messages = await database_sync_to_async(actions.messages_after)(
            thread, after=after, by=self.user
        )
        markers = await database_sync_to_async(actions.read_markers)(thread)
        await self._send(
            {
                "type": "sync.result",
                "thread": str(thread.pk),
                "messages": messages,
                "more": len(messages) == actions.SYNC_LIMIT,
                "markers": {str(user): seq for user, seq in markers.items()},
            }
        )

    # Events from the channel layer (dienstweg.events.publish)

    async def deliver(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event["type"] == "session.ended":
            if event["session"] in ("*", self.session_tag):
                await self.close(code=CLOSE_UNAUTHENTICATED)
        elif event["type"] == "access.revoked":
            await self._recheck()
        else:
            await self._send(event)

    async def _recheck(self) -> None:
        lost = await database_sync_to_async(_lost_threads)(self.user, sorted(self.followed))
        for thread_id in lost:
            self.followed.discard(thread_id)
            await self._send({"type": "access.revoked", "thread": thread_id})


HANDLERS = {
    "message.send": StaffConsumer.on_send,
    "message.edit": StaffConsumer.on_change,
    "message.delete": StaffConsumer.on_change,
    "read": StaffConsumer.on_read,
    "typing": StaffConsumer.on_typing,
    "sync": StaffConsumer.on_sync,
}


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _call(action: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return action(*args, **kwargs)
    except ActionError as error:
        raise FrameError("refused", str(error)) from None


def _own_message(user: User, message_id: UUID) -> Message:
    message = Message.objects.filter(pk=message_id, author=user).select_related("thread").first()
    if message is None or not may_use_thread(user, message.thread):
        raise FrameError("unknown_message", _("Diese Nachricht gibt es nicht."))
    return message


def _lost_threads(user: User, thread_ids: list[str]) -> list[str]:
    user.refresh_from_db(fields=["is_active"])
    threads = Thread.objects.filter(pk__in=thread_ids).select_related(
        "referral", "application_tag__family"
    )
    still = {str(t.pk) for t in threads if may_use_thread(user, t)}
    return [thread_id for thread_id in thread_ids if thread_id not in still]


def _session_alive(session_key: str | None, user_id: int) -> bool:
    return StaffSession.objects.filter(
        session_key=session_key,
        user_id=user_id,
        user__is_active=True,
        expire_date__gt=timezone.now(),
    ).exists()
