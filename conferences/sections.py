"""The family page's section on Familienkonferenzen, registered in ConferencesConfig.ready()."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils import timezone

from conferences.access import consultations_within, may_convene, visible_within
from conferences.models import Conference
from dienstweg.access import Reach
from dienstweg.compiled import IDS, SENTINEL_ID, SENTINEL_UUID, CompiledQuery
from dienstweg.hooks import FamilySection
from dienstweg.models import Family, User


@dataclass(frozen=True)
class Listed:
    """A conference, or an anonymous consultation, as the family page lists it."""

    pk: UUID
    at: datetime
    state: str = ""
    state_label: str = ""
    alias: str = ""


# Compiled once a day (the rule compares an invitation's end with today): built with the
# ORM on every family page, the section cost 3.7 ms, compiled 0.8 (on the step-11 database).
_CONFERENCES = CompiledQuery(
    lambda user_id, agencies, family_id: (
        Conference.objects.filter(visible_within(user_id, agencies))
        .filter(family_id=family_id)
        .order_by("-starts_at")
        .values_list("pk", "starts_at", "state")[:10]
    ),
    user_id=SENTINEL_ID,
    agencies=IDS,
    family_id=SENTINEL_UUID,
)
_CONSULTATIONS = CompiledQuery(
    lambda agencies, family_id: (
        consultations_within(agencies)
        .filter(family_id=family_id)
        .order_by("-created_at")
        .values_list("pk", "created_at", "alias")[:10]
    ),
    agencies=IDS,
    family_id=SENTINEL_UUID,
)


def conferences_section(family: Family, user: User, reach: Reach) -> dict[str, Any]:
    """The family's conferences, newest first, and whether she may convene one."""
    today, agencies = timezone.localdate(), reach.agency_ids
    conferences = _CONFERENCES.rows(today, user_id=user.pk, agencies=agencies, family_id=family.pk)
    consultations = _CONSULTATIONS.rows(today, agencies=agencies, family_id=family.pk)
    return {
        "family": family,
        "may_convene": may_convene(reach, family),
        "conferences": [
            Listed(pk, starts_at, state, str(Conference.State(state).label))
            for pk, starts_at, state in conferences
        ],
        "consultations": [
            Listed(pk, created_at, alias=alias) for pk, created_at, alias in consultations
        ],
    }


FAMILY_SECTION = FamilySection("conferences/family_section.html", conferences_section)
