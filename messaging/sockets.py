"""Which sockets a user has open, across all Daphne processes: a list of (opened at, channel
name) per user in the cache (Redis in production, shared by every process; memory in
development, where there is one process). A new socket beyond WS_MAX_SOCKETS_PER_USER
pushes the oldest out: the caller sends those a message over the channel layer, which
reaches a channel in any process, and they close themselves."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache


def _key(user_id: int) -> str:
    return f"ws-sockets:{user_id}"


def _ttl() -> int:
    # An entry a crashed process never removed is forgotten after the longest session.
    return int(settings.SESSION_MAX_LIFETIME.total_seconds())


def register(user_id: int, channel: str, now: float) -> list[str]:
    """Records CHANNEL as opened at NOW; the channels to close, oldest first. Not atomic: two
    sockets opened in the same instant may let the count over the limit until the next one
    opens (which evicts again); stale entries cost only a message to nobody."""
    limit = max(1, settings.WS_MAX_SOCKETS_PER_USER)
    entries = [
        (float(opened), str(name))
        for opened, name in cache.get(_key(user_id), [])
        if name != channel
    ]
    entries.append((now, channel))
    entries.sort()
    cache.set(_key(user_id), entries[-limit:], timeout=_ttl())
    return [name for _opened, name in entries[:-limit]]


def unregister(user_id: int, channel: str) -> None:
    entries = cache.get(_key(user_id), [])
    kept = [(opened, name) for opened, name in entries if name != channel]
    if len(kept) != len(entries):
        cache.set(_key(user_id), kept, timeout=_ttl())
