"""The start page's sections on application tags (dienstweg/worklist.py), registered in
ApplicationsConfig.ready(): the documents a processing office asked for, seen from the
project (the coach brings them) and from the office (it waits for them)."""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple
from uuid import UUID

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.access import TAG_CATEGORY, TAGGING_ROLES, tags_within
from applications.models import ApplicationTag
from dienstweg.access import CASE_ROLES, Reach
from dienstweg.compiled import IDS, CompiledQuery
from dienstweg.consent import Terms, uncovered
from dienstweg.models import Consent, Purpose, User
from dienstweg.worklist import (
    SHOWN,
    CompiledSection,
    QueueItem,
    QueueRows,
    QueueSource,
    capped_count,
)

FIELDS = ("code", "kind", "family__reference", "processing_agency__name")
# The office's candidates read at most; the consent rule is then asked of them in memory.
OFFICE_CANDIDATES = 200


def _requested_for_project(agencies: list[int], projects: list[int]) -> QuerySet[ApplicationTag]:
    return (
        tags_within(agencies)
        .filter(project_id__in=projects, state=ApplicationTag.State.DOCUMENTS_REQUESTED)
        .order_by("updated_at", "pk")
    )


_REQUESTED = CompiledSection(_requested_for_project, FIELDS, agencies=IDS, projects=IDS)


def requested_documents(user: User, reach: Reach) -> QueueRows | None:
    projects = reach.projects_holding(*TAGGING_ROLES)
    if not projects:
        return None
    shown, total = _REQUESTED.rows(agencies=reach.agency_ids, projects=projects)
    return QueueRows(
        [
            QueueItem(
                label=reference,
                url=reverse("tag_detail", args=[code]),
                detail=_("%(office)s fordert Unterlagen nach (%(kind)s)")
                % {"office": office, "kind": ApplicationTag.Kind(kind).label},
            )
            for code, kind, reference, office in shown
        ],
        total,
        reverse("tag_list"),
        gettext_lazy("Alle Anträge"),
    )


def requested_documents_count(user: User, reach: Reach) -> int | None:
    projects = reach.projects_holding(*TAGGING_ROLES)
    if not projects:
        return None
    return capped_count(_requested_for_project(reach.agency_ids, projects))


class OfficeTag(NamedTuple):
    code: str
    kind: str
    family_id: UUID
    processing_agency_id: int


def _waiting(offices: list[int]) -> QuerySet[ApplicationTag]:
    """The tags of OFFICES waiting for documents, the longest waiting first, as far as
    OFFICE_CANDIDATES (the consent rule is then asked of them in memory)."""
    return ApplicationTag.objects.filter(
        processing_agency_id__in=offices,
        state=ApplicationTag.State.DOCUMENTS_REQUESTED,
        family__restricted_at__isnull=True,
    ).order_by("updated_at", "pk")[:OFFICE_CANDIDATES]


# Both asked on the page of every office's staff: compiled once (dienstweg/compiled.py).
# Plain tuples, no model objects: 200 tags and their families' consents as model objects
# cost the section 8.8 ms at the bench's busy Jobcenter, as compiled tuples 4.2.
_CANDIDATES = CompiledQuery(
    lambda offices: _waiting(offices).values_list(
        "code", "kind", "family_id", "processing_agency_id"
    ),
    offices=IDS,
)
# The candidates' families asked again in the query: 200 ids as parameters cost more to
# send and plan than the index scan that finds them.
_TERMS = CompiledQuery(
    lambda offices: Consent.objects.filter(
        family_id__in=_waiting(offices).values("family_id"),
        revoked_at__isnull=True,
        valid_from__lte=timezone.localdate(),
        valid_until__gte=timezone.localdate(),
    ).values_list(
        "family_id", "recipient_ids", "categories", "purposes", "valid_from", "valid_until"
    ),
    offices=IDS,
)


def _waiting_at_office(user: User, reach: Reach) -> list[OfficeTag] | None:
    """The tags of the user's office waiting for documents that the office may see now
    (applications.access.side_sees for the office: the family's consent covers it today,
    its processing is not restricted), in two queries whatever their number."""
    offices = sorted({agency for agency, role in reach.roles if role in CASE_ROLES})
    if not offices:
        return None
    candidates = [OfficeTag(*row) for row in _CANDIDATES.rows(offices=offices)]
    if not candidates:
        return []
    today = timezone.localdate()
    terms: dict[object, list[Terms]] = defaultdict(list)
    for (
        family_id,
        recipients,
        categories,
        purposes,
        valid_from,
        valid_until,
    ) in _TERMS.rows(today, offices=offices):
        terms[family_id].append(
            Terms(
                recipients=frozenset(recipients),
                categories=frozenset(categories),
                purposes=frozenset(purposes),
                valid_from=valid_from,
                valid_until=valid_until,
                revoked=False,
            )
        )
    return [
        tag
        for tag in candidates
        if not uncovered(
            terms[tag.family_id],
            agency_id=tag.processing_agency_id,
            categories=[TAG_CATEGORY[ApplicationTag.Kind(tag.kind)]],
            purpose=Purpose.APPLICATION_SUPPORT,
            on=today,
        )
    ]


def office_requests(user: User, reach: Reach) -> QueueRows | None:
    tags = _waiting_at_office(user, reach)
    if tags is None:
        return None
    return QueueRows(
        [
            QueueItem(
                label=tag.code,
                url=reverse("tag_detail", args=[tag.code]),
                detail=_("%(kind)s, Unterlagen nachgefordert")
                % {"kind": ApplicationTag.Kind(tag.kind).label},
            )
            for tag in tags[:SHOWN]
        ],
        len(tags),
    )


def office_requests_count(user: User, reach: Reach) -> int | None:
    tags = _waiting_at_office(user, reach)
    return None if tags is None else len(tags)


REQUESTED_DOCUMENTS = QueueSource(
    "applications.requested_documents",
    gettext_lazy("Nachgeforderte Unterlagen"),
    30,
    requested_documents,
    requested_documents_count,
)
OFFICE_REQUESTS = QueueSource(
    "applications.office_requests",
    gettext_lazy("Anträge, für die Unterlagen nachgefordert sind"),
    31,
    office_requests,
    office_requests_count,
)
SOURCES = (REQUESTED_DOCUMENTS, OFFICE_REQUESTS)
