"""Referring a family (referrals/actions/ and its pages): the snapshot holds exactly the
shared data and is encrypted; sending passes the consent gate or stores nothing; the closed
loop send → assign → accept → complete, with the sender seeing every step; the state
machine's refusals; the legal-basis path with a second lead's approval; the audit event
and the timeline entry of every step.

Who does what here: Anna (coach at the project) sends; Jana (lead at the Jobcenter, made
below) assigns; Ben (caseworker at the Jobcenter) is the assignee; Lena (a second lead of
the project, made below) approves referrals on a legal basis; Clara (lead at the Jugendamt)
receives child-protection referrals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.actions import ActionError
from dienstweg.models import DataCategory, Family, Membership, Notification, Purpose, User
from referrals.actions import steps as referral_steps
from referrals.actions.steps import ReferralData
from referrals.models import (
    Referral,
    ReferralEvent,
    ReferralGroupPermission,
    ReferralUserPermission,
)
from tests.conftest import YILMAZ, Network, consent_data, make_staff, verified_client

NAMES = sorted({name for m in YILMAZ for name in (m.first_name, m.last_name)})
NEED = "Arbeitsvermittlung in Teilzeit"
SUMMARY = "Frau Y. sucht vormittags Arbeit, sobald die Betreuung geklärt ist."
EMPLOYMENT_NOTE = "Ausbildung als Friseurin, sucht 20 Stunden vormittags"
HOUSEHOLD_NOTE = "Alleinerziehend, Bürgergeld seit 2023"
# From the family record's notes field (tests/conftest.py): never part of a snapshot.
FAMILY_NOTES_PART = "Teilzeitstelle; Kita-Platz"
OUTCOME = "Vermittelt in eine Teilzeitstelle ab dem ersten März"
REASON = "Wohnort liegt außerhalb unseres Bezirks"
CHILD_PROTECTION_REASON = "Emre kam dreimal mit Verletzungen in die Kita"


@pytest.fixture
def jana(network: Network) -> User:
    """Lead at the Jobcenter: told of incoming referrals, assigns them."""
    return make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)


@pytest.fixture
def lena(network: Network) -> User:
    """A second lead of the project: approves (or refuses) referrals on a legal basis."""
    return make_staff("lena@example.org", "Lena Lange", network.project, Membership.Role.LEAD)


def referral_data(network: Network, **changes: Any) -> ReferralData:
    values: dict[str, Any] = {
        "to_agency": network.jobcenter,
        "need": NEED,
        "summary": SUMMARY,
        "categories": [DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
        "notes": {DataCategory.EMPLOYMENT: EMPLOYMENT_NOTE},
    }
    values.update(changes)
    return ReferralData(**values)


def refer(network: Network, family: Family, *, send: bool = True, **changes: Any) -> Referral:
    by = changes.pop("by", network.anna)
    return referral_steps.refer_family(
        family, data=referral_data(network, **changes), send=send, by=by
    )


def child_protection(network: Network, family: Family, *, by: User) -> Referral:
    """Submitted for approval: on a legal basis, "send" means "submit"."""
    return refer(
        network,
        family,
        by=by,
        to_agency=network.jugendamt,
        basis=Referral.Basis.CHILD_PROTECTION,
        basis_reason=CHILD_PROTECTION_REASON,
        categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
        notes={DataCategory.CHILDREN: "Hämatome am Arm, Kita hat dokumentiert"},
    )


def assigned(network: Network, family: Family, jana: User) -> Referral:
    referral = refer(network, family)
    return referral_steps.assign_referral(referral, assignee=network.ben, by=jana)


def snapshot_of(referral: Referral) -> dict[str, Any]:
    referral.refresh_from_db()
    return json.loads(referral.decrypt_field("snapshot"))


def raw_row(referral: Referral) -> tuple[bytes, bytes]:
    """snapshot_enc and need_enc as the database holds them (no model, no decryption)."""
    pk = Referral._meta.pk.get_db_prep_value(referral.pk, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute("SELECT snapshot_enc, need_enc FROM referrals_referral WHERE id = %s", [pk])
        snapshot, need = cursor.fetchone()
    return bytes(snapshot), bytes(need)


def referral_audit(*actions_: str) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(action__startswith="referral.").order_by("id")
    if actions_:
        events = events.filter(action__in=actions_)
    return list(events)


def receiver_can_view(user: User, referral: Referral) -> bool:
    return ReferralGroupPermission.objects.filter(
        content_object=referral, group__user=user, permission__codename="view_referral"
    ).exists()


def detail(referral: Referral) -> str:
    return reverse("referral_detail", args=[referral.pk])


def step(client: Client, name: str, referral: Referral, **data: Any) -> list[str]:
    """POST one step of the referral's page and return the messages shown afterwards."""
    response = client.post(reverse(name, args=[referral.pk]), data, follow=True)
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def written(referral: Referral) -> int:
    """The referral's audit events of writes (opening its page records a read, a refused
    step records the refusal)."""
    return (
        AuditEvent.objects.filter(target_id=str(referral.pk), action__startswith="referral.")
        .exclude(action__in=["referral.viewed", "referral.step_refused"])
        .count()
    )


