"""The core's own sections of the start page (dienstweg/worklist.py): the role proposals a
lead decides, and the consents of a project's families that end soon."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dienstweg.access import (
    REGISTERING_ROLES,
    Reach,
    Role,
    proposal_deadline,
    proposals_awaiting_within,
    proposals_open_since,
)
from dienstweg.compiled import IDS, SENTINEL_ID, SENTINEL_TIME, CompiledQuery
from dienstweg.models import Consent, User
from dienstweg.worklist import (
    SHOWN,
    CompiledSection,
    QueueItem,
    QueueRows,
    QueueSource,
    capped_count,
    today,
)

# A coach hears of a consent this many days before it ends: time to see the family again.
CONSENT_ENDING_DAYS = 14


class Proposal(NamedTuple):
    """A pending role proposal as the start page shows it (queue_proposals.html)."""

    pk: int
    name: str
    email: str
    role: str
    agency: str
    proposed_at: datetime
    proposed_by: str | None

    @property
    def role_label(self) -> str:
        return str(Role(self.role).label)

    @property
    def until(self) -> datetime:
        return proposal_deadline(self)


# Up to SHOWN + 40: a lead decides each proposal on the page itself, with no list behind it.
# Compiled once (dienstweg/compiled.py): building the query took the ORM 2.5 ms of a lead's
# start page, for a section that is empty on most days (bench/work_queue.py).
_PROPOSALS = CompiledQuery(
    lambda user_id, since, led: proposals_awaiting_within(user_id, since, led).values_list(
        "pk",
        "user__full_name",
        "user__email",
        "role",
        "agency__name",
        "proposed_at",
        "proposed_by__full_name",
    )[: SHOWN + 40],
    user_id=SENTINEL_ID,
    since=SENTINEL_TIME,
    led=IDS,
)


def proposals(user: User, reach: Reach) -> QueueRows | None:
    led = reach.agencies_holding(Role.LEAD)
    if not led:
        return None
    rows = [
        Proposal(*row)
        for row in _PROPOSALS.rows(user_id=user.pk, since=proposals_open_since(), led=led)
    ]
    return QueueRows(
        [
            QueueItem(
                label=proposal.name,
                url=reverse("home") + f"#proposal-{proposal.pk}",
                detail=proposal.role_label,
                due=proposal.until.date(),
                extra={"proposal": proposal},
            )
            for proposal in rows
        ],
        len(rows),
    )


def proposals_count(user: User, reach: Reach) -> int | None:
    led = reach.agencies_holding(Role.LEAD)
    return (
        capped_count(proposals_awaiting_within(user.pk, proposals_open_since(), led))
        if led
        else None
    )


def _ending_consents(projects: list[int]) -> QuerySet[Consent]:
    first, last = today(), today() + timedelta(days=CONSENT_ENDING_DAYS)
    # A consent given again (a newer one lasting longer) leaves nothing to do.
    renewed = Consent.objects.filter(
        family=OuterRef("family"),
        revoked_at__isnull=True,
        valid_until__gt=OuterRef("valid_until"),
    )
    return (
        Consent.objects.filter(
            family__owner_id__in=projects,
            family__erased_at__isnull=True,
            revoked_at__isnull=True,
            valid_from__lte=first,
            valid_until__gte=first,
            valid_until__lte=last,
        )
        .filter(~Exists(renewed))
        .order_by("valid_until", "pk")
    )


# Compiled once a day (the days ahead are read when it is built), dienstweg/compiled.py.
_ENDING = CompiledSection(
    _ending_consents, ("family_id", "valid_until", "family__reference"), projects=IDS
)


def ending_consents(user: User, reach: Reach) -> QueueRows | None:
    projects = reach.projects_holding(*REGISTERING_ROLES)
    if not projects:
        return None
    rows, total = _ENDING.rows(today(), projects=projects)
    return QueueRows(
        [
            QueueItem(
                label=reference,
                url=reverse("family_detail", args=[family_id]),
                detail=_("Einwilligung endet am %(day)s")
                % {"day": date_format(valid_until, "SHORT_DATE_FORMAT")},
                due=valid_until,
            )
            for family_id, valid_until, reference in rows
        ],
        total,
    )


def ending_consents_count(user: User, reach: Reach) -> int | None:
    projects = reach.projects_holding(*REGISTERING_ROLES)
    return capped_count(_ending_consents(projects)) if projects else None


PROPOSALS = QueueSource(
    "dienstweg.proposals",
    gettext_lazy("Rollen, die auf Ihre Bestätigung warten"),
    10,
    proposals,
    proposals_count,
    template="dienstweg/queue_proposals.html",
)
ENDING_CONSENTS = QueueSource(
    "dienstweg.consents_ending",
    gettext_lazy("Einwilligungen, die in den nächsten 14 Tagen enden"),
    40,
    ending_consents,
    ending_consents_count,
)
