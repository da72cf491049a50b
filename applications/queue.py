"""The start page's sections on application tags (dienstweg/worklist.py), registered in
ApplicationsConfig.ready(): the documents a processing office asked for, seen from the
project (the coach brings them) and from the office (it waits for them)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.access import TAGGING_ROLES, seen_by_office, tags_within
from applications.models import ApplicationTag
from dienstweg.access import CASE_ROLES, Reach
from dienstweg.compiled import IDS, CompiledQuery
from dienstweg.models import User
from dienstweg.worklist import (
    SHOWN,
    CompiledSection,
    QueueItem,
    QueueRows,
    QueueSource,
    capped_count,
)

FIELDS = ("code", "kind", "family__reference", "processing_agency__name")
# The office's candidates read at most; the consent rule is then asked of these alone.
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


def _waiting(offices: list[int]) -> QuerySet[ApplicationTag]:
    """The tags of OFFICES waiting for documents, the longest waiting first, as far as
    OFFICE_CANDIDATES."""
    return ApplicationTag.objects.filter(
        processing_agency_id__in=offices,
        state=ApplicationTag.State.DOCUMENTS_REQUESTED,
        family__restricted_at__isnull=True,
    ).order_by("updated_at", "pk")[:OFFICE_CANDIDATES]


# Asked on the page of every office's staff: compiled once a day (dienstweg/compiled.py;
# the consent's dates are compared with today). The consent rule is asked in the query of
# the candidates alone: read as tuples and asked in memory, their families' consents cost
# the section 8 ms at the bench's busy Jobcenter, in the query 3-4.7 (bench/work_queue.py).
_OFFICE = CompiledQuery(
    lambda offices: (
        seen_by_office(ApplicationTag.objects.filter(pk__in=_waiting(offices).values("pk")))
        .order_by("updated_at", "pk")
        .values_list("code", "kind")
    ),
    offices=IDS,
)


def _waiting_at_office(user: User, reach: Reach) -> list[tuple[str, str]] | None:
    """The codes and kinds of the tags of the user's office waiting for documents that the
    office may see now (applications.access.seen_by_office), in one query."""
    # A project processes no applications: a tag's office is a public agency
    # (applications.actions.tag_application), so a coach's page asks nothing here.
    offices = sorted(
        {
            agency
            for agency, role in reach.roles
            if role in CASE_ROLES and agency not in reach.project_ids
        }
    )
    if not offices:
        return None
    return _OFFICE.rows(timezone.localdate(), offices=offices)


def office_requests(user: User, reach: Reach) -> QueueRows | None:
    tags = _waiting_at_office(user, reach)
    if tags is None:
        return None
    return QueueRows(
        [
            QueueItem(
                label=code,
                url=reverse("tag_detail", args=[code]),
                detail=_("%(kind)s, Unterlagen nachgefordert")
                % {"kind": ApplicationTag.Kind(kind).label},
            )
            for code, kind in tags[:SHOWN]
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
