"""A demo Familienkonferenz for `make run` (called by dienstweg's load_demo through
ConferencesConfig.demo_loader; development only)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from conferences import actions
from conferences.models import Agreement, Conference, GapReason
from dienstweg import actions as core
from dienstweg.demo import AGENCIES, PEOPLE, email_of
from dienstweg.models import Agency, Consent, DataCategory, Family, Purpose, User


def load() -> None:
    """Once: the Yılmaz family consents to case coordination with the Jobcenter and the
    Jugendamt; its Familienkonferenz of last week has agreements in every state, and a
    follow-up is planned in two weeks."""
    agencies = [Agency.objects.get(name=row[0]) for row in AGENCIES]
    if Conference.objects.exists():
        return
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    anna, ben, clara, emil = users["anna"], users["ben"], users["clara"], users["emil"]
    yilmaz = Family.objects.filter(owner=agencies[0]).order_by("reference").first()
    if yilmaz is None:
        return
    today = timezone.localdate()
    core.grant_consent(
        yilmaz,
        data=core.ConsentData(
            recipients=[agencies[1], agencies[2]],
            categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT, DataCategory.CHILDREN],
            purposes=[Purpose.CASE_COORDINATION],
            valid_from=today,
            valid_until=today + timedelta(days=365),
            given_by=yilmaz.members.get(position=0),
            capacity=Consent.Capacity.ADULT_SELF,
            method=Consent.Method.ORAL_RECORDED,
            witness_note="Demo: mündlich erteilt vor der Familienkonferenz.",
            text_version="2026-1",
        ),
        by=anna,
    )
    soon = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    past = actions.convene_conference(
        yilmaz,
        data=actions.ConferenceData(
            starts_at=soon,
            duration_minutes=90,
            place="Familienbüro Gladbeck, Besprechungsraum 2",
            video_link="",
            agenda="1. Arbeitssuche der Mutter\n2. Kita-Platz für Emre\n3. Nächste Schritte",
            categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT, DataCategory.CHILDREN],
            invitees=[ben, clara, emil],
            notes={
                DataCategory.EMPLOYMENT: "Sucht Teilzeit, höchstens 25 Stunden, vormittags.",
                DataCategory.CHILDREN: "Emre (3) braucht einen Kita-Platz ab Sommer.",
            },
        ),
        by=anna,
    )

    def agree(what: str, agency: Agency | None, person: User | None, days: int) -> Agreement:
        return actions.record_agreement(
            past,
            data=actions.AgreementData(what, agency, person, today + timedelta(days=days)),
            by=anna,
        )

    confirmed = agree("Beratungstermin zur Teilzeitstelle im Jobcenter", agencies[1], ben, 14)
    actions.confirm_agreement(confirmed, by=ben)
    agree("Kita-Platz für Emre beim Jugendamt anfragen", agencies[2], emil, 21)
    done = agree("Unterlagen für den Kinderzuschlag zusammenstellen", None, None, 7)
    actions.close_agreement(done, done=True, by=anna)
    missing = agree("Sprachkurs am Vormittag finden", agencies[0], anna, 10)
    actions.close_agreement(
        missing,
        done=False,
        reason=GapReason.HURDLE_CHILDCARE,
        note="Kurse nur mit Kinderbetreuung am Nachmittag.",
        by=anna,
    )
    # Demo only: the conference took place last week (convening asks for a future date).
    Conference.objects.filter(pk=past.pk).update(starts_at=soon - timedelta(days=8))
    actions.convene_conference(
        yilmaz,
        data=actions.ConferenceData(
            starts_at=soon + timedelta(days=13),
            duration_minutes=60,
            place="",
            video_link="https://video.example.org/familienkonferenz",
            agenda="Was ist aus den Vereinbarungen geworden?",
            categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
            invitees=[ben],
        ),
        by=anna,
    )
