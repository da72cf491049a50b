"""Real-time events to the users' open sockets (DESIGN.md, "Real time").

The caller names the recipients, computed from the database when it publishes (who may
see this now); each gets the event in her own group `staff.<id>`, so no per-thread group
can outlive a revoked right. Events leave only when the transaction commits: a rolled-back
write never reaches a socket. The channel layer is at-most-once; the sockets' `sync`
repairs what it drops."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


class SessionEnded(TypedDict):
    """The user's session(s) ended (logout, ended by her or an admin, deactivation):
    sockets of those sessions close."""

    type: Literal["session.ended"]
    session: str  # session_tag() of the ended session, or "*" for all of them


class AccessRevoked(TypedDict):
    """The user may see less than before (permission withdrawn, consent ended, membership
    removed): sockets re-check the threads they follow."""

    type: Literal["access.revoked"]


def staff_group(user_id: int) -> str:
    return f"staff.{user_id}"


def session_tag(session_key: str) -> str:
    """A short hash that names a session in events without revealing its key."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:24]


def publish(user_ids: Iterable[int | None], event: Any) -> None:
    """Send EVENT (a TypedDict with a `type`) to each user's sockets after commit."""
    recipients = sorted({user_id for user_id in user_ids if user_id is not None})
    if recipients:
        transaction.on_commit(lambda: send_now(recipients, event))


Held = list[tuple[list[int], Any]]
_holding = threading.local()


@contextmanager
def held(events: Held) -> Iterator[None]:
    """Inside, on this thread, the events of committed writes are kept in EVENTS instead of
    sent: for a socket's worker thread, whose event loop sends them afterwards (send_held).
    Sending from the thread blocked it on the loop for every event, holding its database
    connection meanwhile: at 20 messages/s with five readers a third of the socket's
    thread time went to that wait (py-spy, bench/step4.py)."""
    outer = getattr(_holding, "events", None)
    _holding.events = events
    try:
        yield
    finally:
        _holding.events = outer


def send_now(user_ids: list[int], event: Any) -> None:
    kept: Held | None = getattr(_holding, "events", None)
    if kept is not None:
        kept.append((user_ids, event))
        return
    try:
        async_to_sync(_send)(user_ids, event)
    except Exception:  # the write has committed; a lost event is repaired by sync
        logger.exception("real-time event %s not sent", event.get("type"))


async def send_held(events: Held) -> None:
    """Send the events held on a worker thread (held), in the order they were committed."""
    for user_ids, event in events:
        try:
            await _send(user_ids, event)
        except Exception:  # as send_now: committed, and sync repairs what is lost
            logger.exception("real-time event %s not sent", event.get("type"))


async def _send(user_ids: list[int], event: Any) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "deliver", "event": event}
    groups = [staff_group(pk) for pk in user_ids]
    if hasattr(layer, "group_send_many"):  # production's (config/channel_layer.py)
        await layer.group_send_many(groups, message)
    else:
        await asyncio.gather(*(layer.group_send(group, message) for group in groups))


def session_ended(user_id: int, session_key: str | None = None) -> None:
    """Close the sockets of one session of the user (or of all her sessions)."""
    tag = session_tag(session_key) if session_key else "*"
    publish([user_id], SessionEnded(type="session.ended", session=tag))


def access_revoked(user_ids: Iterable[int | None]) -> None:
    """Tell these users' sockets to re-check what they follow."""
    publish(user_ids, AccessRevoked(type="access.revoked"))