def unchanged(referral: Referral) -> Callable[[], None]:
    """Call the result after a refused step: state, timeline and trail are as before."""
    referral.refresh_from_db()
    before = (referral.state, referral.updated_at, referral.events.count(), written(referral))

    def check() -> None:
        referral.refresh_from_db()
        after = (
            referral.state,
            referral.updated_at,
            referral.events.count(),
            written(referral),
        )
        assert after == before

    return check


# The snapshot: exactly the shared data, encrypted


def test_send_with_covering_consent_delivers_exactly_the_shared_data(network, family, consent):
    referral = refer(
        network,
        family,
        categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD, DataCategory.EMPLOYMENT],
        notes={DataCategory.EMPLOYMENT: EMPLOYMENT_NOTE},
    )

    assert referral.state == Referral.State.SENT
    assert snapshot_of(referral) == {
        "notes": {"employment": EMPLOYMENT_NOTE},  # household shared, but nothing written
        "identity": {
            "members": [
                {"kind": "adult", "name": "Ayşe Yılmaz", "birth_date": "1988-04-12"},
                {"kind": "child", "name": "Leyla Yılmaz", "birth_date": "2010-01-20"},
                {"kind": "child", "name": "Emre Yılmaz", "birth_date": "2016-09-01"},
            ],
            "address": "Horster Straße 30, 45964 Gladbeck",
            "phone": "02043 123456",
        },
    }
    assert list(referral.consents.all()) == [consent]
    assert referral.access_until == consent.valid_until
    assert referral.sent_at is not None
    assert not referral.dpo_review
    assert receiver_can_view(network.ben, referral)


def test_snapshot_without_identity_category_holds_no_identity_data(network, family, consent):
    referral = refer(network, family, categories=[DataCategory.EMPLOYMENT])

    snapshot = snapshot_of(referral)
    assert snapshot == {"notes": {"employment": EMPLOYMENT_NOTE}}
    text = json.dumps(snapshot, ensure_ascii=False)
    for absent in [*NAMES, "Horster", "02043", "1988"]:
        assert absent not in text


def test_snapshot_never_holds_the_family_notes_field(network, family, consent):
    referral = refer(
        network,
        family,
        categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD, DataCategory.EMPLOYMENT],
        notes={DataCategory.HOUSEHOLD: HOUSEHOLD_NOTE, DataCategory.EMPLOYMENT: EMPLOYMENT_NOTE},
    )

    text = json.dumps(snapshot_of(referral), ensure_ascii=False)
    assert HOUSEHOLD_NOTE in text
    assert FAMILY_NOTES_PART not in text
    assert "notes" not in snapshot_of(referral)["identity"]


def test_notes_under_a_category_not_shared_are_refused(network, family, consent):
    with pytest.raises(ActionError, match="Angaben nur zu gewählten Datenkategorien"):
        refer(
            network,
            family,
            categories=[DataCategory.EMPLOYMENT],
            notes={DataCategory.HOUSEHOLD: HOUSEHOLD_NOTE},
        )
    assert not Referral.objects.exists()


