"""Template context that every page of the platform needs."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.http import HttpRequest

from dienstweg import worklist
from dienstweg.access import DPO_ROLES, memberships_holding
from dienstweg.compiled import SENTINEL_ID, CompiledQuery
from dienstweg.models import User

NOTHING: dict[str, Any] = {"unread_notifications": 0, "is_dpo": False, "nav_counts": {}}


def unread_notifications(request: HttpRequest) -> dict[str, Any]:
    """How many unread notifications the main navigation shows, the apps' badges beside it
    (unread messages), and whether it links to the DPO console (one query for the core, one
    or two per badge, and only for users past the second factor: the others see no
    navigation)."""
    user: Any = getattr(request, "user", None)
    is_verified = getattr(user, "is_verified", None)
    if user is None or not user.is_authenticated or not callable(is_verified):
        return NOTHING
    if is_verified() is not True:
        return NOTHING
    rows = _NAVIGATION.rows(user_id=user.pk)
    if not rows:
        return NOTHING
    unread, dpo = rows[0]
    counts = {"notifications": unread, **worklist.badge_counts(user)}
    return {"unread_notifications": unread, "is_dpo": dpo, "nav_counts": counts}


# Asked on every page: compiled once (dienstweg/compiled.py), as building it cost each page
# about a millisecond of Python.
_NAVIGATION = CompiledQuery(
    lambda user_id: (
        User.objects.filter(pk=user_id)
        .annotate(
            unread=Count("notifications", filter=Q(notifications__read_at__isnull=True)),
            dpo=Exists(memberships_holding(OuterRef("pk"), *DPO_ROLES)),
        )
        .values_list("unread", "dpo")[:1]
    ),
    user_id=SENTINEL_ID,
    prepared=True,
)
