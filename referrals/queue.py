"""The start page's sections on referrals (dienstweg/worklist.py), registered in
ReferralsConfig.ready(): what a coach hears back, what a lead has to hand out or chase, what
a caseworker has to answer. All read through referrals.access; references and dates only.
A lead assigns the referrals of her two sections from the start page, several at once, with
the inbox's form and view (referrals/templates/referrals/queue_assign.html)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dienstweg.access import Reach, Role
from dienstweg.compiled import IDS, SENTINEL_ID, SENTINEL_TIME
from dienstweg.models import User
from dienstweg.worklist import CompiledSection, QueueItem, QueueRows, QueueSource, capped_count
from referrals.access import inbox_within, outbox_within
from referrals.actions.reminders import overdue_since
from referrals.forms import AssignManyForm
from referrals.models import Referral

State = Referral.State
# A coach sees an answer on her start page for this long after it came.
ANSWER_SHOWN_DAYS = 14

FIELDS = ("id", "state", "sent_at", "family__reference")


class Row(NamedTuple):
    """A referral as a section shows it: FIELDS and the other side's agency's name."""

    id: UUID
    state: str
    sent_at: datetime | None
    reference: str
    agency: str


def _due(referral: Row) -> tuple[object, bool]:
    if referral.state != State.SENT or referral.sent_at is None:
        return None, False
    due = referral.sent_at + timedelta(days=settings.REFERRAL_ANSWER_DAYS)
    return timezone.localdate(due), due < timezone.now()


def _section(
    build: Callable[..., QuerySet[Referral]], *, other_side: str, **sentinels: Any
) -> CompiledSection:
    """BUILD's rows compiled once per shape (worklist.CompiledSection); only the other
    side's agency is named: no join for the one the row does not show."""
    return CompiledSection(
        build, (*FIELDS, f"{other_side}__name"), agencies=IDS, groups=IDS, **sentinels
    )


def _rows(
    found: tuple[list[tuple[Any, ...]], int],
    detail: Callable[[Row], str],
    *,
    more_url: str = "",
    more_label: object = "",
) -> QueueRows:
    shown, total = found
    items = []
    for referral in (Row(*row) for row in shown):
        due, overdue = _due(referral)
        items.append(
            QueueItem(
                label=referral.reference,
                url=reverse("referral_detail", args=[referral.id]),
                detail=detail(referral),
                due=due,  # type: ignore[arg-type]
                overdue=overdue,
                extra={"referral": str(referral.id)},
            )
        )
    return QueueRows(items, total, more_url, more_label)  # type: ignore[arg-type]


# Coach: answers to the referrals she sent


def _answers(
    agencies: list[int], groups: list[int], user_id: int, since: datetime
) -> QuerySet[Referral]:
    return (
        outbox_within(agencies, groups)
        .filter(
            created_by_id=user_id,
            state__in=[State.ACCEPTED, State.DECLINED],
            answered_at__gte=since,
        )
        .order_by("-answered_at", "-pk")
    )


_ANSWERS = _section(_answers, other_side="to_agency", user_id=SENTINEL_ID, since=SENTINEL_TIME)


def _answers_since() -> datetime:
    return timezone.now() - timedelta(days=ANSWER_SHOWN_DAYS)


def answers(user: User, reach: Reach) -> QueueRows | None:
    if not reach.agencies_holding(Role.COACH):
        return None

    def detail(referral: Row) -> str:
        text = (
            _("abgelehnt von %(agency)s")
            if referral.state == State.DECLINED
            else _("angenommen von %(agency)s")
        )
        return text % {"agency": referral.agency}

    return _rows(
        _ANSWERS.rows(
            timezone.localdate(),
            agencies=reach.agency_ids,
            groups=reach.group_ids,
            user_id=user.pk,
            since=_answers_since(),
        ),
        detail,
        more_url=reverse("referral_outbox"),
        more_label=gettext_lazy("Alle gesendeten Vermittlungen"),
    )


def answers_count(user: User, reach: Reach) -> int | None:
    if not reach.agencies_holding(Role.COACH):
        return None
    return capped_count(_answers(reach.agency_ids, reach.group_ids, user.pk, _answers_since()))


# Lead: referrals of her agency nobody has taken, and those waiting too long; she assigns
# them from the list


def _assignable(found: QueueRows, reach: Reach, *, prefix: str) -> QueueRows:
    """FOUND with the inbox's form to assign the ticked rows (its view, inbox_assign, looks
    each up through the access rules again). PREFIX keeps the ids of the two sections apart:
    a referral both unassigned and overdue is listed in each. The form's list of staff is
    read once for both sections: one query, whatever the number of rows."""
    form = AssignManyForm(agency_ids=reach.agencies_holding(Role.LEAD), auto_id=f"{prefix}-%s")
    # Both sections offer the same staff: read once for the page.
    field = form.fields["assignee"]
    if "referrals.assignable_staff" not in reach.shared:
        # iter(): list() of the choices themselves would ask their length first, a COUNT.
        reach.shared["referrals.assignable_staff"] = list(iter(field.choices))  # type: ignore[attr-defined]
    field.choices = reach.shared["referrals.assignable_staff"]  # type: ignore[attr-defined]
    return replace(found, extra={"assign_form": form, "prefix": prefix})