def test_page_sends_only_the_notes_of_checked_categories(network, family, consent, anna_client):
    response = anna_client.post(
        reverse("referral_new", args=[family.pk]),
        {
            "to_agency": network.jobcenter.pk,
            "need": NEED,
            "summary": SUMMARY,
            "categories": ["employment"],
            "note_employment": EMPLOYMENT_NOTE,
            "note_household": HOUSEHOLD_NOTE,  # written, but the category is not checked
            "send": "",
        },
    )

    referral = Referral.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail(referral)
    assert referral.state == Referral.State.SENT
    assert referral.categories == ["employment"]
    assert snapshot_of(referral) == {"notes": {"employment": EMPLOYMENT_NOTE}}
    assert HOUSEHOLD_NOTE not in referral.decrypt_field("category_notes")


def test_snapshot_and_need_are_encrypted_in_the_database_row(network, family, consent):
    referral = refer(network, family)

    snapshot, need = raw_row(referral)
    assert snapshot and need
    for plaintext in [*NAMES, "Horster Straße", "02043 123456", EMPLOYMENT_NOTE, "1988-04-12"]:
        assert plaintext.encode() not in snapshot
    assert NEED.encode() not in need
    assert b"Arbeitsvermittlung" not in need
    # The same row does hold them, encrypted: the test would notice an empty snapshot.
    assert "Ayşe Yılmaz" in referral.decrypt_field("snapshot")
    assert referral.decrypt_field("need") == NEED


# Sending without a covering consent


@pytest.mark.parametrize(
    ("case", "changes", "message"),
    [
        ("no consent", {}, "Keine gültige Einwilligung"),
        (
            "category not covered",
            {"categories": [DataCategory.EMPLOYMENT, DataCategory.HEALTH]},
            "Gesundheit und Behinderung",
        ),
        ("agency not named", {"to_agency": "jugendamt"}, "Keine gültige Einwilligung"),
    ],
)
def test_send_without_covering_consent_is_refused_and_stores_nothing(
    request, network, family, case, changes, message
):
    if case != "no consent":
        request.getfixturevalue("consent")
    if changes.get("to_agency") == "jugendamt":
        changes = {**changes, "to_agency": network.jugendamt}

    with pytest.raises(ActionError, match=message) as refused:
        refer(network, family, **changes)

    assert "Es wurde nichts gesendet." in str(refused.value)
    assert not Referral.objects.exists()
    assert not ReferralGroupPermission.objects.exists()
    assert not ReferralUserPermission.objects.exists()
    assert not ReferralEvent.objects.exists()
    assert referral_audit() == []
    assert not Notification.objects.exists()


def test_sending_a_draft_without_consent_leaves_the_draft_unsent(network, family):
    draft = refer(network, family, send=False)

    with pytest.raises(ActionError, match="Keine gültige Einwilligung"):
        referral_steps.send_referral(draft, by=network.anna)

    draft.refresh_from_db()
    assert draft.state == Referral.State.DRAFT
    assert draft.sent_at is None
    assert bytes(draft.snapshot_enc) == b""
    assert not receiver_can_view(network.ben, draft)
    assert [e.action for e in referral_audit()] == ["referral.drafted"]
    assert list(draft.events.values_list("verb", flat=True)) == ["drafted"]


# The form


def test_form_offers_only_consented_agencies_and_categories(network, family, consent, anna_client):
    # Migration office named, but only for application support; the Jugendamt for referral,
    # but revoked: neither is offered, nor are their categories.
    core.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.migration],
            categories=[DataCategory.MIGRATION],
            purposes=[Purpose.APPLICATION_SUPPORT],
        ),
        by=network.anna,
    )
    revoked = core.grant_consent(
        family,
        data=consent_data(
            network, family, recipients=[network.jugendamt], categories=[DataCategory.HEALTH]
        ),
        by=network.anna,
    )
    core.revoke_consent(revoked, note="", by=network.anna)

    response = anna_client.get(reverse("referral_new", args=[family.pk]))

    form = response.context["form"]
    assert list(form.fields["to_agency"].queryset) == [network.jobcenter]
    assert [value for value, _label in form.fields["categories"].choices] == [
        "identity",
        "household",
        "employment",
    ]
    notes = {name for name in form.fields if name.startswith("note_")}
    assert {"note_household", "note_employment"} <= notes
    assert notes <= {"note_identity", "note_household", "note_employment"}


def test_form_refuses_an_agency_the_consent_does_not_name(network, family, consent, anna_client):
    response = anna_client.post(
        reverse("referral_new", args=[family.pk]),
        {
            "to_agency": network.jugendamt.pk,
            "need": NEED,
            "categories": ["employment"],
            "send": "",
        },
    )

    assert response.status_code == 200
    assert "to_agency" in response.context["form"].errors
    assert not Referral.objects.exists()


