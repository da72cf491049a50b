"""Demo application tags for `make run` (called by dienstweg's load_demo through
ApplicationsConfig.demo_loader, after the demo referrals; development only)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from applications import actions
from applications.models import ApplicationTag
from dienstweg.demo import AGENCIES, PEOPLE, email_of
from dienstweg.models import Agency, Family, User


def load() -> None:
    """Once: three tagged applications, one of which the office's consent does not cover
    (to show the refusal)."""
    agencies = [Agency.objects.get(name=row[0]) for row in AGENCIES]
    if ApplicationTag.objects.filter(project=agencies[0]).exists():
        return
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    anna = users["anna"]
    yilmaz, nowak, klein = Family.objects.filter(owner=agencies[0]).order_by("reference")[:3]
    today = timezone.localdate()
    for family, kind, office, days_ago, file_number in (
        (yilmaz, ApplicationTag.Kind.CITIZENS_BENEFIT, agencies[1], 12, "BG-2026-4711"),
        (nowak, ApplicationTag.Kind.CHILD_SUPPLEMENT, agencies[7], 30, "KiZ-815"),
        (klein, ApplicationTag.Kind.HOUSING_BENEFIT, agencies[3], 5, "WG-2026-0042"),
    ):
        actions.tag_application(
            family,
            data=actions.TagData(
                kind=kind,
                processing_agency=office,
                submitted_on=today - timedelta(days=days_ago),
                file_number=file_number,
            ),
            by=anna,
        )
