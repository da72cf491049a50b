"""A demo Familienkonferenz for `make run` (called by dienstweg's load_demo through
ConferencesConfig.demo_loader; development only)."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from applications import actions as application_actions
from applications.models import ApplicationTag
from conferences import actions
from conferences.models import Agreement, Conference, GapReason
from dienstweg import actions as core
from dienstweg.demo import AGENCIES, PEOPLE, email_of
from dienstweg.models import Agency, Consent, DataCategory, Family, Membership, Purpose, User
from referrals.actions import steps
from referrals.models import NeedKind

Role = Membership.Role


def load() -> None:
    """Once: the Yılmaz family consents to case coordination with the Jobcenter and the
    Jugendamt; its Familienkonferenz of last week has agreements in every state, and a
    follow-up is planned in two weeks."""
    load_figures()
    agencies = [Agency.objects.get(name=row[0]) for row in AGENCIES]
    if Conference.objects.filter(project=agencies[0]).exists():
        return
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    anna, ben, clara, emil = users["anna"], users["ben"], users["clara"], users["emil"]
    yilmaz = Family.objects.filter(owner=agencies[0]).order_by("reference").first()
    if yilmaz is None:
        return
    today = timezone.localdate()
    _oral_consent(
        yilmaz,
        recipients=[agencies[1], agencies[2]],
        categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT, DataCategory.CHILDREN],
        purposes=[Purpose.CASE_COORDINATION],
        note="Demo: mündlich erteilt vor der Familienkonferenz.",
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


def _oral_consent(
    family: Family,
    *,
    recipients: list[Agency],
    categories: list[str],
    purposes: list[str],
    note: str,
    by: User,
) -> None:
    """The first adult's consent, given orally and recorded by BY, for a year from today."""
    today = timezone.localdate()
    core.grant_consent(
        family,
        data=core.ConsentData(
            recipients=recipients,
            categories=categories,
            purposes=purposes,
            valid_from=today,
            valid_until=today + timedelta(days=365),
            given_by=family.members.get(position=0),
            capacity=Consent.Capacity.ADULT_SELF,
            method=Consent.Method.ORAL_RECORDED,
            witness_note=note,
            text_version="2026-1",
        ),
        by=by,
    )


# A second project with enough families that the Strukturkonferenz report has figures to
# show (cells of five families and more), made through the real actions like the rest.
FIGURES_PROJECT = "Familienlotsen Gladbeck-Nord (Demo-Statistik)"
FIGURES_COACH = "lea@demo.dienstweg.invalid"
FIRST = ["Anna", "Sevgi", "Olga", "Maria", "Fatma", "Ines", "Nadia", "Jana", "Emine", "Lena"]
LAST = ["Arslan", "Becker", "Celik", "Dąbrowski", "Engel", "Fischer", "Günther", "Hoxha"]
CHILDREN = ["Mia", "Ali", "Noah", "Lina", "Emir", "Sofia", "Ben", "Ela"]


def load_figures(families: int = 36) -> None:
    """Once: FAMILIES families of the second project with consents, referrals (most to the
    Jobcenter, some to the Jugendamt and the Sozialamt; many answered), Familienkonferenzen
    with agreements in every state and gap, and tagged applications."""
    if Agency.objects.filter(name=FIGURES_PROJECT).exists():
        return
    agencies = [Agency.objects.get(name=row[0]) for row in AGENCIES]
    users = {person.local: User.objects.get(email=email_of(person)) for person in PEOPLE}
    project = core.create_agency(
        name=FIGURES_PROJECT,
        kind=Agency.Kind.PROJECT,
        rechtskreis=Agency.Rechtskreis.OTHER,
        description="Fiktives Projekt: füllt den Bericht der Strukturkonferenz mit Zahlen.",
    )
    lea = core.create_staff(FIGURES_COACH, full_name="Lea Lorenz", password=None)
    core.add_membership(lea, agency=project, role=Role.LEAD, by=None)  # she coaches too
    jobcenter, jugendamt, sozialamt = agencies[1], agencies[2], agencies[3]
    for number in range(families):
        last = LAST[number % len(LAST)]
        members = [
            core.MemberData(
                "adult",
                FIRST[number % len(FIRST)],
                last,
                date(1980 + number % 15, 1 + number % 12, 1 + number % 27),
            )
        ]
        if number % 6:  # five in six families with a child
            members.append(
                core.MemberData(
                    "child",
                    CHILDREN[number % len(CHILDREN)],
                    last,
                    date(2015 + number % 8, 1 + number % 12, 2),
                )
            )
        family = core.register_family(
            owner=project, members=members, address=f"Nordstraße {number + 1}, 45966 Gladbeck",
            phone="", notes="Fiktive Demo-Familie.", by=lea,
        )  # fmt: skip
        _oral_consent(
            family,
            recipients=[jobcenter, jugendamt, sozialamt],
            categories=[
                DataCategory.IDENTITY,
                DataCategory.HOUSEHOLD,
                DataCategory.EMPLOYMENT,
                DataCategory.CHILDREN,
                DataCategory.HOUSING,
            ],
            purposes=[Purpose.REFERRAL, Purpose.CASE_COORDINATION, Purpose.APPLICATION_SUPPORT],
            note="Demo",
            by=lea,
        )
        _refer_and_answer(family, number, lea, users, jobcenter, jugendamt, sozialamt)
        if number < 18:
            _conference(family, number, lea, users, jobcenter, jugendamt)
        if number % 3 == 0:
            _tag(family, number, lea, users, jobcenter)