def test_form_without_a_consent_says_nothing_can_be_sent(network, family, anna_client):
    response = anna_client.get(reverse("referral_new", args=[family.pk]))

    assert list(response.context["form"].fields["to_agency"].queryset) == []
    assert "Keine gültige Einwilligung erlaubt eine Vermittlung." in response.content.decode()


# The closed loop


def test_closed_loop_through_the_pages(
    network, family, consent, jana, anna_client, mailoutbox, django_capture_on_commit_callbacks
):
    anna, ben = anna_client, verified_client(network.ben)
    lead = verified_client(jana)

    def sender_sees(state_label: str) -> str:
        response = anna.get(detail(referral))
        assert response.status_code == 200
        page = response.content.decode()
        assert f'<span class="badge">{state_label}</span>' in page
        return page

    with django_capture_on_commit_callbacks(execute=True):
        anna.post(
            reverse("referral_new", args=[family.pk]),
            {
                "to_agency": network.jobcenter.pk,
                "need": NEED,
                "categories": ["identity", "employment"],
                "note_employment": EMPLOYMENT_NOTE,
                "send": "",
            },
        )
        referral = Referral.objects.get()
        sender_sees("gesendet")

        assert step(lead, "referral_assign", referral, assignee=network.ben.pk) == ["Zugewiesen."]
        assert "Ben Becker" in sender_sees("gesendet")

        assert step(ben, "referral_accept", referral) == ["Angenommen."]
        sender_sees("angenommen")

        assert step(ben, "referral_complete", referral, note=OUTCOME) == ["Abgeschlossen."]
        assert OUTCOME in sender_sees("abgeschlossen")

    referral.refresh_from_db()
    assert referral.state == Referral.State.COMPLETED
    assert referral.decrypt_field("outcome") == OUTCOME
    assert list(referral.events.values_list("verb", "by")) == [
        ("drafted", network.anna.pk),
        ("sent", network.anna.pk),
        ("assigned", jana.pk),
        ("accepted", network.ben.pk),
        ("completed", network.ben.pk),
    ]
    notifications = list(Notification.objects.order_by("pk"))
    assert [(n.user, n.kind) for n in notifications] == [
        (jana, "referral.received"),
        (network.ben, "referral.assigned"),
        (network.anna, "referral.accepted"),
        (network.anna, "referral.completed"),
    ]
    assert {(n.family_ref, n.url) for n in notifications} == {(family.reference, detail(referral))}
    assert [message.to for message in mailoutbox] == [
        [jana.email],
        [network.ben.email],
        [network.anna.email],
        [network.anna.email],
    ]
    for message in mailoutbox:
        text = message.subject + "\n" + message.body
        assert family.reference in text
        assert detail(referral) in message.body
        for secret in [*NAMES, NEED, OUTCOME, EMPLOYMENT_NOTE]:
            assert secret not in text


def test_decline_with_reason_is_shown_to_the_sender(network, family, consent, jana, anna_client):
    referral = assigned(network, family, jana)

    messages = step(verified_client(network.ben), "referral_decline", referral, note=REASON)

    assert messages == ["Abgelehnt."]
    referral.refresh_from_db()
    assert referral.state == Referral.State.DECLINED
    assert referral.answered_at is not None
    page = anna_client.get(detail(referral)).content.decode()
    assert '<span class="badge">abgelehnt</span>' in page
    assert "Grund der Ablehnung" in page
    assert REASON in page
    assert Notification.objects.filter(user=network.anna, kind="referral.declined").count() == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_decline_without_a_reason_is_refused(network, family, consent, jana, reason):
    referral = assigned(network, family, jana)
    check = unchanged(referral)

    messages = step(verified_client(network.ben), "referral_decline", referral, note=reason)

    assert messages == ["Bitte geben Sie einen Grund für die Ablehnung an."]
    check()
    assert referral.state == Referral.State.SENT
    with pytest.raises(ActionError, match="Grund für die Ablehnung"):
        referral_steps.decline_referral(referral, reason=reason, by=network.ben)
    check()


