"""Template context that every page of the platform needs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from dienstweg.models import Notification


def unread_notifications(request: HttpRequest) -> dict[str, int]:
    """How many unread notifications the main navigation shows (one query, and only for
    users past the second factor: the others see no navigation)."""
    user: Any = getattr(request, "user", None)
    is_verified = getattr(user, "is_verified", None)
    if user is None or not user.is_authenticated or not callable(is_verified):
        return {"unread_notifications": 0}
    if is_verified() is not True:
        return {"unread_notifications": 0}
    count = Notification.objects.filter(user=user, read_at__isnull=True).count()
    return {"unread_notifications": count}
