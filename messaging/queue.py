"""Unread threads on the start page and the navigation's unread-messages badge
(dienstweg/worklist.py), registered in MessagingConfig.ready(); read through the rule of the
thread list (messaging.access.threads_of, compiled once a day for these two), and named as
the thread list names them: a direct conversation by the other person and her agency."""

from __future__ import annotations

from typing import Any

from django.db.models import F
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from dienstweg.access import Reach
from dienstweg.models import User
from dienstweg.worklist import SHOWN, Badge, QueueItem, QueueRows, QueueSource
from messaging.access import unread_in_reach, unread_threads_of
from messaging.models import Participant, Thread
from messaging.people import label


def _unread_thread_ids(user: User) -> list[object]:
    """The threads in which the user has a message she has not read, whether or not she may
    still reach them: one plain query on her participant rows, and on most pages there are
    none. Only then is the rule of which she may still reach asked (threads_of), of these
    threads alone: compiling and planning it cost every page's badge 9 ms
    (bench/work_queue.py)."""
    return list(
        Participant.objects.filter(user=user, thread__last_seq__gt=F("read_seq")).values_list(
            "thread_id", flat=True
        )
    )


def unread_threads(user: User, reach: Reach) -> QueueRows | None:
    if not _unread_thread_ids(user):
        return QueueRows([], 0)
    # With the other person of a direct thread and her agency, in the same one query.
    unread: list[Any] = unread_threads_of(user, reach)
    shown, total = unread[:SHOWN], len(unread)
    return QueueRows(
        [
            QueueItem(
                label=_title(participant),
                url=reverse("thread_detail", args=[participant.thread_id]),
                detail=ngettext(
                    "%(count)d ungelesene Nachricht",
                    "%(count)d ungelesene Nachrichten",
                    participant.unread,
                )
                % {"count": participant.unread},
                extra={"thread": str(participant.thread_id), "unread": participant.unread},
                # A person's name may wrap; a family's reference stays on one line.
                reference=participant.thread.kind != Thread.Kind.DIRECT,
            )
            for participant in shown
        ],
        total,
        reverse("thread_list"),
        gettext_lazy("Alle Unterhaltungen"),
    )


def _title(participant: Participant) -> str:
    """As the thread list has it (messaging/thread_table.html): "Ben Becker (Jobcenter)",
    or "Direktnachricht" when the other person is no longer in the thread."""
    thread = participant.thread
    if thread.kind != Thread.Kind.DIRECT:  # a thread about a family: its reference
        reference = thread.family.reference if thread.family else ""
        return f"{thread.get_kind_display()} {reference}"
    name = getattr(participant, "partner_name", None)
    if not name:
        return _("Direktnachricht")
    return label(name, getattr(participant, "partner_agency", None))


def unread_messages(user: User) -> int:
    """The user's unread messages in the threads she may still reach."""
    if not _unread_thread_ids(user):
        return 0
    return unread_in_reach(user)


UNREAD_THREADS = QueueSource(
    "messaging.unread",
    gettext_lazy("Ungelesene Unterhaltungen"),
    50,
    unread_threads,
)
UNREAD_BADGE = Badge("messages", unread_messages)
