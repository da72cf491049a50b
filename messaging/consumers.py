"""The one WebSocket of a browser tab (/ws/): a thin layer over messaging.access and
messaging.actions. Protocol (JSON text frames, DESIGN.md "Real time"):

    → {"type": "message.send", "thread": id, "client_id": uuid, "body": text,
       "reply_to": id of the quoted message (optional)}
    ← {"type": "message.ack", "client_id": uuid, "message": {...}}   to the sender
    ← {"type": "message.new", "message": {...}}    to every reader's sockets but the sender's
    → {"type": "message.edit", "message": id, "body": text}  /  {"type": "message.delete", ...}
    ← {"type": "message.updated", "message": {...}}
    → {"type": "read", "thread": id, "seq": n}      ← {"type": "read.updated", ...} to the
                        reader's other sockets and the authors of the messages now read
    → {"type": "typing", "thread": id}              ← {"type": "typing", ...}
    → {"type": "sync", "thread": id, "after": n}    ← {"type": "sync.result", "thread": id,
                                                        "messages": [...], "markers": {...}}
    ← {"type": "counts.changed"}                    the user's counts may have changed
    → {"type": "counts", "queue": bool}             ← {"type": "counts", "notifications": n,
                                                        "badges": {...}, "queue": {...}}
    ← {"type": "error", "code": ..., "message": ..., "ref": client id or thread,
       "client_id": the refused message.send's client id, "retry_after": seconds (rate_limited)}
    ← {"type": "access.revoked", "thread": id}

Every message sent carries "html" besides its fields: its list item rendered for this
socket's user by the page's own template (messaging.rendering), so that a live message
offers the same actions as after a reload. Bad input gets an error frame and changes
nothing; the socket stays open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeGuard, TypeVar
from uuid import UUID

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import connections
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit.context import bind
from dienstweg import clock, events, sessions, worklist
from dienstweg.actions import ActionError
from dienstweg.events import session_tag, staff_group
from dienstweg.middleware import SessionLifetimeMiddleware, chosen_language
from dienstweg.models import StaffSession, User
from dienstweg.security import client_address
from messaging import actions, sockets
from messaging.access import (
    access_message_by_id,
    access_thread_by_id,
    loaded_message,
    may_use_thread,
    message_seen_by,
    refuse_thread,
)
from messaging.kept import RECENT, Echoes, ThreadRows
from messaging.models import Thread
from messaging.rendering import message_html

logger = logging.getLogger(__name__)

# Closing codes the page understands: 4401 sign in again (no reconnect).
CLOSE_UNAUTHENTICATED = 4401
# ... and 4409: closed because the user opened more sockets (tabs) than allowed; this one was
# the oldest (messaging/sockets.py). The page does not reconnect either.
CLOSE_SUPERSEDED = 4409
SESSION_CHECK_SECONDS = 30
# Frames of one socket waiting for their turn; more are refused (the client floods).
QUEUED_FRAMES = 32

T = TypeVar("T")


# The worker threads of the frames and deliveries: the process's connection pool lends 10
# connections (config/settings.py), one of them to the thread that Channels' middleware
# and the pages share, the rest to these and a spare. The event loop's default
# executor has min(32, CPUs + 4) threads, 6 here: with each frame waiting on a few round
# trips, frames queued behind them at 20 messages/s with five readers (bench/step4.py).
FRAME_THREADS = 8
_frame_threads = ThreadPoolExecutor(max_workers=FRAME_THREADS, thread_name_prefix="ws-frame")


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a frame's database work on a worker thread: with Channels' default every socket
    of the process would queue for one shared thread (bench/step4.py). The events its
    writes committed are sent from here, in order, once it is done (events.held)."""
    committed: events.Held = []
    work = asyncio.ensure_future(
        database_sync_to_async(_closing, thread_sensitive=False, executor=_frame_threads)(
            committed, function, *args
        )
    )
    try:
        # Shielded: a socket closed meanwhile cancels its wait, not the work, which may
        # still commit; its events go out all the same, and in full.
        return await asyncio.shield(work)
    finally:
        if work.done():
            if committed:
                await asyncio.shield(_sending(committed))
        else:
            work.add_done_callback(lambda done: _send_after(done, committed))


# Sends under way, held here so that the loop does not drop them unfinished.
_sends: set[asyncio.Task[None]] = set()


