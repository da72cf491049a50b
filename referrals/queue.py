"""The start page's sections on referrals (dienstweg/worklist.py), registered in
ReferralsConfig.ready(): what a coach hears back, what a lead has to hand out or chase, what
a caseworker has to answer. All read through referrals.access; references and dates only.
A lead assigns the referrals of her two sections from the start page, several at once, with
the inbox's form and view (referrals/templates/referrals/queue_assign.html)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dienstweg.access import Reach, Role
from dienstweg.models import User
from dienstweg.worklist import QueueItem, QueueRows, QueueSource, capped_count, first_rows
from referrals.access import inbox_of, outbox_of
from referrals.actions.reminders import overdue_since
from referrals.forms import AssignManyForm
from referrals.models import Referral

State = Referral.State
# A coach sees an answer on her start page for this long after it came.
ANSWER_SHOWN_DAYS = 14

FIELDS = ("id", "state", "sent_at", "answered_at", "family__reference")


def _agencies(reach: Reach, role: str) -> list[int]:
    return sorted({agency for agency, held in reach.roles if held == role})


def _due(referral: Referral) -> tuple[object, bool]:
    if referral.state != State.SENT or referral.sent_at is None:
        return None, False
    due = referral.sent_at + timedelta(days=settings.REFERRAL_ANSWER_DAYS)
    return timezone.localdate(due), due < timezone.now()


def _rows(
    referrals: QuerySet[Referral],
    detail: object,
    *,
    other_side: str = "from_agency",
    more_url: str = "",
    more_label: object = "",
) -> QueueRows:
    # Only the other side's agency is named: no join for the one the row does not show.
    shown, total = first_rows(
        referrals.select_related("family", other_side).only(*FIELDS, f"{other_side}__name")
    )
    items = []
    for referral in shown:
        due, overdue = _due(referral)
        items.append(
            QueueItem(
                label=referral.family.reference,
                url=reverse("referral_detail", args=[referral.pk]),
                detail=detail(referral),  # type: ignore[operator]
                due=due,  # type: ignore[arg-type]
                overdue=overdue,
                extra={"referral": str(referral.pk)},
            )
        )
    return QueueRows(items, total, more_url, more_label)  # type: ignore[arg-type]


# Coach: answers to the referrals she sent


def _answers(user: User, reach: Reach) -> QuerySet[Referral] | None:
    if not _agencies(reach, Role.COACH):
        return None
    since = timezone.now() - timedelta(days=ANSWER_SHOWN_DAYS)
    return (
        outbox_of(user, reach)
        .filter(created_by=user, state__in=[State.ACCEPTED, State.DECLINED], answered_at__gte=since)
        .order_by("-answered_at", "-pk")
    )


def answers(user: User, reach: Reach) -> QueueRows | None:
    referrals = _answers(user, reach)
    if referrals is None:
        return None

    def detail(referral: Referral) -> str:
        text = (
            _("abgelehnt von %(agency)s")
            if referral.state == State.DECLINED
            else _("angenommen von %(agency)s")
        )
        return text % {"agency": referral.to_agency.name}

    return _rows(
        referrals,
        detail,
        other_side="to_agency",
        more_url=reverse("referral_outbox"),
        more_label=gettext_lazy("Alle gesendeten Vermittlungen"),
    )


def answers_count(user: User, reach: Reach) -> int | None:
    referrals = _answers(user, reach)
    return None if referrals is None else capped_count(referrals)


# Lead: referrals of her agency nobody has taken, and those waiting too long; she assigns
# them from the list


def _assignable(found: QueueRows, reach: Reach, *, prefix: str) -> QueueRows:
    """FOUND with the inbox's form to assign the ticked rows (its view, inbox_assign, looks
    each up through the access rules again). PREFIX keeps the ids of the two sections apart:
    a referral both unassigned and overdue is listed in each. The form's list of staff is
    read once for both sections: one query, whatever the number of rows."""
    form = AssignManyForm(agency_ids=_agencies(reach, Role.LEAD), auto_id=f"{prefix}-%s")
    # Both sections offer the same staff: read once for the page.
    field = form.fields["assignee"]
    if "referrals.assignable_staff" not in reach.shared:
        reach.shared["referrals.assignable_staff"] = list(field.choices)  # type: ignore[attr-defined]
    field.choices = reach.shared["referrals.assignable_staff"]  # type: ignore[attr-defined]
    return replace(found, extra={"assign_form": form, "prefix": prefix})


def _led_inbox(user: User, reach: Reach) -> QuerySet[Referral] | None:
    led = _agencies(reach, Role.LEAD)
    if not led:
        return None
    return inbox_of(user, reach).filter(to_agency_id__in=led, state=State.SENT)


def _unassigned(user: User, reach: Reach) -> QuerySet[Referral] | None:
    inbox = _led_inbox(user, reach)
    return None if inbox is None else inbox.filter(assignee__isnull=True).order_by("sent_at", "pk")


def _overdue(user: User, reach: Reach) -> QuerySet[Referral] | None:
    inbox = _led_inbox(user, reach)
    return (
        None
        if inbox is None
        else inbox.filter(sent_at__lt=overdue_since()).order_by("sent_at", "pk")
    )


def unassigned(user: User, reach: Reach) -> QueueRows | None:
    referrals = _unassigned(user, reach)
    if referrals is None:
        return None
    found = _rows(
        referrals,
        lambda referral: (
            _("von %(agency)s, noch niemandem zugewiesen") % {"agency": referral.from_agency.name}
        ),
        more_url=reverse("referral_inbox")
        + "?"
        + urlencode({"state": State.SENT, "assignee": "none"}),
        more_label=gettext_lazy("Alle nicht zugewiesenen im Eingang"),
    )
    return _assignable(found, reach, prefix="unassigned")


def unassigned_count(user: User, reach: Reach) -> int | None:
    referrals = _unassigned(user, reach)
    return None if referrals is None else capped_count(referrals)


def overdue(user: User, reach: Reach) -> QueueRows | None:
    referrals = _overdue(user, reach)
    if referrals is None:
        return None
    found = _rows(
        referrals,
        lambda referral: _("von %(agency)s, ohne Antwort") % {"agency": referral.from_agency.name},
        more_url=reverse("referral_inbox") + "?" + urlencode({"overdue": "on"}),
        more_label=gettext_lazy("Alle überfälligen im Eingang"),
    )
    return _assignable(found, reach, prefix="overdue")


def overdue_count(user: User, reach: Reach) -> int | None:
    referrals = _overdue(user, reach)
    return None if referrals is None else capped_count(referrals)


# Caseworker: the referrals assigned to her, the next due first


def _assigned(user: User, reach: Reach) -> QuerySet[Referral] | None:
    if not _agencies(reach, Role.CASEWORKER):
        return None
    # Sent ones wait for her answer (due REFERRAL_ANSWER_DAYS after sending), accepted ones
    # for the work itself: the answers first, oldest (the next due) first.
    return (
        inbox_of(user, reach)
        .filter(assignee=user, state__in=[State.SENT, State.ACCEPTED])
        .order_by("-state", "sent_at", "pk")
    )


def assigned(user: User, reach: Reach) -> QueueRows | None:
    referrals = _assigned(user, reach)
    if referrals is None:
        return None
    return _rows(
        referrals,
        lambda referral: (
            (
                _("von %(agency)s, noch nicht beantwortet")
                if referral.state == State.SENT
                else _("von %(agency)s, angenommen")
            )
            % {"agency": referral.from_agency.name}
        ),
        more_url=reverse("referral_inbox") + "?" + urlencode({"assignee": "me"}),
        more_label=gettext_lazy("Alle mir zugewiesenen im Eingang"),
    )


def assigned_count(user: User, reach: Reach) -> int | None:
    referrals = _assigned(user, reach)
    return None if referrals is None else capped_count(referrals)


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