def _unassigned(agencies: list[int], groups: list[int], led: list[int]) -> QuerySet[Referral]:
    return (
        inbox_within(agencies, groups)
        .filter(to_agency_id__in=led, state=State.SENT, assignee__isnull=True)
        .order_by("sent_at", "pk")
    )


def _overdue(
    agencies: list[int], groups: list[int], led: list[int], before: datetime
) -> QuerySet[Referral]:
    return (
        inbox_within(agencies, groups)
        .filter(to_agency_id__in=led, state=State.SENT, sent_at__lt=before)
        .order_by("sent_at", "pk")
    )


_UNASSIGNED = _section(_unassigned, other_side="from_agency", led=IDS)
_OVERDUE = _section(_overdue, other_side="from_agency", led=IDS, before=SENTINEL_TIME)


def unassigned(user: User, reach: Reach) -> QueueRows | None:
    led = reach.agencies_holding(Role.LEAD)
    if not led:
        return None
    found = _rows(
        _UNASSIGNED.rows(
            timezone.localdate(), agencies=reach.agency_ids, groups=reach.group_ids, led=led
        ),
        lambda referral: (
            _("von %(agency)s, noch niemandem zugewiesen") % {"agency": referral.agency}
        ),
        more_url=reverse("referral_inbox")
        + "?"
        + urlencode({"state": State.SENT, "assignee": "none"}),
        more_label=gettext_lazy("Alle nicht zugewiesenen im Eingang"),
    )
    return _assignable(found, reach, prefix="unassigned")


def unassigned_count(user: User, reach: Reach) -> int | None:
    led = reach.agencies_holding(Role.LEAD)
    if not led:
        return None
    return capped_count(_unassigned(reach.agency_ids, reach.group_ids, led))


def overdue(user: User, reach: Reach) -> QueueRows | None:
    led = reach.agencies_holding(Role.LEAD)
    if not led:
        return None
    found = _rows(
        _OVERDUE.rows(
            timezone.localdate(),
            agencies=reach.agency_ids,
            groups=reach.group_ids,
            led=led,
            before=overdue_since(),
        ),
        lambda referral: _("von %(agency)s, ohne Antwort") % {"agency": referral.agency},
        more_url=reverse("referral_inbox") + "?" + urlencode({"overdue": "on"}),
        more_label=gettext_lazy("Alle überfälligen im Eingang"),
    )
    return _assignable(found, reach, prefix="overdue")


def overdue_count(user: User, reach: Reach) -> int | None:
    led = reach.agencies_holding(Role.LEAD)
    if not led:
        return None
    return capped_count(_overdue(reach.agency_ids, reach.group_ids, led, overdue_since()))


# Caseworker: the referrals assigned to her, the next due first


def _assigned(agencies: list[int], groups: list[int], user_id: int) -> QuerySet[Referral]:
    # Sent ones wait for her answer (due REFERRAL_ANSWER_DAYS after sending), accepted ones
    # for the work itself: the answers first, oldest (the next due) first.
    return (
        inbox_within(agencies, groups)
        .filter(assignee_id=user_id, state__in=[State.SENT, State.ACCEPTED])
        .order_by("-state", "sent_at", "pk")
    )


_ASSIGNED = _section(_assigned, other_side="from_agency", user_id=SENTINEL_ID)


def assigned(user: User, reach: Reach) -> QueueRows | None:
    if not reach.agencies_holding(Role.CASEWORKER):
        return None
    return _rows(
        _ASSIGNED.rows(
            timezone.localdate(),
            agencies=reach.agency_ids,
            groups=reach.group_ids,
            user_id=user.pk,
        ),
        lambda referral: (
            (
                _("von %(agency)s, noch nicht beantwortet")
                if referral.state == State.SENT
                else _("von %(agency)s, angenommen")
            )
            % {"agency": referral.agency}
        ),
        more_url=reverse("referral_inbox") + "?" + urlencode({"assignee": "me"}),
        more_label=gettext_lazy("Alle mir zugewiesenen im Eingang"),
    )


def assigned_count(user: User, reach: Reach) -> int | None:
    if not reach.agencies_holding(Role.CASEWORKER):
        return None
    return capped_count(_assigned(reach.agency_ids, reach.group_ids, user.pk))


ANSWERS = QueueSource(
    "referrals.answers",
    gettext_lazy("Antworten auf Ihre Vermittlungen"),
    20,
    answers,
    answers_count,
)
UNASSIGNED = QueueSource(
    "referrals.unassigned",
    gettext_lazy("Vermittlungen ohne Zuständige"),
    11,
    unassigned,
    unassigned_count,
    template="referrals/queue_assign.html",
)
OVERDUE = QueueSource(
    "referrals.overdue",
    gettext_lazy("Überfällige Vermittlungen"),
    12,
    overdue,
    overdue_count,
    template="referrals/queue_assign.html",
)
ASSIGNED = QueueSource(
    "referrals.assigned",
    gettext_lazy("Ihre Vermittlungen nach Fälligkeit"),
    13,
    assigned,
    assigned_count,
)
SOURCES = (UNASSIGNED, OVERDUE, ASSIGNED, ANSWERS)
