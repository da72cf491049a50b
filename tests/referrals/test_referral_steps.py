"""Referring a family (referrals/actions/steps.py and its pages): sending passes the consent
gate or stores nothing; the form offers only what the consent covers; the closed loop
send → assign → accept → complete, with the sender seeing every step; the legal-basis path
with a second lead's approval.

Who does what here: Anna (coach at the project) sends; Jana (lead at the Jobcenter,
tests/referrals/conftest.py) assigns; Ben (caseworker at the Jobcenter) is the assignee;
Lena (a second lead of the project, tests/referrals/conftest.py) approves referrals on a
legal basis; Clara (lead at the Jugendamt) receives child-protection referrals."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dienstweg import actions as core
from dienstweg.actions import ActionError
from dienstweg.models import DataCategory, Notification, Purpose
from referrals.actions import steps as referral_steps
from referrals.models import (
    Referral,
    ReferralEvent,
    ReferralGroupPermission,
    ReferralUserPermission,
)
from tests.conftest import consent_data, verified_client
from tests.referrals.helpers import (
    CHILD_PROTECTION_REASON,
    EMPLOYMENT_NOTE,
    NAMES,
    NEED,
    OUTCOME,
    REASON,
    assigned,
    child_protection,
    detail,
    receiver_can_view,
    refer,
    referral_audit,
    step,
    unchanged,
)

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
        ("agency not named", {"to": "jugendamt"}, "Keine gültige Einwilligung"),
    ],
)
def test_send_without_covering_consent_is_refused_and_stores_nothing(
    request, network, family, case, changes, message
):
    if case != "no consent":
        request.getfixturevalue("consent")
    if changes.get("to") == "jugendamt":
        changes = {**changes, "to": network.jugendamt}

    with pytest.raises(ActionError, match=message) as refused:
        refer(network, family, **changes)

    assert "Es wurde nichts gesendet." in str(refused.value)
    assert not Referral.objects.exists()
    assert not ReferralGroupPermission.objects.exists()
    assert not ReferralUserPermission.objects.exists()
    assert not ReferralEvent.objects.exists()
    # Only the refusal is recorded (issue 14), for the family: no referral was stored.
    assert [(e.action, e.target_id) for e in referral_audit()] == [("referral.step_refused", "")]
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
    network, family, consent, jana, anna_client, send_outbox, django_capture_on_commit_callbacks
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
    mailoutbox = send_outbox()  # the actions only queued their e-mails
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

    messages = step(
        verified_client(network.ben), "referral_decline", referral, note=REASON, confirm="ja"
    )

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

    messages = step(
        verified_client(network.ben), "referral_decline", referral, note=reason, confirm="ja"
    )

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

    assert step(anna_client, "referral_withdraw", referral, confirm="ja") == ["Zurückgezogen."]

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

    messages = step(anna_client, "referral_withdraw", referral, confirm="ja")

    assert messages == ["Nicht möglich: Die Vermittlung ist bereits „angenommen“."]
    check()
    assert verified_client(network.ben).get(detail(referral)).status_code == 200


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
            to=getattr(network, agency),
            basis=basis,
            basis_reason=CHILD_PROTECTION_REASON,
        )

    assert not Referral.objects.exists()
    assert referral_audit() == []


def test_legal_basis_needs_a_reason(network, family):
    with pytest.raises(ActionError, match="Bitte begründen Sie die Übermittlung"):
        refer(network, family, to=network.jugendamt, basis="child_protection")
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
