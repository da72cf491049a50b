"""The start page's section of agreements (dienstweg/worklist.py): the open agreements of
the conferences she may open for which she is named responsible, by due date. Registered
in ConferencesConfig.ready()."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conferences.access import visible_within
from conferences.models import Agreement, Conference
from dienstweg.access import Reach
from dienstweg.compiled import IDS, SENTINEL_ID
from dienstweg.models import User
from dienstweg.worklist import CompiledSection, QueueItem, QueueRows, QueueSource

OPEN = [Agreement.State.OPEN, Agreement.State.CONFIRMED]


def _mine(user_id: int, agencies: list[int]) -> QuerySet[Agreement]:
    """The open agreements USER_ID is named for, of the conferences she may open."""
    return Agreement.objects.filter(
        person_id=user_id,
        state__in=OPEN,
        conference__in=Conference.objects.filter(visible_within(user_id, agencies)),
    ).order_by("due_on", "pk")


# Compiled once a day (the rule compares an invitation's end with today): building the
# rule and reading the rows as model objects cost every start page of someone with
# agreements 9-14 ms (bench/work_queue.py on the step-11 database).
_MINE = CompiledSection(
    _mine,
    ("conference_id", "conference__family__reference", "number", "state", "due_on"),
    user_id=SENTINEL_ID,
    agencies=IDS,
)


def agreements(user: User, reach: Reach) -> QueueRows | None:
    if not reach.agency_ids:
        return None
    today = timezone.localdate()
    shown, total = _MINE.rows(today, user_id=user.pk, agencies=reach.agency_ids)
    return QueueRows(
        [
            QueueItem(
                label=reference,
                url=reverse("conference_detail", args=[conference_id]) + "#vereinbarungen",
                detail=(
                    _("Vereinbarung %(number)d, bitte bestätigen")
                    if state == Agreement.State.OPEN
                    else _("Vereinbarung %(number)d, bestätigt")
                )
                % {"number": number},
                due=due_on,
                overdue=due_on < today,
            )
            for conference_id, reference, number, state, due_on in shown
        ],
        total,
        more_url=reverse("conference_list"),
        more_label=gettext_lazy("Alle Familienkonferenzen"),
    )


def agreements_count(user: User, reach: Reach) -> int | None:
    if not reach.agency_ids:
        return None
    today = timezone.localdate()
    return _MINE.count(today, user_id=user.pk, agencies=reach.agency_ids)


AGREEMENTS = QueueSource(
    "conferences.agreements",
    gettext_lazy("Ihre Vereinbarungen aus Familienkonferenzen"),
    14,
    agreements,
    agreements_count,
)
