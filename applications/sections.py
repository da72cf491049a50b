"""The family page's section on tagged applications (the family record belongs to the core;
the applications tagged for it belong here), registered in ApplicationsConfig.ready()."""

from __future__ import annotations

from typing import Any

from applications.access import tags_visible_to
from dienstweg.access import Reach
from dienstweg.hooks import FamilySection
from dienstweg.models import Family, User


def tags_section(family: Family, user: User, reach: Reach) -> dict[str, Any]:
    """The family's tagged applications this user may see, newest first."""
    return {
        "family": family,
        "tags": tags_visible_to(user, reach)
        .filter(family=family)
        .select_related("processing_agency")
        .order_by("-submitted_on")[:20],
    }


FAMILY_SECTION = FamilySection("applications/family_section.html", tags_section)
