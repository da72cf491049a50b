"""Demo referrals and application tags for `make run` (called by dienstweg's load_demo
through ReferralsConfig.demo_loader; development only)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dienstweg.demo import AGENCIES, PEOPLE, email_of
from dienstweg.models import Agency, DataCategory, Family, User
from referrals import actions
from referrals.models import ApplicationTag, Referral


def load() -> None:
    """Once: a referral waiting at the Jobcenter (assigned to Ben), one completed, one on
    its way to the Jugendamt; three tagged applications, one of which the office's consent
    does not cover (to show the refusal)."""
    agencies = [Agency.objects.get(name=row[0]) for row in AGENCIES]
    if Referral.objects.filter(from_agency=agencies[0]).exists():
        return
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    anna = users["anna"]
    yilmaz, nowak, klein = Family.objects.filter(owner=agencies[0]).order_by("reference")[:3]
    waiting = actions.refer_family(
        yilmaz,
        data=actions.ReferralData(
            to_agency=agencies[1],
            need="Arbeitsvermittlung in Teilzeit",
            summary="Mutter sucht eine Teilzeitstelle passend zu den Kita-Zeiten.",
            categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD],
            notes={DataCategory.HOUSEHOLD: "Alleinerziehend, zwei Kinder (8 und 15 Jahre)."},
        ),
        send=True,
        by=anna,
    )
    actions.assign_referral(waiting, assignee=users["ben"], by=users["jana"])
    done = actions.refer_family(
        nowak,
        data=actions.ReferralData(
            to_agency=agencies[1],
            need="Weiterbildung",
            summary="Vater möchte eine Qualifizierung als Berufskraftfahrer.",
            categories=[DataCategory.IDENTITY],
        ),
        send=True,
        by=anna,
    )
    actions.assign_referral(done, assignee=users["ben"], by=users["jana"])
    actions.accept_referral(done, by=users["ben"])
    actions.complete_referral(
        done, outcome="Bildungsgutschein ausgegeben, Kurs beginnt im Februar.", by=users["ben"]
    )
    actions.refer_family(
        yilmaz,
        data=actions.ReferralData(
            to_agency=agencies[2],
            need="Hilfe bei der Kita-Platzsuche",
            summary="Für Emre wird ein Platz ab Sommer gesucht.",
            categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
        ),
        send=True,
        by=anna,
    )
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
