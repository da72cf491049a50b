"""The start page's section of agreements (dienstweg/worklist.py): the open agreements of
the conferences she may open for which she is named responsible, by due date. Registered
in ConferencesConfig.ready()."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conferences.access import conferences_visible_to
from conferences.models import Agreement
from dienstweg.access import Reach
from dienstweg.models import User
from dienstweg.worklist import QueueItem, QueueRows, QueueSource, capped_count, first_rows

OPEN = [Agreement.State.OPEN, Agreement.State.CONFIRMED]


def _mine(user: User, reach: Reach) -> QuerySet[Agreement]:
    return Agreement.objects.filter(
        person=user, state__in=OPEN, conference__in=conferences_visible_to(user, reach)
    ).order_by("due_on", "pk")


def agreements(user: User, reach: Reach) -> QueueRows | None:
    if not reach.agency_ids:
        return None
    shown, total = first_rows(_mine(user, reach).select_related("conference__family", "agency"))
    today = timezone.localdate()
    return QueueRows(
        [
            QueueItem(
                label=agreement.conference.family.reference,
                url=reverse("conference_detail", args=[agreement.conference_id])
                + "#vereinbarungen",
                detail=(
                    _("Vereinbarung %(number)d, bitte bestätigen")
                    if agreement.state == Agreement.State.OPEN
                    else _("Vereinbarung %(number)d, bestätigt")
                )
                % {"number": agreement.number},
                due=agreement.due_on,
                overdue=agreement.due_on < today,
            )
            for agreement in shown
        ],
        total,
        more_url=reverse("conference_list"),
        more_label=gettext_lazy("Alle Familienkonferenzen"),
    )


def agreements_count(user: User, reach: Reach) -> int | None:
    if not reach.agency_ids:
        return None
    return capped_count(_mine(user, reach))


AGREEMENTS = QueueSource(
    "conferences.agreements",
    gettext_lazy("Ihre Vereinbarungen aus Familienkonferenzen"),
    14,
    agreements,
    agreements_count,
)
