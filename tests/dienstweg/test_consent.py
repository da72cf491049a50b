"""Recording a family's consent through the page, its states on the family record, revocation,
the checks that refuse bad consents, and the encrypted evidence download."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Consent, Evidence
from tests.conftest import consent_data, member

# A tiny but valid PDF: one empty page.
PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def today():
    return timezone.localdate()


def consent_url(family) -> str:
    return f"/familien/{family.pk}/einwilligung/"


def revoke_url(consent) -> str:
    return f"/familien/{consent.family_id}/einwilligung/{consent.pk}/widerruf/"


def evidence_url(consent) -> str:
    return f"/familien/{consent.family_id}/einwilligung/{consent.pk}/nachweis/"


def pdf_upload(content: bytes = PDF, name: str = "einwilligung.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def form_data(network, family, **changes):
    """What the consent page posts: Ayşe signs for herself, Jobcenter and Jugendamt, a year."""
    data = {
        "recipients": [str(network.jobcenter.pk), str(network.jugendamt.pk)],
        "categories": ["identity", "household", "children"],
        "purposes": ["referral", "case_coordination"],
        "valid_from": today().isoformat(),
        "valid_until": (today() + timedelta(days=365)).isoformat(),
        "given_by": str(member(family, "Ayşe").pk),
        "capacity": "adult_self",
        "on_behalf_of": "",
        "method": "signed_form",
        "witness_note": "",
        "text_version": "2026-1",
        "evidence": pdf_upload(),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


# Recording


def test_signed_consent_is_stored_with_recipients_categories_and_purposes(
    network, family, anna_client
):
    response = anna_client.post(consent_url(family), form_data(network, family))

    assert response.status_code == 302
    assert response["Location"] == f"/familien/{family.pk}/"
    consent = Consent.objects.get()
    assert consent.family == family
    assert set(consent.recipients.all()) == {network.jobcenter, network.jugendamt}
    assert consent.categories == ["children", "household", "identity"]
    assert consent.purposes == ["case_coordination", "referral"]
    assert (consent.valid_from, consent.valid_until) == (today(), today() + timedelta(days=365))
    assert consent.given_by == member(family, "Ayşe")
    assert consent.capacity == Consent.Capacity.ADULT_SELF
    assert consent.method == Consent.Method.SIGNED_FORM
    assert consent.text_version == "2026-1"
    assert consent.recorded_by == network.anna
    assert consent.evidence.content_type == "application/pdf"
    assert consent.evidence.size == len(PDF)
    assert consent.evidence.decrypt_field_bytes("content") == PDF


def test_recorded_consent_shows_on_the_family_record(network, family, anna_client):
    response = anna_client.post(consent_url(family), form_data(network, family), follow=True)
    html = response.content.decode()
    assert "Einwilligung erfasst." in html
    assert network.jobcenter.name in html
    assert "Amt für Jugend und Familie" in html
    assert "Kinder, Betreuung und Schule" in html
    assert "Fallabstimmung" in html
    assert "unterschriebenes Formular" in html
    assert "Scan herunterladen" in html


def test_recording_a_consent_records_consent_granted(network, family, anna_client):
    anna_client.post(consent_url(family), form_data(network, family))
    consent = Consent.objects.get()
    event = AuditEvent.objects.get(action="consent.granted")
    assert (event.actor_id, event.target_id, event.family_id, event.family_ref) == (
        network.anna.pk,
        str(consent.pk),
        str(family.pk),
        family.reference,
    )


def test_oral_consent_with_witness_note_needs_no_evidence(network, family, anna_client):
    data = form_data(
        network,
        family,
        method="oral_recorded",
        witness_note="Belehrung durch A. Albers im Beisein von P. Peters",
        evidence=None,
    )
    response = anna_client.post(consent_url(family), data)
    assert response.status_code == 302
    consent = Consent.objects.get()
    assert consent.evidence is None
    assert (
        consent.decrypt_field("witness_note")
        == "Belehrung durch A. Albers im Beisein von P. Peters"
    )


def test_parent_consents_for_a_child(network, family, anna_client):
    emre = member(family, "Emre")
    data = form_data(network, family, capacity="parent_for_child", on_behalf_of=str(emre.pk))
    response = anna_client.post(consent_url(family), data)
    assert response.status_code == 302
    assert Consent.objects.get().on_behalf_of == emre


def test_young_person_of_sixteen_consents_for_herself(network, family, anna_client):
    leyla = member(family, "Leyla")
    assert leyla.age_on(today()) >= 15
    data = form_data(network, family, given_by=str(leyla.pk), capacity="young_person_self")
    response = anna_client.post(consent_url(family), data)
    assert response.status_code == 302
    consent = Consent.objects.get()
    assert (consent.given_by, consent.capacity) == (leyla, "young_person_self")


# States on the family record


def grant(network, family, **changes) -> Consent:
    return actions.grant_consent(
        family, data=consent_data(network, family, **changes), by=network.anna
    )


@pytest.mark.parametrize(
    ("starts", "ends", "revoked", "state", "label"),
    [
        (0, 365, False, "active", "aktiv"),
        (-400, -35, False, "expired", "abgelaufen"),
        (10, 365, False, "pending", "noch nicht gültig"),
        (0, 365, True, "revoked", "widerrufen"),
    ],
)
def test_family_record_shows_the_consent_state(
    network, family, anna_client, starts, ends, revoked, state, label
):
    consent = grant(
        network,
        family,
        valid_from=today() + timedelta(days=starts),
        valid_until=today() + timedelta(days=ends),
    )
    if revoked:
        actions.revoke_consent(consent, note="", by=network.anna)
    assert Consent.objects.get().state == state

    html = anna_client.get(f"/familien/{family.pk}/").content.decode()

    assert f'class="consent state-{state}"' in html
    assert f">{label}</span>" in html
    assert (revoke_url(consent) in html) is not revoked


# Revocation


def test_revocation_with_a_note_revokes_and_is_audited(network, family, consent, anna_client):
    response = anna_client.post(
        revoke_url(consent), {"note": "Frau Yılmaz hat angerufen", "confirm": "ja"}, follow=True
    )

    html = response.content.decode()
    assert "Die Einwilligung ist widerrufen." in html
    assert 'class="consent state-revoked"' in html
    consent.refresh_from_db()
    assert consent.state == Consent.State.REVOKED
    assert consent.revoked_by == network.anna
    assert consent.revoked_at is not None
    assert consent.decrypt_field("revocation_note") == "Frau Yılmaz hat angerufen"
    event = AuditEvent.objects.get(action="consent.revoked")
    assert (event.actor_id, event.target_id, event.family_id) == (
        network.anna.pk,
        str(consent.pk),
        str(family.pk),
    )


def test_revoking_twice_says_so_and_changes_nothing(network, family, consent, anna_client):
    anna_client.post(revoke_url(consent), {"note": "erster Widerruf", "confirm": "ja"})
    consent.refresh_from_db()
    first_revoked_at = consent.revoked_at

    response = anna_client.post(
        revoke_url(consent), {"note": "zweiter Widerruf", "confirm": "ja"}, follow=True
    )

    assert "Diese Einwilligung ist bereits widerrufen." in response.content.decode()
    consent.refresh_from_db()
    assert consent.revoked_at == first_revoked_at
    assert consent.decrypt_field("revocation_note") == "erster Widerruf"
    assert AuditEvent.objects.filter(action="consent.revoked").count() == 1


def test_revocation_by_get_only_asks(network, family, consent, anna_client):
    # The confirmation page (tests/dienstweg/test_confirmations.py); nothing is revoked.
    assert 'name="confirm"' in anna_client.get(revoke_url(consent)).content.decode()
    consent.refresh_from_db()
    assert consent.revoked_at is None


# Bad input


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param({"valid_until": ""}, "valid_until", "erforderlich", id="no-valid-until"),
        pytest.param(
            {"valid_until": (timezone.localdate() - timedelta(days=1)).isoformat()},
            None,
            "„Gültig bis“ liegt vor „gültig ab“.",
            id="until-before-from",
        ),
        pytest.param({"recipients": ["987654"]}, "recipients", "987654", id="unknown-agency"),
        pytest.param(
            {"categories": ["identity", "religion"]},
            "categories",
            "religion",
            id="unknown-category",
        ),
        pytest.param(
            {"evidence": SimpleUploadedFile("scan.pdf", b"Nur Text, kein Scan.\n", "text/plain")},
            None,
            "Der Nachweis muss ein PDF, JPEG oder PNG sein.",
            id="text-file-as-evidence",
        ),
        pytest.param(
            {"evidence": None},
            None,
            "Bitte den Scan des unterschriebenen Formulars hochladen.",
            id="signed-form-without-evidence",
        ),
        pytest.param(
            {"method": "oral_recorded", "witness_note": "  ", "evidence": None},
            None,
            "Bei mündlicher Einwilligung ist ein Zeugenvermerk nötig.",
            id="oral-without-witness-note",
        ),
        pytest.param(
            {"capacity": "parent_for_child", "on_behalf_of": ""},
            None,
            "Ein Elternteil willigt für ein Kind ein: bitte das Kind wählen.",
            id="parent-for-child-without-child",
        ),
    ],
)
def test_bad_consent_shows_a_clear_error_and_stores_nothing(
    network, family, anna_client, changes, field, message
):
    response = anna_client.post(consent_url(family), form_data(network, family, **changes))
    assert_refused(response, field, message)


def test_young_person_self_under_fifteen_is_refused(network, family, anna_client):
    emre = member(family, "Emre")
    assert emre.age_on(today()) < 15
    data = form_data(network, family, given_by=str(emre.pk), capacity="young_person_self")
    response = anna_client.post(consent_url(family), data)
    assert_refused(response, None, "Jugendliche willigen ab 15 Jahren selbst ein.")


def test_evidence_over_the_limit_is_refused(network, family, anna_client, settings):
    settings.EVIDENCE_MAX_BYTES = 200
    too_big = PDF + b"%" + b"0" * 200 + b"\n"
    response = anna_client.post(
        consent_url(family), form_data(network, family, evidence=pdf_upload(too_big))
    )
    assert_refused(response, "evidence", "Der Nachweis ist zu groß")


def test_evidence_at_the_limit_is_accepted(network, family, anna_client, settings):
    settings.EVIDENCE_MAX_BYTES = len(PDF)
    response = anna_client.post(consent_url(family), form_data(network, family))
    assert response.status_code == 302
    assert Consent.objects.get().evidence.size == len(PDF)


def assert_refused(response, field, message) -> None:
    assert response.status_code == 200
    form = response.context["form"]
    errors = form.non_field_errors() if field is None else form.errors[field]
    assert any(message in error for error in errors), errors
    html = response.content.decode()
    assert message in html
    assert 'class="error"' in html
    assert Consent.objects.count() == 0
    assert Evidence.objects.count() == 0
    assert not AuditEvent.objects.filter(action="consent.granted").exists()


# Evidence


def test_evidence_download_is_the_uploaded_pdf_and_is_audited(network, family, anna_client):
    anna_client.post(consent_url(family), form_data(network, family))
    consent = Consent.objects.get()

    response = anna_client.get(evidence_url(consent))

    assert response.status_code == 200
    assert response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="einwilligung-{family.reference}.pdf"'
    )
    event = AuditEvent.objects.get(action="consent.evidence_viewed")
    assert event.actor_id == network.anna.pk
    assert event.family_id == str(family.pk)
    assert event.details == {"consent": str(consent.pk)}


def test_consent_without_evidence_has_no_download(network, family, consent, anna_client):
    assert anna_client.get(evidence_url(consent)).status_code == 404
    assert not AuditEvent.objects.filter(action="consent.evidence_viewed").exists()


def test_evidence_is_stored_encrypted(network, family, anna_client):
    anna_client.post(consent_url(family), form_data(network, family))
    evidence = Evidence.objects.get()
    assert PDF not in bytes(evidence.content_enc)
    assert b"%PDF-" not in bytes(evidence.content_enc)
