"""The restriction panel's one question the template cannot ask itself: the reason the DPO
recorded, encrypted in the family row (so the panel needs nothing but `family`)."""

from __future__ import annotations

from django import template

from dienstweg.models import Family
from dienstweg.vault import VaultError

register = template.Library()


@register.simple_tag
def restriction_reason(family: Family) -> str:
    """The recorded reason of the family's restriction, "" if none or the key is gone."""
    try:
        return family.decrypt_field("restriction_reason")
    except VaultError:  # erased: the data key, and with it the reason, is destroyed
        return ""