def _refer_and_answer(
    family: Family, number: int, lea: User, users: dict[str, User], *targets: Agency
) -> None:
    jobcenter, jugendamt, sozialamt = targets
    plan = [(jobcenter, DataCategory.EMPLOYMENT, NeedKind.WORK)]
    if number % 3 == 1:
        plan.append((jugendamt, DataCategory.CHILDREN, NeedKind.CHILDCARE))
    if number % 4 == 2:
        plan.append((sozialamt, DataCategory.HOUSING, NeedKind.HOUSING))
    for agency, category, kind in plan:
        referral = steps.refer_family(
            family,
            data=steps.ReferralData(
                to_agency=agency, need="Demo", need_kind=kind, summary="",
                categories=[DataCategory.IDENTITY, category],
            ),
            send=True,
            by=lea,
        )  # fmt: skip
        if agency == jobcenter and number % 5 != 4:
            steps.assign_referral(referral, assignee=users["ben"], by=users["jana"])
            if number % 7 == 3:
                steps.decline_referral(referral, reason="Demo: nicht zuständig", by=users["ben"])
            else:
                steps.accept_referral(referral, by=users["ben"])
        elif agency == jugendamt and number % 2:
            steps.assign_referral(referral, assignee=users["emil"], by=users["clara"])
            steps.accept_referral(referral, by=users["emil"])


GAPS = [GapReason.WAITING_TIME, GapReason.NO_PLACE, GapReason.HURDLE_CHILDCARE]


def _conference(
    family: Family, number: int, lea: User, users: dict[str, User], *targets: Agency
) -> None:
    jobcenter, jugendamt = targets
    today = timezone.localdate()
    soon = timezone.now() + timedelta(days=1)
    conference = actions.convene_conference(
        family,
        data=actions.ConferenceData(
            starts_at=soon, duration_minutes=60, place="Familienbüro Nord", video_link="",
            agenda="", categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
            invitees=[users["ben"], users["emil"]],
        ),
        by=lea,
    )  # fmt: skip
    work = actions.record_agreement(
        conference,
        data=actions.AgreementData("Demo: Arbeitsvermittlung", jobcenter, users["ben"], today),
        by=lea,
    )
    care = actions.record_agreement(
        conference,
        data=actions.AgreementData("Demo: Betreuungsplatz", jugendamt, users["emil"], today),
        by=lea,
    )
    own = actions.record_agreement(
        conference,
        data=actions.AgreementData("Demo: Unterlagen", None, None, today + timedelta(days=30)),
        by=lea,
    )
    if number % 3 == 0:
        actions.confirm_agreement(work, by=users["ben"])
        actions.close_agreement(work, done=True, by=users["ben"])
    else:
        actions.close_agreement(work, done=False, reason=GAPS[number % 3], by=users["ben"])
    if number % 2:
        actions.close_agreement(care, done=False, reason=GapReason.NO_PLACE, by=users["emil"])
    else:
        actions.confirm_agreement(care, by=users["emil"])
    if number % 3 != 2:
        actions.close_agreement(own, done=True, by=lea)
    # Demo only: the conferences took place over the last weeks.
    Conference.objects.filter(pk=conference.pk).update(
        starts_at=soon - timedelta(days=3 + 2 * number)
    )


def _tag(family: Family, number: int, lea: User, users: dict[str, User], jobcenter: Agency) -> None:
    tag = application_actions.tag_application(
        family,
        data=application_actions.TagData(
            kind=ApplicationTag.Kind.CITIZENS_BENEFIT,
            processing_agency=jobcenter,
            submitted_on=timezone.localdate() - timedelta(days=20 + number),
        ),
        by=lea,
    )
    if number % 2 == 0:
        application_actions.record_tag_status(
            tag, state=ApplicationTag.State.DOCUMENTS_REQUESTED, note="Demo: Kontoauszüge",
            by=users["ben"],
        )  # fmt: skip
    application_actions.record_tag_status(
        tag, state=ApplicationTag.State.DECIDED,
        decided_on=timezone.localdate() - timedelta(days=number % 9), by=users["ben"],
    )  # fmt: skip
