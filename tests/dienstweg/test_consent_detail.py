"""The consent read back in full: who gave it, in which capacity, for which child, the witness
and revocation notes and the scan, to the owning project only, audited, in constant queries."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Consent
from tests.conftest import consent_data, member, verified_client
from tests.dienstweg.test_consent import PDF, form_data, pdf_upload


def detail_url(consent: Consent) -> str:
    return f"/familien/{consent.family_id}/einwilligung/{consent.pk}/"


def test_oral_consent_for_a_child_reads_back_who_for_whom_and_the_witness_note(
    network, family, anna_client
):
    consent = actions.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            capacity=Consent.Capacity.PARENT_FOR_CHILD,
            on_behalf_of=member(family, "Emre"),
        ),
        by=network.anna,
    )

    html = anna_client.get(detail_url(consent)).content.decode()

    assert "<dt>Erteilt von</dt><dd>Ayşe Yılmaz</dd>" in html
    assert "<dt>Eigenschaft</dt><dd>Elternteil für ein Kind</dd>" in html
    assert "<dt>Für das Kind</dt><dd>Emre Yılmaz</dd>" in html
    assert "Belehrung durch A. Albers im Beisein von P. Peters" in html
    assert "kein Scan (mündlich erteilt)" in html
    assert "Anna Albers" in html  # recorded by
    assert "nicht widerrufen" in html


def test_revoked_consent_shows_who_revoked_when_and_the_note(network, family, consent, anna_client):
    actions.revoke_consent(consent, note="Frau Yılmaz hat angerufen", by=network.anna)

    html = anna_client.get(detail_url(consent)).content.decode()

    assert "<dt>Widerrufen am</dt>" in html
    assert "Frau Yılmaz hat angerufen" in html
    assert "widerrufen</span>" in html
    assert "nicht widerrufen" not in html


def test_signed_consent_links_the_scan_through_the_audited_download(network, family, anna_client):
    anna_client.post(
        f"/familien/{family.pk}/einwilligung/", form_data(network, family, evidence=pdf_upload())
    )
    consent = Consent.objects.get()

    html = anna_client.get(detail_url(consent)).content.decode()
    download = f"/familien/{family.pk}/einwilligung/{consent.pk}/nachweis/"
    assert f'href="{download}"' in html
    assert "Zeugenvermerk" not in html  # a signed form has none

    response = anna_client.get(download)
    assert response.content == PDF
    assert AuditEvent.objects.filter(action="consent.evidence_viewed").count() == 1


def test_family_record_links_each_consent_to_its_full_reading(
    network, family, consent, anna_client
):
    html = anna_client.get(f"/familien/{family.pk}/").content.decode()
    assert f'href="{detail_url(consent)}"' in html


def test_reading_a_consent_is_audited_without_its_contents(network, family, consent, anna_client):
    anna_client.get(detail_url(consent))

    event = AuditEvent.objects.get(action="consent.viewed")
    assert (event.actor_id, event.family_id, event.agency_id) == (
        network.anna.pk,
        str(family.pk),
        network.project.pk,
    )
    assert event.details == {"consent": str(consent.pk)}
    assert "Belehrung" not in str(event.details)


def test_other_agencies_get_the_same_404_and_nothing_is_decrypted_for_them(
    network, family, consent
):
    # Ben's jobcenter receives under this consent, but the consent itself is the project's.
    for user in (network.ben, network.clara, network.dora):
        response = verified_client(user).get(detail_url(consent))
        assert response.status_code == 404
        assert "Belehrung" not in response.content.decode()
    assert not AuditEvent.objects.filter(action="consent.viewed").exists()


def test_a_consent_of_another_family_is_not_found_under_this_one(network, family, anna_client):
    other = actions.register_family(
        owner=network.project,
        members=[actions.MemberData("adult", "Ayşe", "Nowak", family.registered_at.date())],
        address="Hochstraße 1, 45964 Gladbeck",
        phone="",
        notes="",
        by=network.anna,
    )
    theirs = actions.grant_consent(
        other,
        data=consent_data(network, other),
        by=network.anna,
    )
    response = anna_client.get(f"/familien/{family.pk}/einwilligung/{theirs.pk}/")
    assert response.status_code == 404


def test_reading_a_consent_takes_the_same_queries_with_one_or_many_recipients(
    network, family, anna_client
):
    def queries_for(recipients) -> int:
        consent = actions.grant_consent(
            family,
            data=consent_data(
                network,
                family,
                recipients=recipients,
                capacity=Consent.Capacity.PARENT_FOR_CHILD,
                on_behalf_of=member(family, "Leyla"),
            ),
            by=network.anna,
        )
        anna_client.get(detail_url(consent))  # warm the session and the key cache alike
        with CaptureQueriesContext(connection) as queries:
            assert anna_client.get(detail_url(consent)).status_code == 200
        return len(queries)

    few = queries_for([network.jobcenter])
    many = queries_for([network.jobcenter, network.jugendamt, network.migration])
    assert few == many