def test_withdraw_while_sent_removes_the_receivers_access(
    network, family, consent, jana, anna_client
):
    referral = assigned(network, family, jana)
    ben = verified_client(network.ben)
    assert ben.get(detail(referral)).status_code == 200

    assert step(anna_client, "referral_withdraw", referral) == ["Zurückgezogen."]

    referral.refresh_from_db()
    assert referral.state == Referral.State.WITHDRAWN
    assert referral.closed_at is not None
    assert ben.get(detail(referral)).status_code == 404
    assert verified_client(jana).get(detail(referral)).status_code == 404
    assert not receiver_can_view(network.ben, referral)
    assert not ReferralUserPermission.objects.filter(content_object=referral).exists()
    assert sorted(
        Notification.objects.filter(kind="referral.withdrawn").values_list("user", flat=True)
    ) == sorted([jana.pk, network.ben.pk])
    page = anna_client.get(detail(referral)).content.decode()
    assert '<span class="badge">zurückgezogen</span>' in page


def test_withdraw_after_accept_is_refused(network, family, consent, jana, anna_client):
    referral = referral_steps.accept_referral(assigned(network, family, jana), by=network.ben)
    check = unchanged(referral)

    messages = step(anna_client, "referral_withdraw", referral)

    assert messages == ["Nicht möglich: Die Vermittlung ist bereits „angenommen“."]
    check()
    assert verified_client(network.ben).get(detail(referral)).status_code == 200


# Steps the state machine refuses


def test_completing_a_declined_referral_is_refused(network, family, consent, jana):
    referral = referral_steps.decline_referral(
        assigned(network, family, jana), reason=REASON, by=network.ben
    )
    check = unchanged(referral)

    with pytest.raises(ActionError, match="Nicht möglich: Die Vermittlung ist bereits „abgelehnt“"):
        referral_steps.complete_referral(referral, outcome=OUTCOME, by=network.ben)

    check()
    assert referral.decrypt_field("outcome") == ""


def test_accepting_twice_is_refused_with_a_clear_message(network, family, consent, jana):
    referral = assigned(network, family, jana)
    ben = verified_client(network.ben)
    assert step(ben, "referral_accept", referral) == ["Angenommen."]
    check = unchanged(referral)

    messages = step(ben, "referral_accept", referral)

    assert messages == ["Nicht möglich: Die Vermittlung ist bereits „angenommen“."]
    check()
    assert ReferralEvent.objects.filter(referral=referral, verb="accepted").count() == 1


@pytest.mark.parametrize("who", ["jana", "anna", "dirk"])
def test_only_the_assignee_accepts(network, family, consent, jana, who):
    referral = assigned(network, family, jana)
    check = unchanged(referral)
    user = jana if who == "jana" else getattr(network, who)

    with pytest.raises(ActionError, match="nicht berechtigt"):
        referral_steps.accept_referral(referral, by=user)

    check()
    assert referral.state == Referral.State.SENT


def test_receiving_caseworker_cannot_accept_an_unassigned_referral(network, family, consent):
    referral = refer(network, family)
    check = unchanged(referral)

    messages = step(verified_client(network.ben), "referral_accept", referral)

    assert messages == ["Dazu sind Sie bei dieser Vermittlung nicht berechtigt."]
    check()


def test_approving_ones_own_legal_basis_referral_is_refused(network, family, lena):
    referral = child_protection(network, family, by=lena)
    check = unchanged(referral)

    messages = step(verified_client(lena), "referral_approve", referral)

    assert messages == ["Dazu sind Sie bei dieser Vermittlung nicht berechtigt."]
    check()
    assert referral.state == Referral.State.PENDING_APPROVAL
    assert referral.approved_by is None


def test_a_coach_cannot_approve(network, family, lena):
    referral = child_protection(network, family, by=lena)
    check = unchanged(referral)

    with pytest.raises(ActionError, match="nicht berechtigt"):
        referral_steps.approve_referral(referral, by=network.anna)

    check()


# The legal-basis path


@pytest.mark.parametrize(
    ("basis", "agency", "message"),
    [
        ("child_protection", "jobcenter", "geht an das Jugendamt"),
        ("child_protection", "migration", "geht an das Jugendamt"),
        ("statutory", "migration", "nur an Sozialleistungsträger"),
    ],
)
def test_legal_basis_to_the_wrong_kind_of_agency_is_refused(
    network, family, basis, agency, message
):
    with pytest.raises(ActionError, match=message):
        refer(
            network,
            family,
            to_agency=getattr(network, agency),
            basis=basis,
            basis_reason=CHILD_PROTECTION_REASON,
        )

    assert not Referral.objects.exists()
    assert referral_audit() == []


