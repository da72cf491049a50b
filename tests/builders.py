"""Builders for the objects tests set up on top of the personas: referrals, application
tags and threads, made through the real actions (consent gate, permissions, audit), so a
test never holds a row the platform could not have made. Defaults are Anna's referral of
the Yılmaz family to the Jobcenter and her Bürgergeld tag there; tests/conftest.py's
consent covers both."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from django.utils import timezone

from applications import actions as application_actions
from applications.models import ApplicationTag
from conferences import actions as conference_actions
from dienstweg import actions as core
from dienstweg.models import Agency, Consent, DataCategory, Family, Membership, Purpose, User
from dienstweg.uploads import Upload
from messaging import actions as messaging_actions
from messaging.models import Thread
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.conftest import Network, make_staff

NEED = "Arbeitsvermittlung in Teilzeit"
CONSENTED = [DataCategory.IDENTITY, DataCategory.EMPLOYMENT, DataCategory.CHILDREN]
SUMMARY = "Frau Y. sucht vormittags Arbeit."


def build_consenting_family(network: Network, number: int, *, children: bool = True) -> Family:
    """Family NUMBER of the project (a mother and, if CHILDREN, a child; names and address
    carry the number), registered by Anna, with the mother's consent for a year: to the
    Jobcenter and the Jugendamt, CONSENTED's categories, for referrals and case
    coordination."""
    members = [
        core.MemberData("adult", f"Mutter{number}", f"Familie{number}", date(1985, 1, number))
    ]
    if children:
        members.append(
            core.MemberData("child", f"Kind{number}", f"Familie{number}", date(2018, 2, number))
        )
    family = core.register_family(
        owner=network.project,
        members=members,
        address=f"Weg {number}, 45964 Gladbeck",
        phone="",
        notes="",
        by=network.anna,
    )
    core.grant_consent(
        family,
        data=core.ConsentData(
            recipients=[network.jobcenter, network.jugendamt],
            categories=CONSENTED,
            purposes=[Purpose.REFERRAL, Purpose.CASE_COORDINATION],
            valid_from=date.today(),
            valid_until=date.today() + timedelta(days=365),
            given_by=family.members.get(position=0),
            capacity=Consent.Capacity.ADULT_SELF,
            method=Consent.Method.ORAL_RECORDED,
            witness_note="mündlich",
            text_version="2026-1",
        ),
        by=network.anna,
    )
    return family


def build_referral(
    network: Network,
    family: Family,
    *,
    to: Agency | None = None,
    need: str = NEED,
    summary: str = SUMMARY,
    categories: Sequence[str] = (DataCategory.IDENTITY, DataCategory.EMPLOYMENT),
    notes: Mapping[str, str] | None = None,
    basis: str = Referral.Basis.CONSENT,
    basis_reason: str = "",
    attachments: Sequence[Upload] = (),
    send: bool = True,
    by: User | None = None,
    need_kind: str = "other",
) -> Referral:
    """Refer the family (to the Jobcenter, by Anna unless told) with refer_family: sent,
    or on a legal basis submitted for approval, unless SEND is false (a draft)."""
    return referral_steps.refer_family(
        family,
        data=referral_steps.ReferralData(
            to_agency=to or network.jobcenter,
            need=need,
            summary=summary,
            categories=list(categories),
            notes=dict(notes or {}),
            basis=basis,
            basis_reason=basis_reason,
            attachments=list(attachments),
            need_kind=need_kind,
        ),
        send=send,
        by=by or network.anna,
    )


def build_tag(
    network: Network,
    family: Family,
    *,
    kind: str = ApplicationTag.Kind.CITIZENS_BENEFIT,
    office: Agency | None = None,
    submitted_on: date | None = None,
    file_number: str = "",
    by: User | None = None,
) -> ApplicationTag:
    """Tag an application of the family with tag_application: a Bürgergeld application
    at the Jobcenter, submitted today, by Anna, unless told."""
    return application_actions.tag_application(
        family,
        data=application_actions.TagData(
            kind=kind,
            processing_agency=office or network.jobcenter,
            submitted_on=submitted_on or timezone.localdate(),
            file_number=file_number,
        ),
        by=by or network.anna,
    )


def post_messages(thread: Thread, messages: Sequence[str], *, by: User | None) -> None:
    if not messages:
        return
    if by is None:
        raise ValueError("messages need an author: by=")
    for body in messages:
        messaging_actions.post_message(thread, body=body, client_id=uuid.uuid4(), by=by)


def build_referral_thread(
    referral: Referral, *, messages: Sequence[str] = (), by: User | None = None
) -> Thread:
    """The referral's thread, opened by BY (or the referral's author) as the page's POST
    does (open_referral_thread), with MESSAGES posted in order by BY."""
    thread = messaging_actions.open_referral_thread(referral, by=by or referral.created_by)
    post_messages(thread, messages, by=by)
    return thread


def build_tag_thread(
    tag: ApplicationTag, *, messages: Sequence[str] = (), by: User | None = None
) -> Thread:
    """The application tag's thread, opened by BY (or the tag's coach) as the page's POST
    does (open_tag_thread), with MESSAGES posted in order by BY."""
    opener = by or tag.coach
    assert opener is not None, "a tag without a coach: say who opens its thread, by="
    thread = messaging_actions.open_tag_thread(tag, by=opener)
    post_messages(thread, messages, by=by)
    return thread


def build_direct_thread(*, by: User, colleague: User, messages: Sequence[str] = ()) -> Thread:
    """The direct thread BY opens with a colleague (open_direct_thread), with MESSAGES
    posted in order by BY."""
    thread = messaging_actions.open_direct_thread(colleague, by=by)
    post_messages(thread, messages, by=by)
    return thread


def project_dpo(network: Network) -> User:
    """Pia Pohl, the DPO of the project that owns the families of the tests (their
    controller's DPO: their restriction and erasure are hers), made on first use."""
    return User.objects.filter(email="pia@example.org").first() or make_staff(
        "pia@example.org", "Pia Pohl", network.project, Membership.Role.DPO
    )


def conference_data(invitees: list[User], **changes: object) -> conference_actions.ConferenceData:
    """Anna's Familienkonferenz in a week at the family office, sharing identity and
    employment data with INVITEES."""
    values: dict[str, object] = {
        "starts_at": timezone.now() + timedelta(days=7),
        "duration_minutes": 90,
        "place": "Familienbüro Gladbeck, Raum 2",
        "video_link": "",
        "agenda": "Arbeitssuche der Mutter; Kita-Platz für Emre",
        "categories": [DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
        "invitees": invitees,
        "notes": {DataCategory.EMPLOYMENT: "Sucht Teilzeit, 20 Stunden, ab März."},
    }
    values.update(changes)
    return conference_actions.ConferenceData(**values)  # type: ignore[arg-type]
