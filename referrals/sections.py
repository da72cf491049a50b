"""The family page's section on referrals (the family record belongs to the core; what was
sent from it belongs here), registered as a hook in ReferralsConfig.ready()."""

from __future__ import annotations

from typing import Any

from dienstweg.access import Reach
from dienstweg.hooks import FamilySection
from dienstweg.models import Family, User
from referrals.access import referrals_visible_to


def referrals_section(family: Family, user: User, reach: Reach) -> dict[str, Any]:
    """The family's referrals this user may open, newest first."""
    return {
        "family": family,
        "referrals": referrals_visible_to(user, reach)
        .filter(family=family)
        .select_related("to_agency")
        .order_by("-created_at")[:20],
    }


FAMILY_SECTION = FamilySection("referrals/family_section.html", referrals_section)
