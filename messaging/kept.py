"""What the sockets keep between frames, none of it a right: the rows of the threads a socket
uses (kind, subject, family and key: read once, not for every frame), and in each process
the payload of the messages posted there, so that the readers' sockets do not each load and
decrypt the same message again. Every frame and every delivery still asks the access rules
of the database (messaging.access) before anything is used; a socket drops its rows when
access.revoked arrives (messaging.consumers)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from django.utils import translation

from messaging.access import thread_by_id
from messaging.actions import MessagePayload
from messaging.models import Thread
from messaging.rendering import message_html

# A socket follows a few threads; one that asks for many starts over rather than grow.
MAX_ROWS = 200
# Messages of this process kept for their readers' sockets: the readers of a message are
# told within milliseconds, so a few hundred cover every message in flight, and none is
# kept longer than KEEP_SECONDS (no plaintext lingers in memory after an erasure).
MAX_PAYLOADS = 512
KEEP_SECONDS = 30.0


class ThreadRows:
    """The rows of the threads one socket uses. A row says which thread it is and how its
    messages are encrypted; whether the user may use it is asked each time."""

    def __init__(self) -> None:
        self._rows: dict[str, Thread] = {}

    def row(self, thread_id: str) -> Thread | None:
        """The kept row, else the row read now (None if there is no such thread); unchecked."""
        kept = self._rows.get(str(thread_id))
        return kept if kept is not None else thread_by_id(thread_id)

    def keep(self, thread: Thread) -> None:
        if len(self._rows) >= MAX_ROWS:
            self._rows.clear()
        self._rows[str(thread.pk)] = thread

    def drop_all(self) -> None:
        self._rows.clear()


class Echoes:
    """What one socket's tab already shows of its own doing: the messages it posted (their
    ack carried them) and the read markers it reported. The events of these go to all the
    user's sockets; this one needs neither back, and with five readers they were a fifth of
    its deliveries and read events (bench/step4.py). Not a right either: an event not
    skipped only repeats what the tab shows."""

    def __init__(self) -> None:
        self._posted: set[str] = set()  # added to from the socket's worker threads
        self._reported: dict[str, int] = {}

    def posted(self, message_id: str) -> None:
        if len(self._posted) >= MAX_ROWS:  # events lost on the way: start over
            self._posted.clear()
        self._posted.add(message_id)

    def reported(self, thread_id: str, seq: int) -> None:
        if len(self._reported) >= MAX_ROWS:
            self._reported.clear()
        self._reported[thread_id] = max(seq, self._reported.get(thread_id, 0))

    def shown(self, event: dict[str, Any], *, me: int) -> bool:
        """Whether EVENT only repeats what this socket's tab shows already."""
        if event["type"] == "message.new" and event["message"] in self._posted:
            self._posted.discard(event["message"])
            return True
        return (
            event["type"] == "read.updated"
            and event["user"] == me
            and event["seq"] <= self._reported.get(event["thread"], 0)
        )


class _Entry:
    __slots__ = ("at", "html", "payload")

    def __init__(self, payload: MessagePayload) -> None:
        self.payload = payload
        self.at = time.monotonic()
        self.html: dict[tuple[bool, str | None], str] = {}


class RecentMessages:
    """The payloads of messages posted in this process, as posted (each socket's worker
    threads share it). Only for a message unchanged since (no edit, no deletion), and only
    after the reader's right to its thread has been asked of the database."""

    def __init__(self, size: int = MAX_PAYLOADS) -> None:
        self._size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, payload: MessagePayload) -> None:
        with self._lock:
            self._entries[payload["id"]] = _Entry(payload)
            too_old = time.monotonic() - KEEP_SECONDS
            # Oldest first; the one just put is never too old, so the loop ends.
            while len(self._entries) > self._size or _oldest(self._entries).at < too_old:
                self._entries.popitem(last=False)

    def shown(self, message_id: str, *, me: int) -> tuple[MessagePayload, str] | None:
        """The payload and its list item for reader ME (rendered once per message for its
        author and once for everyone else), or None if the message is not kept."""
        with self._lock:
            entry = self._entries.get(str(message_id))
        if entry is None or entry.at < time.monotonic() - KEEP_SECONDS:
            return None
        key = (entry.payload["author"] == me, translation.get_language())
        html = entry.html.get(key)
        if html is None:
            html = entry.html[key] = message_html(entry.payload, me=me)
        return entry.payload, html

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _oldest(entries: OrderedDict[str, _Entry]) -> _Entry:
    return next(iter(entries.values()))


RECENT = RecentMessages()
