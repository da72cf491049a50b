"""Demo referrals for `make run` (called by dienstweg's load_demo through
ReferralsConfig.demo_loader; development only)."""

from __future__ import annotations

from dienstweg.demo import AGENCIES, PEOPLE, email_of
from dienstweg.models import Agency, DataCategory, Family, User
from referrals.actions import steps
from referrals.models import NeedKind, Referral


def load() -> None:
    """Once: a referral waiting at the Jobcenter (assigned to Ben), one completed, one on
    its way to the Jugendamt."""
    agencies = [Agency.objects.get(name=row[0]) for row in AGENCIES]
    if Referral.objects.filter(from_agency=agencies[0]).exists():
        return
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    anna = users["anna"]
    yilmaz, nowak = Family.objects.filter(owner=agencies[0]).order_by("reference")[:2]
    waiting = steps.refer_family(
        yilmaz,
        data=steps.ReferralData(
            to_agency=agencies[1],
            need="Arbeitsvermittlung in Teilzeit",
            need_kind=NeedKind.WORK,
            summary="Mutter sucht eine Teilzeitstelle passend zu den Kita-Zeiten.",
            categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD],
            notes={DataCategory.HOUSEHOLD: "Alleinerziehend, zwei Kinder (8 und 15 Jahre)."},
        ),
        send=True,
        by=anna,
    )
    steps.assign_referral(waiting, assignee=users["ben"], by=users["jana"])
    done = steps.refer_family(
        nowak,
        data=steps.ReferralData(
            to_agency=agencies[1],
            need="Weiterbildung",
            need_kind=NeedKind.WORK,
            summary="Vater möchte eine Qualifizierung als Berufskraftfahrer.",
            categories=[DataCategory.IDENTITY],
        ),
        send=True,
        by=anna,
    )
    steps.assign_referral(done, assignee=users["ben"], by=users["jana"])
    steps.accept_referral(done, by=users["ben"])
    steps.complete_referral(
        done, outcome="Bildungsgutschein ausgegeben, Kurs beginnt im Februar.", by=users["ben"]
    )
    steps.refer_family(
        yilmaz,
        data=steps.ReferralData(
            to_agency=agencies[2],
            need="Hilfe bei der Kita-Platzsuche",
            need_kind=NeedKind.CHILDCARE,
            summary="Für Emre wird ein Platz ab Sommer gesucht.",
            categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
        ),
        send=True,
        by=anna,
    )
