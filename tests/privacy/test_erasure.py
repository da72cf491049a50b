"""Erasure of a family (GDPR Art. 17) by the DPO: the plan, the confirmation step that
changes nothing until reference, reason and checkbox are right, crypto-shredding of the
family's key, what is removed and what the law keeps, the sealed `family.erased` event,
and the owning project's pages, which show the family as erased.

Who does what: Pia (DPO of the project, the family's controller) erases; Anna (coach at the
project) owns the family, refers it to the Jobcenter on consent and to the Jugendamt on child
protection, tags an application and writes in the threads; Ben (Jobcenter) answers;
everybody but a DPO gets 403."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from applications.models import ApplicationTag, TagStatusChange
from audit.models import AuditEvent
from audit.verify import verify
from conferences import actions as conference_actions
from conferences.models import (
    Agreement,
    Conference,
    ConferenceUserPermission,
    Consultation,
    Invitation,
)
from dienstweg import actions as core
from dienstweg import vault
from dienstweg.actions import ActionError
from dienstweg.models import (
    Consent,
    DataCategory,
    DataKey,
    Evidence,
    Family,
    HouseholdMember,
    Notification,
    OutboxMail,
    Purpose,
    User,
)
from dienstweg.uploads import Upload
from messaging import actions as messaging
from messaging.models import Message, Participant, Thread
from privacy import erasure
from referrals.actions import erasure as referral_erasure
from referrals.models import (
    Referral,
    ReferralAttachment,
    ReferralEvent,
    ReferralGroupPermission,
)
from tests.audit.helpers import unsealed_count, wait_until_final
from tests.builders import (
    build_direct_thread,
    build_referral,
    build_referral_thread,
    build_tag,
    build_tag_thread,
    conference_data,
)
from tests.conftest import YILMAZ, Network, consent_data, member, verified_client

PDF = b"%PDF-1.4 Einwilligung mit Unterschrift"
REASON = "Antrag auf Loeschung nach Art. 17 DSGVO vom 02.03.2026"
CHILD_PROTECTION_REASON = "Emre kam dreimal mit Verletzungen in die Kita"
QUESTION = "Rückfrage zu den Unterlagen"
NAMES = sorted({name for m in YILMAZ for name in (m.first_name, m.last_name)})


@dataclass
class Case:
    family: Family
    consent: Consent
    referral: Referral  # on consent, to the Jobcenter: removed
    child_protection: Referral  # on § 8a SGB VIII, to the Jugendamt: kept as metadata
    tag: ApplicationTag
    referral_thread: Thread
    tag_thread: Thread
    direct: Thread  # Anna and Ben, no family data: untouched


def post(thread: Thread, by, body: str = QUESTION) -> None:
    messaging.post_message(thread, body=body, client_id=uuid.uuid4(), by=by)


def build_case(network: Network, family: Family) -> Case:
    consent = core.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            method=Consent.Method.SIGNED_FORM,
            witness_note="",
            evidence=PDF,
            categories=[
                DataCategory.IDENTITY,
                DataCategory.HOUSEHOLD,
                DataCategory.EMPLOYMENT,
                DataCategory.CHILDREN,
            ],
            purposes=[Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT, Purpose.CASE_COORDINATION],
        ),
        by=network.anna,
    )
    conference = conference_actions.convene_conference(
        family, data=conference_data([network.ben]), by=network.anna
    )
    conference_actions.record_agreement(
        conference,
        data=conference_actions.AgreementData(
            "Ben prüft eine Teilzeitstelle", network.jobcenter, network.ben, date.today()
        ),
        by=network.anna,
    )
    conference_actions.ask_network(
        family,
        question="Wer kennt eine Schuldnerberatung mit Kinderbetreuung?",
        agencies=[network.migration],
        by=network.anna,
    )
    referral = build_referral(
        network,
        family,
        notes={DataCategory.EMPLOYMENT: "sucht 20 Stunden"},
        attachments=[Upload("lebenslauf.pdf", PDF)],
    )
    child_protection = build_referral(
        network,
        family,
        to=network.jugendamt,
        need="Meldung nach § 8a SGB VIII",
        summary="Verletzungen, von der Kita dokumentiert.",
        categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
        basis=Referral.Basis.CHILD_PROTECTION,
        basis_reason=CHILD_PROTECTION_REASON,
        attachments=[Upload("kita-vermerk.pdf", PDF)],
        send=False,
    )
    tag = build_tag(network, family, file_number="AZ 123/26")
    referral_thread = build_referral_thread(referral, messages=[QUESTION], by=network.anna)
    post(referral_thread, network.ben, "Termin am Montag passt.")
    tag_thread = build_tag_thread(tag, messages=[QUESTION], by=network.anna)
    direct = build_direct_thread(
        by=network.anna, colleague=network.ben, messages=["Kurze Frage ohne Familienbezug"]
    )
    return Case(
        family, consent, referral, child_protection, tag, referral_thread, tag_thread, direct
    )


@pytest.fixture
def case(network: Network, family: Family) -> Case:
    return build_case(network, family)


def erase_url(family: Family) -> str:
    return reverse("console:erase", args=[family.reference])


def confirmed(family: Family, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {"reference": family.reference, "reason": REASON, "confirm": "on"}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def untouched(case: Case) -> None:
    """Nothing of the family has changed (the confirmation step was refused)."""
    family = Family.objects.get(pk=case.family.pk)
    assert family.erased_at is None
    assert family.data_key_id is not None
    assert family.decrypt_field("address") == "Horster Straße 30, 45964 Gladbeck"
    assert member(family, "Ayşe").decrypt_field("last_name") == "Yılmaz"
    assert Referral.objects.filter(family=family).count() == 2
    assert ApplicationTag.objects.filter(family=family).exists()
    assert Thread.objects.filter(family=family).count() == 2
    assert Evidence.objects.filter(family=family).exists()
    assert not AuditEvent.objects.filter(action__startswith="family.").filter(
        action__in=["family.erased", "family.key_destroyed", "family.record_erased"]
    )


# The plan


def counts(items: list[erasure.Item]) -> dict[str, int]:
    return {item.key: item.count for item in items}


def test_plan_counts_what_goes_and_what_stays_with_the_legal_reason(case: Case) -> None:
    plan = erasure.plan(case.family)
    assert counts(plan.removed) == {
        "key": 1,
        "record": 1,
        "members": 3,
        "evidence": 1,
        "referrals": 1,
        "referral_attachments": 2,
        "tags": 1,
        "conferences": 2,
        "threads": 2,
        "messages": 3,
        "notifications": Notification.objects.filter(family_ref=case.family.reference).count(),
    }
    kept = {item.key: item for item in plan.kept}
    assert kept["child_protection"].count == 1
    assert "§ 8a SGB VIII" in kept["child_protection"].reason
    assert kept["consents"].count == 1
    assert "Art. 7 Abs. 1 DSGVO" in kept["consents"].reason
    assert kept["audit"].count == AuditEvent.objects.filter(family_id=str(case.family.pk)).count()
    assert "Art. 5 Abs. 2 DSGVO" in kept["audit"].reason
    assert kept["statutory"].count == 0
    assert all(item.reason for item in plan.kept)


# The erasure itself


def test_erasure_destroys_the_key_so_no_copy_can_be_read(
    pia: User, case: Case, network: Network
) -> None:
    key_id = case.family.data_key_id
    backup = bytes(Family.objects.get(pk=case.family.pk).address_enc)  # a copy, as in a backup

    erasure.erase_family(case.family, by=pia, reason=REASON)

    family = Family.objects.get(pk=case.family.pk)
    assert family.data_key is None
    assert not DataKey.objects.filter(pk=key_id).exists()
    with pytest.raises(vault.VaultError):
        vault.decrypt(
            family.data_key, backup, table="dienstweg_family", row=family.pk, field="address"
        )
    assert family.is_erased
    assert family.reference == case.family.reference  # the tombstone keeps the reference


def test_household_plaintext_is_gone_and_the_members_are_anonymous(
    pia: User, case: Case, network: Network
) -> None:
    index = core.identity_index("Ayşe", "Yılmaz", YILMAZ[0].birth_date)
    erasure.erase_family(case.family, by=pia, reason=REASON)

    family = Family.objects.get(pk=case.family.pk)
    for field in ("address", "phone", "notes", "restriction_reason"):
        assert bytes(getattr(family, f"{field}_enc")) == b""
    members = list(HouseholdMember.objects.filter(family=family))
    assert len(members) == 3  # consents name who gave them: the rows stay, anonymous
    for row in members:
        assert bytes(row.first_name_enc) == bytes(row.last_name_enc) == b""
        assert bytes(row.birth_date_enc) == b""
        assert row.identity_index == ""
    assert not HouseholdMember.objects.filter(identity_index=index).exists()


def test_referrals_tags_and_threads_are_removed_or_kept_as_planned(
    pia: User, case: Case, network: Network
) -> None:
    erasure.erase_family(case.family, by=pia, reason=REASON)

    assert not Referral.objects.filter(pk=case.referral.pk).exists()
    assert not ReferralEvent.objects.filter(referral_id=case.referral.pk).exists()
    kept = Referral.objects.get(pk=case.child_protection.pk)
    assert kept.basis == Referral.Basis.CHILD_PROTECTION
    assert kept.to_agency_id == network.jugendamt.pk
    for name in referral_erasure.ENCRYPTED_REFERRAL_FIELDS:
        assert bytes(getattr(kept, f"{name}_enc")) == b""
    assert ReferralEvent.objects.filter(referral=kept).exists()  # its timeline: metadata
    assert not ReferralAttachment.objects.exists()
    assert not ReferralGroupPermission.objects.filter(content_object=kept).exists()
    assert not ApplicationTag.objects.exists()
    assert not TagStatusChange.objects.exists()
    assert not Thread.objects.filter(family_id=case.family.pk).exists()
    assert list(Message.objects.values_list("thread_id", flat=True)) == [case.direct.pk]
    assert Participant.objects.filter(thread=case.direct).count() == 2
    assert not Conference.objects.exists()
    assert not Agreement.objects.exists()
    assert not Invitation.objects.exists()
    assert not ConferenceUserPermission.objects.exists()
    erased = AuditEvent.objects.get(action="family.erased")
    assert erased.details["conferences_removed"] == 2
    assert not Consultation.objects.exists()


def test_consents_stay_as_metadata_without_notes_and_scans(
    pia: User, case: Case, network: Network
) -> None:
    assert OutboxMail.objects.filter(subject__contains=case.family.reference).exists()
    erasure.erase_family(case.family, by=pia, reason=REASON)

    consent = Consent.objects.get(pk=case.consent.pk)
    assert consent.evidence is None
    assert bytes(consent.witness_note_enc) == bytes(consent.revocation_note_enc) == b""
    assert consent.valid_until == case.consent.valid_until
    assert list(consent.recipients.all()) == [network.jobcenter]
    assert not Evidence.objects.exists()
    assert not Notification.objects.filter(family_ref=case.family.reference).exists()
    # Nor their e-mails, sent or not.
    assert not OutboxMail.objects.filter(subject__contains=case.family.reference).exists()


def test_records_the_erasure_with_counts_only(pia: User, case: Case, network: Network) -> None:
    result = erasure.erase_family(case.family, by=pia, reason=REASON, agency_id=network.project.pk)

    event = AuditEvent.objects.get(action="family.erased")
    assert event == result.event
    assert event.family_id == str(case.family.pk)
    assert event.family_ref == case.family.reference
    assert event.actor_id == pia.pk
    assert event.agency_id == network.project.pk
    assert event.purpose == REASON
    assert event.details["key_destroyed"] is True
    assert event.details["referrals_removed"] == 1
    assert event.details["referrals_kept"] == 1
    assert event.details["messages_removed"] == 3
    assert all(isinstance(v, int | bool) for v in event.details.values())
    # Each app's part is recorded too, in the same transaction, under the agency the DPO
    # acts for (the family's controller).
    parts = AuditEvent.objects.filter(
        action__in=[
            "family.threads_erased",
            "family.cases_erased",
            "family.record_erased",
            "family.key_destroyed",
        ],
        family_id=str(case.family.pk),
    )
    assert sorted(parts.values_list("agency_id", flat=True)) == [network.project.pk] * 4
    # The trail about the family is kept (accountability).
    assert AuditEvent.objects.filter(family_id=str(case.family.pk), action="family.registered")


def test_erasing_twice_is_refused(pia: User, case: Case, network: Network) -> None:
    erasure.erase_family(case.family, by=pia, reason=REASON)
    before = AuditEvent.objects.count()
    with pytest.raises(ActionError, match="bereits gelöscht"):
        erasure.erase_family(case.family, by=pia, reason=REASON)
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
def test_an_empty_or_overlong_reason_changes_nothing(
    pia: User, case: Case, network: Network, reason: str
) -> None:
    with pytest.raises(ActionError):
        erasure.erase_family(case.family, by=pia, reason=reason)
    untouched(case)


def test_participants_sockets_recheck_after_commit(
    pia: User, case: Case, network: Network, django_capture_on_commit_callbacks
) -> None:
    with mock.patch("dienstweg.events.send_now") as send_now:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            erasure.erase_family(case.family, by=pia, reason=REASON)
        assert not send_now.called  # nothing leaves before the commit
        for callback in callbacks:
            callback()
    revoked = {
        user_id
        for call in send_now.call_args_list
        if call.args[1]["type"] == "access.revoked"
        for user_id in call.args[0]
    }
    assert {network.anna.pk, network.ben.pk} <= revoked


@pytest.mark.usefixtures("committed")
def test_the_erasure_event_is_sealed_and_the_trail_verifies(pia: User, network: Network) -> None:
    family = core.register_family(
        owner=network.project,
        members=YILMAZ,
        address="Horster Straße 30, 45964 Gladbeck",
        phone="02043 123456",
        notes="Notiz",
        by=network.anna,
    )
    case = build_case(network, family)
    wait_until_final()

    result = erasure.erase_family(case.family, by=pia, reason=REASON)

    number = result.seal_number
    if number is None and connection.vendor == "postgresql":
        # A transaction elsewhere in the cluster (another test run) held the fence back
        # for longer than erase_family waits; the sealer service would seal it later.
        wait_until_final()
        number = erasure.seal_now(result.event)
    assert number is not None
    assert erasure.seal_covering(result.event) == number
    assert unsealed_count() == 0
    report = verify()
    assert report.ok, report.lines()
    call_command("audit_verify")


# The pages


@pytest.mark.parametrize("persona", ["anna", "ben", "clara", "dirk"])
def test_other_roles_get_403_and_nothing_changes(
    case: Case, network: Network, persona: str
) -> None:
    client = verified_client(getattr(network, persona))
    assert client.get(erase_url(case.family)).status_code == 403
    assert client.post(erase_url(case.family), confirmed(case.family)).status_code == 403
    untouched(case)


def test_confirmation_page_shows_the_plan_without_personal_data(
    case: Case, pia_client: Client
) -> None:
    response = pia_client.get(erase_url(case.family))
    assert response.status_code == 200
    text = response.text
    assert "Wird gelöscht" in text and "Bleibt erhalten" in text
    assert "§ 8a SGB VIII" in text and "Art. 7 Abs. 1 DSGVO" in text
    assert case.family.reference in text
    for secret in [*NAMES, "Horster", "02043", "Arbeitsvermittlung", "AZ 123", "Termin"]:
        assert secret not in text
    assert AuditEvent.objects.filter(
        action="console.erasure_prepared", family_id=str(case.family.pk)
    ).exists()


def test_confirmation_page_costs_the_same_queries_however_much_the_family_holds(
    case: Case, network: Network, pia_client: Client
) -> None:
    pia_client.get(erase_url(case.family))  # warm up: sessions, permissions
    with CaptureQueriesContext(connection) as few:
        pia_client.get(erase_url(case.family))
    for _extra in range(3):
        post(case.referral_thread, network.anna)
        build_tag(network, case.family, kind=ApplicationTag.Kind.OTHER)
    with CaptureQueriesContext(connection) as many:
        pia_client.get(erase_url(case.family))
    assert len(many) == len(few)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"reference": "F-1999-0001"}, "stimmt nicht mit"),
        ({"reference": None}, "Bitte tippen Sie die Kennung"),
        ({"reason": ""}, "Bitte geben Sie den Grund der Löschung an."),
        ({"reason": "   "}, "Bitte geben Sie den Grund der Löschung an."),
        ({"confirm": None}, "Bitte bestätigen Sie"),
    ],
)
def test_wrong_reference_empty_reason_or_missing_checkbox_change_nothing(
    case: Case, pia_client: Client, changes: dict[str, object], error: str
) -> None:
    response = pia_client.post(erase_url(case.family), confirmed(case.family, **changes))
    assert response.status_code == 400
    assert error in response.text
    assert "Wird gelöscht" in response.text  # the plan again
    untouched(case)


def test_confirmed_erasure_lists_what_was_removed_and_kept(case: Case, pia_client: Client) -> None:
    response = pia_client.post(erase_url(case.family), confirmed(case.family))
    assert response.status_code == 200
    text = response.text
    assert "Gelöscht" in text and "Erhalten" in text
    assert "Dokumentationspflicht im Kinderschutz" in text
    assert Family.objects.get(pk=case.family.pk).is_erased
    assert AuditEvent.objects.filter(action="family.erased").count() == 1


def test_the_reference_is_matched_without_regard_to_case_and_spaces(
    case: Case, pia_client: Client
) -> None:
    typed = f"  {case.family.reference.lower()} "
    response = pia_client.post(erase_url(case.family), confirmed(case.family, reference=typed))
    assert response.status_code == 200
    assert Family.objects.get(pk=case.family.pk).is_erased


def test_unknown_family_gets_404_with_a_clear_message(network: Network, pia_client: Client) -> None:
    response = pia_client.get(reverse("console:erase", args=["F-1999-0001"]))
    assert response.status_code == 404
    assert "Es gibt keine Familie mit der Kennung" in response.text
    response = pia_client.post(
        reverse("console:erase", args=["F-1999-0001"]),
        {"reference": "F-1999-0001", "reason": REASON, "confirm": "on"},
    )
    assert response.status_code == 404


def test_an_erased_family_gets_a_clear_error(
    pia: User, case: Case, network: Network, pia_client: Client
):
    erasure.erase_family(case.family, by=pia, reason=REASON)
    before = AuditEvent.objects.filter(action="family.erased").count()
    page = pia_client.get(erase_url(case.family))
    assert "bereits am" in page.text and "gelöscht" in page.text
    response = pia_client.post(erase_url(case.family), confirmed(case.family))
    assert response.status_code == 409
    assert "bereits am" in response.text
    assert AuditEvent.objects.filter(action="family.erased").count() == before


def test_the_owning_project_sees_the_family_as_erased(
    pia: User, case: Case, network: Network
) -> None:
    erasure.erase_family(case.family, by=pia, reason=REASON)
    anna = verified_client(network.anna)

    page = anna.get(reverse("family_detail", args=[case.family.pk]))
    assert page.status_code == 200
    assert "wurden am" in page.text and "gelöscht" in page.text
    assert "Einwilligung erfassen" not in page.text

    listing = anna.get(reverse("family_list"))
    assert listing.status_code == 200
    assert case.family.reference in listing.text
    assert "gelöscht" in listing.text

    for name in ("consent_new", "referral_new", "tag_new"):
        response = anna.get(reverse(name, args=[case.family.pk]), follow=True)
        assert "Die Daten dieser Familie sind gelöscht." in response.text, name
