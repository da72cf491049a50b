"""The family page's section on referrals (the family record belongs to the core; what was
sent from it belongs here)."""

from __future__ import annotations

from typing import Any

from django import template

from dienstweg.models import Family
from referrals.models import Referral

register = template.Library()


@register.inclusion_tag("referrals/family_section.html")
def family_referrals(family: Family) -> dict[str, Any]:
    """Shown to members of the owning project, who already may open the family."""
    return {
        "family": family,
        "referrals": Referral.objects.filter(family=family)
        .select_related("to_agency")
        .order_by("-created_at")[:20],
    }