def test_legal_basis_needs_a_reason(network, family):
    with pytest.raises(ActionError, match="Bitte begründen Sie die Übermittlung"):
        refer(network, family, to_agency=network.jugendamt, basis="child_protection")
    assert not Referral.objects.exists()


def test_child_protection_form_offers_only_the_jugendamt(network, family, anna_client):
    response = anna_client.get(
        reverse("referral_new", args=[family.pk]) + "?grundlage=child_protection"
    )

    assert list(response.context["form"].fields["to_agency"].queryset) == [network.jugendamt]
    assert response.context["form"].fields["basis_reason"].required


def test_submitted_referral_waits_for_approval_unseen_by_the_receiver(network, family, lena):
    referral = child_protection(network, family, by=network.anna)

    referral.refresh_from_db()
    assert referral.state == Referral.State.PENDING_APPROVAL
    assert referral.sent_at is None
    assert bytes(referral.snapshot_enc) == b""
    assert not receiver_can_view(network.clara, referral)
    clara = verified_client(network.clara)
    assert clara.get(detail(referral)).status_code == 404
    assert list(clara.get(reverse("referral_inbox")).context["page"].object_list) == []
    assert not Notification.objects.filter(user=network.clara).exists()
    # The other lead of the project is asked; the coach who submitted it is not.
    assert list(
        Notification.objects.filter(kind="referral.approval_requested").values_list(
            "user", flat=True
        )
    ) == [lena.pk]


def test_approval_by_a_second_lead_sends_for_dpo_review(network, family, lena, anna_client):
    referral = child_protection(network, family, by=network.anna)

    messages = step(verified_client(lena), "referral_approve", referral)

    assert messages == ["Freigegeben und gesendet."]
    referral.refresh_from_db()
    assert referral.state == Referral.State.SENT
    assert referral.dpo_review is True
    assert referral.approved_by == lena
    assert referral.access_until is None  # no consent ends it
    assert "Emre Yılmaz" in referral.decrypt_field("snapshot")
    (approved,) = referral_audit("referral.approved")
    assert approved.actor_id == lena.pk
    assert approved.family_id == str(family.pk)
    assert "§ 8a SGB VIII" in approved.purpose
    (delivered,) = referral_audit("referral.delivered")
    assert delivered.details["dpo_review"] is True
    assert "§ 8a SGB VIII" in delivered.purpose
    page = verified_client(network.clara).get(detail(referral))
    assert page.status_code == 200
    assert CHILD_PROTECTION_REASON in page.content.decode()
    assert Notification.objects.filter(user=network.clara, kind="referral.received").exists()
    assert Notification.objects.filter(user=network.anna, kind="referral.approved").exists()
    assert "zur Prüfung durch den Datenschutz" in anna_client.get(detail(referral)).content.decode()


def test_refused_approval_sends_nothing(network, family, lena, anna_client):
    referral = child_protection(network, family, by=network.anna)
    note = "Anhaltspunkte reichen nicht; erst Gespräch mit der Kita"

    messages = step(verified_client(lena), "referral_refuse", referral, note=note)

    assert messages == ["Freigabe verweigert."]
    referral.refresh_from_db()
    assert referral.state == Referral.State.REFUSED
    assert referral.sent_at is None
    assert bytes(referral.snapshot_enc) == b""
    assert not receiver_can_view(network.clara, referral)
    assert verified_client(network.clara).get(detail(referral)).status_code == 404
    assert referral_audit("referral.delivered") == []
    page = anna_client.get(detail(referral)).content.decode()
    assert "Grund der verweigerten Freigabe" in page
    assert note in page
    with pytest.raises(ActionError, match="bereits „Freigabe verweigert“"):
        referral_steps.approve_referral(referral, by=lena)


def test_refusing_approval_needs_a_reason(network, family, lena):
    referral = child_protection(network, family, by=network.anna)
    check = unchanged(referral)

    with pytest.raises(ActionError, match="Bitte begründen Sie die Ablehnung der Freigabe"):
        referral_steps.refuse_referral(referral, note=" ", by=lena)

    check()


