"""Shared set-up of the application-tag tests: Anna's tag of the Yılmaz family through
tests/builders.py with this package's file number and date, and the look-ups the tests
check against (pages, audit events, an unused code)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from applications import actions
from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg.actions import BACKUP_CODE_ALPHABET
from dienstweg.models import Family, User
from tests.builders import build_tag
from tests.conftest import Network

FILE_NUMBER = "BG-31201-0004711"
PROJECT_PHONE = "02043 987650"
CODE = re.compile(rf"[{BACKUP_CODE_ALPHABET}]{{4}}(?:-[{BACKUP_CODE_ALPHABET}]{{4}}){{2}}")
REFUSAL = "Die Einwilligung der Familie erlaubt Ihrer Stelle keinen Zugriff"
APPLICATION_SUPPORT = "Unterstützung bei Anträgen"
NAMES = ["Anna", "Albers", "Ben", "Becker", "Ayşe", "Yılmaz", "Yilmaz", "Leyla", "Emre"]


def today() -> date:
    return timezone.localdate()


def days_ago(days: int) -> date:
    return today() - timedelta(days=days)


def tag(network: Network, family: Family, **changes: Any) -> ApplicationTag:
    """Anna's Bürgergeld tag at the Jobcenter, submitted 14 days ago, with FILE_NUMBER;
    CHANGES as build_tag takes them (set-up for the tests that are about something else)."""
    values: dict[str, Any] = {"submitted_on": days_ago(14), "file_number": FILE_NUMBER}
    values.update(changes)
    return build_tag(network, family, **values)


def events(action: str, user: User | None = None) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(action=action).order_by("id")
    if user is not None:
        found = found.filter(actor_id=user.pk)
    return list(found)


def detail_url(code: str) -> str:
    return reverse("tag_detail", args=[code])


def status_url(code: str) -> str:
    return reverse("tag_status", args=[code])


def unknown_code() -> str:
    code = actions.new_tag_code()
    assert not ApplicationTag.objects.filter(code=code).exists()
    return code