def _sending(committed: events.Held) -> asyncio.Task[None]:
    task = asyncio.ensure_future(events.send_held(committed))
    _sends.add(task)
    task.add_done_callback(_sends.discard)
    return task


def _send_after(work: asyncio.Future[Any], committed: events.Held) -> None:
    """The events of a frame whose socket stopped waiting for it, sent once it is done."""
    if not work.cancelled():
        work.exception()  # nobody is left to be told of it
    if committed:
        _sending(committed)


def _closing(committed: events.Held, function: Callable[..., T], *args: Any) -> T:
    try:
        with events.held(committed):
            return function(*args)
    finally:
        # Back to the pool: the worker thread outlives this frame.
        connections.close_all()


# Frames per user and window, counted in this process: no round trip per frame.
_frames: dict[int, tuple[int, int]] = {}


def over_rate(user_id: int, now: float) -> bool:
    window = int(now // settings.WS_RATE_WINDOW_SECONDS)
    seen, count = _frames.get(user_id, (window, 0))
    count = count + 1 if seen == window else 1
    _frames[user_id] = (window, count)
    if len(_frames) > 10_000:  # forget the users of past windows
        for key in [key for key, (past, _count) in _frames.items() if past != window]:
            del _frames[key]
    return count > settings.WS_RATE_FRAMES


def retry_after(now: float) -> int:
    """Whole seconds until the rate window that NOW is in has passed (at least 1): the page
    resends then on the same socket."""
    window = settings.WS_RATE_WINDOW_SECONDS
    return max(1, math.ceil(window - now % window))


class FrameError(Exception):
    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def _too_many(seconds: int) -> FrameError:
    return FrameError(
        "rate_limited", _("Zu viele Anfragen. Bitte kurz warten."), retry_after=seconds
    )


class StaffConsumer(AsyncWebsocketConsumer):
    user: User
    followed: set[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_verified():
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        # The person's language, as her pages have it, for all this socket renders and
        # says: set in the socket's own context, which its worker task and threads copy.
        translation.activate(chosen_language(self.scope.get("cookies", {})))
        self.session: SessionBase = self.scope["session"]
        self.session_tag = session_tag(self.session.session_key or "")
        self.session_checked = clock.monotonic()
        # The session's lifetimes hold on the socket too (SessionLifetimeMiddleware):
        # frames count as activity, events arriving do not.
        self.lifetime = await in_thread(_lifetime, self.session)
        if self.lifetime.expired(clock.now()):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.followed = set()
        # The rows of the threads this socket uses, dropped on access.revoked: never a
        # right, every frame and delivery asks the rules (messaging/kept.py).
        self.rows = ThreadRows()
        self.echoes = Echoes()
        # For the audit events of this socket's frames, as RequestContextMiddleware does.
        self.socket_id = uuid.uuid4().hex[:12]
        self.frame_count = 0
        self.client_ip = _client_ip(self.scope)
        # The frames are handled in order by a task of their own, so that events for this
        # socket (other people's messages) are delivered while a frame waits on the database.
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUED_FRAMES)
        self.worker = asyncio.create_task(self._work())
        await self.channel_layer.group_add(staff_group(user.pk), self.channel_name)
        await self.accept()
        self.registered = True
        superseded = await in_thread(sockets.register, user.pk, self.channel_name, clock.now())
        for channel in superseded:
            await self.channel_layer.send(channel, {"type": "superseded"})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "worker"):
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
        if hasattr(self, "user"):
            await self.channel_layer.group_discard(staff_group(self.user.pk), self.channel_name)
        if getattr(self, "registered", False):
            await in_thread(sockets.unregister, self.user.pk, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes the process's "old" database connections before every event it
        # dispatches, by a hop to its one shared thread: 36 hops for a message with its five
        # readers and their read frames (bench/step4.py). This consumer holds no connection
        # between events: each frame's database work runs in in_thread, which returns its
        # connection to the pool when done.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # Frames from the browser

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame: dict[str, Any] = {}
        try:
            frame = self._parse(text_data)
            now = clock.now()
            if over_rate(self.user.pk, now):
                raise _too_many(retry_after(now))
            try:
                self.frames.put_nowait(frame)
            except asyncio.QueueFull:
                raise _too_many(1) from None
        except FrameError as error:
            await self._error(frame, error)

    def _parse(self, text_data: str | None) -> dict[str, Any]:
        if text_data is None or len(text_data) > settings.WS_MAX_FRAME_CHARS:
            raise FrameError("too_large", _("Die Nachricht ist zu groß."))
        try:
            # Deep nesting ("[[[[...") under the size limit exhausts the decoder's stack
            # (RecursionError); a number of more than 4300 digits is a ValueError.
            frame = json.loads(text_data)
        except (RecursionError, ValueError, TypeError):
            raise FrameError("malformed", _("Unlesbare Anfrage.")) from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        if frame["type"] not in HANDLERS:
            raise FrameError("unknown_type", _("Unbekannte Anfrage."))
        return frame

    async def _work(self) -> None:
        while True:
            frame = await self.frames.get()
            try:
                if not await self._session_alive(activity=True):
                    await self.close(code=CLOSE_UNAUTHENTICATED)
                    return
                self.frame_count += 1
                request_id = f"ws-{self.socket_id}-{self.frame_count}"
                with bind(request_id=request_id, ip=self.client_ip):
                    await HANDLERS[frame["type"]](self, frame)
            except FrameError as error:
                await self._error(frame, error)
            except Exception:
                # A fault of ours (the database gone, a bug) must not end this socket's
                # frame handling; the frame type only, never its content, goes to the log.
                logger.exception("WebSocket frame %s failed", frame["type"])
                await self._error(
                    frame, FrameError("internal", _("Das hat nicht geklappt. Bitte erneut."))
                )

    async def _error(self, frame: dict[str, Any], error: FrameError) -> None:
        # Only a short string is echoed back: a nested value could not be encoded again.
        ref = next(
            (
                value
                for value in (frame.get("client_id"), frame.get("thread"))
                if isinstance(value, str) and value and len(value) <= 100
            ),
            None,
        )
        event: dict[str, Any] = {
            "type": "error",
            "code": error.code,
            "message": error.message,
            "ref": ref,
        }
        # The page keeps a message's text in its box until this id is acknowledged or
        # refused: it matches on the id, never on the text.
        if frame.get("type") == "message.send":
            event["client_id"] = (
                str(client_id) if (client_id := _uuid(frame.get("client_id"))) else None
            )
        if error.retry_after is not None:
            event["retry_after"] = error.retry_after
        await self._send(event)

    async def _session_alive(self, *, activity: bool = False) -> bool:
        """Whether the session still exists and has neither been idle nor lasted too long;
        asks the database every SESSION_CHECK_SECONDS, or when the lifetimes seem over
        (another tab may have been active). A frame is activity, as a request is."""
        now = clock.now()
        due = clock.monotonic() - self.session_checked >= SESSION_CHECK_SECONDS
        if due or self.lifetime.expired(now) or (activity and self.lifetime.touch_due(now)):
            self.session_checked = clock.monotonic()
            lifetime = await in_thread(
                _check_session, self.session, self.user.pk, now if activity else None, self.lifetime
            )
            if lifetime is None:
                return False
            self.lifetime = lifetime
        elif activity:
            self.lifetime = self.lifetime.seen_at(now)
        return not self.lifetime.expired(now)

    async def _send(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def on_send(self, frame: dict[str, Any]) -> None:
        body, client_id = frame.get("body"), _uuid(frame.get("client_id"))
        reply_to = _uuid(frame.get("reply_to"))
        if not isinstance(body, str) or client_id is None:
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        if frame.get("reply_to") not in (None, "") and reply_to is None:
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        thread_id = _thread_id(frame)
        message = await in_thread(
            _post, self.user, thread_id, body, client_id, reply_to, self.rows, self.echoes
        )
        self.followed.add(thread_id)
        await self._send({"type": "message.ack", "client_id": str(client_id), "message": message})

    async def on_change(self, frame: dict[str, Any]) -> None:
        message_id, body = _uuid(frame.get("message")), frame.get("body")
        editing = frame["type"] == "message.edit"
        if message_id is None or (editing and not isinstance(body, str)):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        await in_thread(_change, self.user, message_id, body if editing else None)

    async def on_read(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if not _counter(seq):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        thread_id = _thread_id(frame)
        if (known := _uuid(thread_id)) is not None:
            # Before the work, which sends the event: live.js has moved its own marker.
            self.echoes.reported(str(known), seq)
        await in_thread(_read, self.user, thread_id, seq, self.rows)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        await in_thread(_typing, self.user, _thread_id(frame), self.rows)

    async def on_counts(self, frame: dict[str, Any]) -> None:
        """The user's numbers for the navigation (and with "queue", the start page's
        sections): numbers only (dienstweg/worklist.py). The page asks after an event that
        may change them, once for a burst of them."""
        queue = frame.get("queue", False)
        if not isinstance(queue, bool):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        counts = await in_thread(worklist.counts_of, self.user, queue)
        await self._send(dict(counts))

    async def on_sync(self, frame: dict[str, Any]) -> None:
        after = frame.get("after", 0)
        if not _counter(after):
            raise FrameError("malformed", _("Unlesbare Anfrage."))
        thread_id = _thread_id(frame)
        messages, markers, labels = await in_thread(_sync, self.user, thread_id, after, self.rows)
        self.followed.add(thread_id)
        await self._send(
            {
                "type": "sync.result",
                "thread": thread_id,
                "messages": messages,
                "more": len(messages) == actions.SYNC_LIMIT,
                "markers": {str(user): seq for user, seq in markers.items()},
                "labels": {str(user): label for user, label in labels.items()},
            }
        )

    # Events from the channel layer (dienstweg.events.publish)

    async def deliver(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if not await self._session_alive():
            await self.close(code=CLOSE_UNAUTHENTICATED)
        elif self.echoes.shown(event, me=self.user.pk):
            return  # the tab shows it already: its own message or its own read marker
        elif event["type"] == "session.ended":
            if event["session"] in ("*", self.session_tag):
                await self.close(code=CLOSE_UNAUTHENTICATED)
        elif event["type"] == "access.revoked":
            self.rows.drop_all()
            await self._recheck()
        elif event["type"] in ("message.new", "message.updated"):
            # The event names the message only: its text is read here, for this user, and
            # only if she may still read the thread.
            shown = await in_thread(
                _readable, self.user, event["message"], self.rows, event["type"] == "message.new"
            )
            if shown is not None:
                await self._send({"type": event["type"], "message": shown})
        else:
            await self._send(event)

    async def superseded(self, message: dict[str, Any]) -> None:
        """The user opened a socket beyond WS_MAX_SOCKETS_PER_USER; this one is the oldest."""
        await self.close(code=CLOSE_SUPERSEDED)

    async def _recheck(self) -> None:
        lost = await in_thread(_lost_threads, self.user, sorted(self.followed))
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
    "counts": StaffConsumer.on_counts,
}


def _client_ip(scope: dict[str, Any]) -> str:
    remote = (scope.get("client") or ["", 0])[0] or ""
    headers = dict(scope.get("headers") or [])
    return client_address(remote, headers.get(b"x-forwarded-for", b"").decode("latin-1"))


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _counter(value: Any) -> TypeGuard[int]:
    """A message number: an int (not a bool) that fits the database's bigint."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _thread_id(frame: dict[str, Any]) -> str:
    thread_id = frame.get("thread")
    if not isinstance(thread_id, str):
        raise FrameError("malformed", _("Unlesbare Anfrage."))
    return thread_id


# The database work of each frame, in one call (one thread hop, one pooled connection).


def _thread(user: User, thread_id: str, rows: ThreadRows | None = None) -> Thread:
    try:
        thread = access_thread_by_id(user, thread_id, rows.row(thread_id) if rows else None)
    except Http404:
        raise FrameError("unknown_thread", _("Diese Unterhaltung gibt es nicht.")) from None
    if rows is not None:
        rows.keep(thread)
    return thread


class Shown(actions.MessagePayload):
    html: str  # the list item for this socket's user (messaging/messages.html)


def _shown(message: actions.MessagePayload, user: User) -> Shown:
    return Shown(**message, html=message_html(message, me=user.pk))


def _post(
    user: User,
    thread_id: str,
    body: str,
    client_id: UUID,
    reply_to: UUID | None,
    rows: ThreadRows | None = None,
    echoes: Echoes | None = None,
) -> Shown:
    # post_message checks the access rules under the thread's lock: checking them before
    # as well would cost the hottest path of the socket more queries.
    thread = (rows or ThreadRows()).row(thread_id)

    def stored(payload: actions.MessagePayload) -> None:
        RECENT.put(payload)
        if echoes is not None:
            echoes.posted(payload["id"])

    try:
        if thread is None:
            raise actions.NoAccess("")
        # Kept before the readers are told, so that their sockets in this process find it
        # (put after post_message returned, the readers' deliveries often came first).
        posted = actions.post_message(
            thread,
            body=body,
            client_id=client_id,
            reply_to=reply_to,
            by=user,
            on_stored=stored,
        )
        if rows is not None:
            rows.keep(thread)
        return _shown(posted.payload, user)
    except actions.NoAccess:
        refuse_thread(user, thread)
        raise FrameError("unknown_thread", _("Diese Unterhaltung gibt es nicht.")) from None
    except ActionError as error:
        raise FrameError("refused", str(error)) from None


def _readable(
    user: User, message_id: str, rows: ThreadRows | None = None, new: bool = False
) -> Shown | None:
    """The message for this user if she may read its thread now (one query when it was
    posted in this process and is unchanged: NEW, a message.new event), else None."""
    seen = message_seen_by(user, message_id)
    if seen is None:
        return None
    if new and seen.unchanged and (kept := RECENT.shown(message_id, me=user.pk)) is not None:
        payload, html = kept
        return Shown(**payload, html=html)
    rows = rows or ThreadRows()
    thread = rows.row(str(seen.thread_id))
    if thread is None:
        return None
    rows.keep(thread)
    message = loaded_message(message_id, thread)
    return None if message is None else _shown(actions.payload(message), user)


def _change(user: User, message_id: UUID, body: str | None) -> None:
    try:
        message = access_message_by_id(user, message_id)
    except Http404:
        raise FrameError("unknown_message", _("Diese Nachricht gibt es nicht.")) from None
    try:
        if body is None:
            actions.delete_message(message, by=user)
        else:
            actions.edit_message(message, body=body, by=user)
    except ActionError as error:
        raise FrameError("refused", str(error)) from None


def _read(user: User, thread_id: str, seq: int, rows: ThreadRows | None = None) -> None:
    actions.mark_read(_thread(user, thread_id, rows), seq=seq, by=user)


def _typing(user: User, thread_id: str, rows: ThreadRows | None = None) -> None:
    actions.announce_typing(_thread(user, thread_id, rows), by=user)


def _sync(
    user: User, thread_id: str, after: int, rows: ThreadRows | None = None
) -> tuple[list[Shown], dict[int, int], dict[int, str]]:
    thread = _thread(user, thread_id, rows)
    return (
        [_shown(m, user) for m in actions.messages_after(thread, after=after, by=user)],
        actions.read_markers(thread),
        actions.reader_labels(thread),
    )


def _lost_threads(user: User, thread_ids: list[str]) -> list[str]:
    user.refresh_from_db(fields=["is_active"])
    threads = Thread.objects.filter(pk__in=thread_ids).select_related(
        "referral", "application_tag__family"
    )
    still = {str(t.pk) for t in threads if may_use_thread(user, t)}
    return [thread_id for thread_id in thread_ids if thread_id not in still]


@dataclass(frozen=True)
class Lifetime:
    started: float
    seen: float
    touched: float  # when SEEN was last written to the session

    def expired(self, now: float) -> bool:
        return sessions.lifetime_over(started=self.started, seen=self.seen, now=now)

    def touch_due(self, now: float) -> bool:
        return now - self.touched > SessionLifetimeMiddleware.TOUCH_INTERVAL

    def seen_at(self, now: float) -> Lifetime:
        return replace(self, seen=max(self.seen, now))


def _lifetime(session: SessionBase, known: Lifetime | None = None) -> Lifetime:
    # A session logged in by other means than the login page has no times yet: it starts
    # when the socket first sees it, as the middleware has it.
    now = clock.now()
    started = float(session.get(sessions.STARTED) or (known.started if known else now))
    seen = float(session.get(sessions.SEEN) or (known.seen if known else started))
    return Lifetime(started, seen, seen)


def _check_session(
    session: SessionBase, user_id: int, activity: float | None, known: Lifetime
) -> Lifetime | None:
    """The session as stored now (None if it ended or its account was deactivated); with
    ACTIVITY, its last-seen time moves there, as a request would move it."""
    alive = StaffSession.objects.filter(
        session_key=session.session_key,
        user_id=user_id,
        user__is_active=True,
        expire_date__gt=timezone.now(),
    ).exists()
    if not alive:
        return None
    stored = session.__class__(session.session_key)
    lifetime = _lifetime(stored, known)
    if activity is not None and not lifetime.expired(activity):
        stored[sessions.SEEN] = activity
        stored.save()
        lifetime = Lifetime(lifetime.started, activity, activity)
    return lifetime