# Audit trail and timeline


def _draft(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return refer(ctx["network"], ctx["family"], send=False), ctx["network"].anna


def _send(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return refer(ctx["network"], ctx["family"]), ctx["network"].anna


def _submit(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return child_protection(ctx["network"], ctx["family"], by=ctx["network"].anna), ctx[
        "network"
    ].anna


def _approve(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _anna = _submit(ctx)
    return referral_steps.approve_referral(referral, by=ctx["lena"]), ctx["lena"]


def _refuse(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _anna = _submit(ctx)
    return referral_steps.refuse_referral(referral, note="nein", by=ctx["lena"]), ctx["lena"]


def _assign(ctx: dict[str, Any]) -> tuple[Referral, User]:
    return assigned(ctx["network"], ctx["family"], ctx["jana"]), ctx["jana"]


def _accept(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _jana = _assign(ctx)
    ben = ctx["network"].ben
    return referral_steps.accept_referral(referral, by=ben), ben


def _decline(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, _jana = _assign(ctx)
    ben = ctx["network"].ben
    return referral_steps.decline_referral(referral, reason=REASON, by=ben), ben


def _complete(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, ben = _accept(ctx)
    return referral_steps.complete_referral(referral, outcome=OUTCOME, by=ben), ben


def _withdraw(ctx: dict[str, Any]) -> tuple[Referral, User]:
    referral, anna = _send(ctx)
    return referral_steps.withdraw_referral(referral, by=anna), anna


STEPS: dict[str, tuple[Callable[[dict[str, Any]], tuple[Referral, User]], str]] = {
    # audit action: (how to get there, the side whose agency the event names)
    "drafted": (_draft, "project"),
    "sent": (_send, "project"),
    "delivered": (_send, "project"),
    "submitted": (_submit, "project"),
    "approved": (_approve, "project"),
    "refused": (_refuse, "project"),
    "assigned": (_assign, "to_agency"),
    "accepted": (_accept, "to_agency"),
    "declined": (_decline, "to_agency"),
    "completed": (_complete, "to_agency"),
    "withdrawn": (_withdraw, "project"),
}


@pytest.mark.parametrize("verb", list(STEPS))
def test_every_step_records_its_audit_event_with_the_family(
    network, family, consent, jana, lena, verb
):
    run, side = STEPS[verb]

    referral, actor = run({"network": network, "family": family, "jana": jana, "lena": lena})

    (event,) = referral_audit(f"referral.{verb}")
    assert event.actor_id == actor.pk
    assert event.family_id == str(family.pk)
    assert event.family_ref == family.reference
    assert (event.target_type, event.target_id) == ("referrals.referral", str(referral.pk))
    expected_agency = network.project if side == "project" else referral.to_agency
    assert event.agency_id == expected_agency.pk
    assert event.purpose.startswith("Vermittlung:") or verb == "drafted"


def test_timeline_has_one_event_per_step(network, family, consent, jana):
    referral = referral_steps.complete_referral(
        referral_steps.accept_referral(assigned(network, family, jana), by=network.ben),
        outcome=OUTCOME,
        by=network.ben,
    )

    assert list(referral.events.values_list("verb", "state")) == [
        ("drafted", "draft"),
        ("sent", "sent"),
        ("assigned", "sent"),
        ("accepted", "accepted"),
        ("completed", "completed"),
    ]
    # The trail has the same steps, one each (plus the delivery of the snapshot).
    assert [e.action for e in referral_audit()] == [
        "referral.drafted",
        "referral.sent",
        "referral.delivered",
        "referral.assigned",
        "referral.accepted",
        "referral.completed",
    ]
    timeline = verified_client(network.ben).get(detail(referral)).context["events"]
    assert [event.verb for event in timeline] == [
        "drafted",
        "sent",
        "assigned",
        "accepted",
        "completed",
    ]


def test_legal_basis_timeline_has_one_event_per_step(network, family, lena):
    referral = referral_steps.approve_referral(
        child_protection(network, family, by=network.anna), by=lena
    )

    assert list(referral.events.values_list("verb", "state", "by")) == [
        ("drafted", "draft", network.anna.pk),
        ("submitted", "pending_approval", network.anna.pk),
        ("approved", "sent", lena.pk),
    ]
