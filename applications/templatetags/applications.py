"""The family page's section on tagged applications (the family record belongs to the core;
the applications tagged for it belong here)."""

from __future__ import annotations

from typing import Any

from django import template

from applications.models import ApplicationTag
from dienstweg.models import Family

register = template.Library()


@register.inclusion_tag("applications/family_section.html")
def family_tags(family: Family) -> dict[str, Any]:
    """Shown to members of the owning project, who already may open the family."""
    return {
        "family": family,
        "tags": ApplicationTag.objects.filter(family=family)
        .select_related("processing_agency")
        .order_by("-submitted_on")[:20],
    }
