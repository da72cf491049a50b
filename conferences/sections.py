"""The family page's section on Familienkonferenzen, registered in ConferencesConfig.ready()."""

from __future__ import annotations

from typing import Any

from conferences.access import conferences_visible_to, consultations_visible_to, may_convene
from dienstweg.access import Reach
from dienstweg.hooks import FamilySection
from dienstweg.models import Family, User


def conferences_section(family: Family, user: User, reach: Reach) -> dict[str, Any]:
    """The family's conferences, newest first, and whether she may convene one."""
    return {
        "family": family,
        "may_convene": may_convene(reach, family),
        "conferences": conferences_visible_to(user, reach)
        .filter(family=family)
        .order_by("-starts_at")[:10],
        "consultations": consultations_visible_to(user, reach)
        .filter(family=family)
        .order_by("-created_at")[:10],
    }


FAMILY_SECTION = FamilySection("conferences/family_section.html", conferences_section)
