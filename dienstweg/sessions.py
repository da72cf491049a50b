"""Session store that keeps who, since when and from where beside each session,
so that staff can list and end their sessions (the database backend keeps only a blob)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.utils import timezone

# Keys this platform keeps in session data (besides Django's and django-otp's).
STARTED = "_dienstweg_started"
SEEN = "_dienstweg_seen"
IP = "_dienstweg_ip"
USER_AGENT = "_dienstweg_ua"


def lifetime_over(*, started: float, seen: float, now: float) -> bool:
    """Whether a login session has been idle too long or lasted too long (seconds since
    the epoch): the rule of SessionLifetimeMiddleware and of the sockets."""
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    lifetime = settings.SESSION_MAX_LIFETIME.total_seconds()
    return now - seen > idle or now - started > lifetime


def timestamp(data: dict[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls) -> Any:
        from dienstweg.models import StaffSession

        return StaffSession

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        instance: Any = super().create_model_instance(data)
        instance.user_id = data.get("_auth_user_id")
        instance.created_at = timestamp(data, STARTED) or timezone.now()
        instance.last_seen = timestamp(data, SEEN) or timezone.now()
        instance.ip_address = data.get(IP)
        instance.user_agent = data.get(USER_AGENT, "")
        return instance
