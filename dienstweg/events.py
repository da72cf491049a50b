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
from collections.abc import Iterable
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


def send_now(user_ids: list[int], event: Any) -> None:
    try:
        async_to_sync(_send)(user_ids, event)
    except Exception:  # the write has committed; a lost event is repaired by sync
        logger.exception("real-time event %s not sent", event.get("type"))


async def _send(user_ids: list[int], event: Any) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "deliver", "event": event}
    await asyncio.gather(*(layer.group_send(staff_group(pk), message) for pk in user_ids))


def session_ended(user_id: int, session_key: str | None = None) -> None:
    """Close the sockets of one session of the user (or of all her sessions)."""
    tag = session_tag(session_key) if session_key else "*"
    publish([user_id], SessionEnded(type="session.ended", session=tag))


def access_revoked(user_ids: Iterable[int | None]) -> None:
    """Tell these users' sockets to re-check what they follow."""
    publish(user_ids, AccessRevoked(type="access.revoked"))
