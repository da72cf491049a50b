"""The access report (GDPR Art. 15) on the console: what is held, who received what on which
consent, who consulted it when and why; staff names only when the DPO asks; no household data,
referral text or message body in any format; constant queries; an erased family still has
its report.

Who does what here: Anna (coach at the project) refers the Yılmaz family to the Jobcenter,
tags an application there and writes in the referral's thread; Ben (caseworker at the
Jobcenter) opens the referral; Pia (DPO of the project, the family's controller) produces
the report; Anna, Ben, Clara and Dirk are refused the console."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from applications.models import ApplicationTag
from audit.models import AuditEvent
from conferences import actions as conference_actions
from dienstweg import actions as core
from dienstweg.models import Consent, DataCategory, Family, Purpose, User
from privacy import reports
from privacy.erasure import erase_family
from referrals.actions import steps as referral_actions
from referrals.models import Referral
from tests.builders import build_referral, build_referral_thread, build_tag, conference_data
from tests.conftest import YILMAZ, Network, consent_data, verified_client

NEED = "Arbeitsvermittlung in Teilzeit"
SUMMARY = "Frau Y. sucht vormittags Arbeit."
NOTE = "sucht 20 Stunden"
BODY = "Termin am Dienstag um neun passt"
FILE_NUMBER = "BG-4711-0815"
# Everything that names, locates or describes the family, and the content around it.
SECRETS = sorted(
    {name for m in YILMAZ for name in (m.first_name, m.last_name)}
    | {"Yilmaz", "Ayse", "Horster", "45964", "02043", "Teilzeitstelle"}
    | {NEED, SUMMARY, NOTE, BODY, FILE_NUMBER}
)
STAFF = ["Anna Albers", "Ben Becker"]


@pytest.fixture
def referral(network: Network, family: Family, consent: Consent) -> Referral:
    """Sent to the Jobcenter on Ayşe's consent, with a message in its thread; Ben opened it."""
    referral = build_referral(
        network, family, need=NEED, summary=SUMMARY, notes={DataCategory.EMPLOYMENT: NOTE}
    )
    build_referral_thread(referral, messages=[BODY], by=network.anna)
    referral_actions.record_referral_read(
        referral, action="referral.viewed", side="receiver", by=network.ben
    )
    return referral


@pytest.fixture
def tag(network: Network, family: Family, consent: Consent) -> ApplicationTag:
    return build_tag(
        network,
        family,
        submitted_on=timezone.localdate() - timedelta(days=3),
        file_number=FILE_NUMBER,
    )


def report_url(family: Family, staff: bool = False) -> str:
    return reverse("console:access_report", args=[family.reference]) + ("?staff=1" if staff else "")


def download_url(family: Family, fmt: str, staff: bool = False) -> str:
    url = reverse("console:access_report_download", args=[family.reference, fmt])
    return url + ("?staff=1" if staff else "")


def pdf_pages(report: reports.AccessReport) -> list[str]:
    """The PDF's pages as a reader extracts their text (through the fonts' Unicode maps)."""
    pdf = reports.render_access_report_pdf(report)
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def report_events(family: Family) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="console.access_report", family_id=str(family.pk)))


def test_report_names_recipients_consents_and_consultations(
    pia_client: Client, network: Network, family: Family, referral: Referral, tag: ApplicationTag
) -> None:
    response = pia_client.get(report_url(family))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.reference == family.reference
    [sent] = report.referrals
    assert sent.to_agency == network.jobcenter.name
    assert sent.basis == Referral.Basis.CONSENT
    assert sent.categories == (DataCategory.IDENTITY, DataCategory.EMPLOYMENT)
    [relied_on] = sent.consents
    consent = Consent.objects.get(family=family)
    assert (relied_on.valid_from, relied_on.valid_until) == (
        consent.valid_from,
        consent.valid_until,
    )
    [tagged] = report.tags
    assert (tagged.processing_agency, tagged.kind) == (network.jobcenter.name, "buergergeld")
    codes = {c.code for c in report.categories}
    assert {"identity", "household", "employment"} <= codes
    assert [(c.kind, c.threads, c.messages) for c in report.communication] == [("referral", 1, 1)]
    viewed = [c for c in report.consultations if c.action == "referral.viewed"]
    assert [(c.agency, c.count, c.staff) for c in viewed] == [(network.jobcenter.name, 1, None)]
    assert "Vermittlung:" in viewed[0].purpose
    page = response.content.decode()
    assert network.jobcenter.name in page
    assert "Vermittlung geöffnet" in page
    # One of each, in the singular (not "1 Unterhaltung(en)").
    assert ": 1 Unterhaltung, 1 Nachricht – nur Metadaten, keine Inhalte" in page


def test_consultations_are_counted_per_day_agency_action_and_purpose(
    pia_client: Client, network: Network, family: Family, referral: Referral
) -> None:
    for _ in range(4):
        referral_actions.record_referral_read(
            referral, action="referral.viewed", side="receiver", by=network.ben
        )
    report = pia_client.get(report_url(family)).context["report"]
    [viewed] = [c for c in report.consultations if c.action == "referral.viewed"]
    assert viewed.count == 5
    assert viewed.day == timezone.localdate()


def test_staff_names_are_absent_by_default_and_recorded_so(
    pia: User, pia_client: Client, network: Network, family: Family, referral: Referral
) -> None:
    page = pia_client.get(report_url(family)).content.decode()
    for name in STAFF:
        assert name not in page
    [event] = report_events(family)
    assert event.details == {"format": "html", "staff_names": False}
    assert event.actor_id == pia.pk
    assert event.agency_id == network.project.pk


def test_staff_names_appear_when_the_dpo_asks_and_the_event_says_so(
    pia_client: Client, network: Network, family: Family, referral: Referral
) -> None:
    response = pia_client.get(report_url(family, staff=True))
    page = response.content.decode()
    for name in STAFF:
        assert name in page
    viewed = [c for c in response.context["report"].consultations if c.action == "referral.viewed"]
    assert [c.staff for c in viewed] == ["Ben Becker"]
    [event] = report_events(family)
    assert event.details == {"format": "html", "staff_names": True}


@pytest.mark.parametrize("staff", [False, True])
def test_no_household_data_referral_text_or_message_in_html_or_json(
    pia_client: Client, family: Family, referral: Referral, tag: ApplicationTag, staff: bool
) -> None:
    page = pia_client.get(report_url(family, staff)).content.decode()
    data = pia_client.get(download_url(family, "json", staff)).content.decode()
    for secret in SECRETS:
        assert secret not in page
        assert secret not in data


@pytest.mark.parametrize("staff", [False, True])
def test_no_household_data_in_the_pdf(
    network: Network, family: Family, referral: Referral, tag: ApplicationTag, staff: bool
) -> None:
    family = Family.objects.select_related("owner").get(pk=family.pk)
    report = reports.build_access_report(family, staff_names=staff)
    text = "\n".join(pdf_pages(report))
    assert "Jobcenter Kreis Recklinghausen" in text  # the text is readable: the check bites
    assert family.reference in text
    for secret in SECRETS:
        assert secret not in text
    for name in STAFF:
        assert (name in text) is staff


def test_pdf_download_is_an_attachment_named_after_the_reference(
    pia_client: Client, family: Family, referral: Referral
) -> None:
    response = pia_client.get(download_url(family, "pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response["Content-Disposition"] == (
        f'attachment; filename="auskunft-{family.reference}.pdf"'
    )
    [event] = report_events(family)
    assert event.details == {"format": "pdf", "staff_names": False}


def test_json_download_has_the_documented_structure(
    pia_client: Client, network: Network, family: Family, referral: Referral, tag: ApplicationTag
) -> None:
    response = pia_client.get(download_url(family, "json", staff=True))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="auskunft-{family.reference}.json"'
    )
    data = json.loads(response.content)
    assert data["format"] == "dienstweg.access_report.v1"
    assert set(data) == {
        "format",
        "generated_at",
        "family",
        "staff_names",
        "categories",
        "household",
        "consents",
        "recipients",
        "communication",
        "consultations",
        "controller",
        "data_protection_officer",
        "retention",
        "supervisory_authority",
        "rights",
    }
    assert data["family"]["reference"] == family.reference
    assert data["family"]["erased_on"] is None
    assert data["family"]["restricted_since"] is None
    assert data["staff_names"] is True
    [sent] = data["recipients"]["referrals"]
    assert sent["to_agency"] == network.jobcenter.name
    assert set(sent["consents"][0]["purposes"]) == {"referral", "application_support"}
    assert data["recipients"]["application_tags"][0]["kind"] == "buergergeld"
    assert {m["kind"]: m["count"] for m in data["household"]} == {"adult": 1, "child": 2}
    viewed = [c for c in data["consultations"] if c["action"] == "referral.viewed"]
    assert viewed[0]["staff"] == "Ben Becker"
    [event] = report_events(family)
    assert event.details == {"format": "json", "staff_names": True}


def test_json_without_staff_names_has_no_staff_field(
    pia_client: Client, family: Family, referral: Referral
) -> None:
    data = json.loads(pia_client.get(download_url(family, "json")).content)
    assert data["staff_names"] is False
    assert data["consultations"]
    assert all("staff" not in row for row in data["consultations"])


@pytest.mark.parametrize("fmt", ["csv", "html", "PDF", "xml"])
def test_unknown_format_is_404_and_not_recorded(
    pia_client: Client, family: Family, fmt: str
) -> None:
    assert pia_client.get(download_url(family, fmt)).status_code == 404
    assert report_events(family) == []


@pytest.mark.parametrize("page", ["html", "pdf", "json"])
def test_unknown_reference_is_404_with_a_clear_message(pia_client: Client, page: str) -> None:
    if page == "html":
        url = reverse("console:access_report", args=["F-1999-0001"])
    else:
        url = reverse("console:access_report_download", args=["F-1999-0001", page])
    response = pia_client.get(url)
    assert response.status_code == 404
    assert "Keine Familie mit der Kennung „F-1999-0001“." in response.content.decode()
    assert not AuditEvent.objects.filter(action="console.access_report").exists()


@pytest.mark.parametrize("persona", ["anna", "ben", "clara", "dirk"])
@pytest.mark.parametrize("page", ["html", "pdf", "json"])
def test_non_dpo_gets_403(
    network: Network, family: Family, referral: Referral, persona: str, page: str
) -> None:
    client = verified_client(getattr(network, persona))
    url = report_url(family) if page == "html" else download_url(family, page)
    response = client.get(url)
    assert response.status_code == 403
    assert report_events(family) == []
    assert AuditEvent.objects.filter(
        action="console.access_denied", actor_id=getattr(network, persona).pk
    ).exists()


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("staff", [False, True])
def test_report_page_costs_the_same_queries_for_one_or_many_referrals_and_events(
    pia_client: Client,
    network: Network,
    family: Family,
    referral: Referral,
    tag: ApplicationTag,
    django_assert_num_queries,
    staff: bool,
) -> None:
    url = report_url(family, staff)
    pia_client.get(url)  # warm-up: per-process caches
    few = _queries(pia_client, url)
    for _ in range(4):
        more = build_referral(
            network, family, need=NEED, summary=SUMMARY, notes={DataCategory.EMPLOYMENT: NOTE}
        )
        build_referral_thread(more, messages=[BODY], by=network.anna)
    # Events on many days, from several agencies and people.
    now = timezone.now()
    with transaction.atomic():
        AuditEvent.objects.bulk_create(
            AuditEvent(
                occurred_at=now - timedelta(days=day),
                actor_id=user.pk,
                actor_label=f"user:{user.pk}",
                agency_id=agency.pk,
                action="referral.viewed",
                family_id=str(family.pk),
                family_ref=family.reference,
                purpose="Vermittlung: Einwilligung (Art. 6 Abs. 1 lit. a DSGVO, § 67b SGB X)",
            )
            for day in range(1, 30)
            for user, agency in [
                (network.ben, network.jobcenter),
                (network.clara, network.jugendamt),
            ]
        )
    with django_assert_num_queries(few):
        response = pia_client.get(url)
    report = response.context["report"]
    assert len(report.referrals) == 5
    assert len(report.consultations) > 58


def test_consultations_are_grouped_in_the_database(
    network: Network, family: Family, referral: Referral
) -> None:
    """However many events, the report fetches one row per group, not one per event."""
    for _ in range(20):
        referral_actions.record_referral_read(
            referral, action="referral.viewed", side="receiver", by=network.ben
        )
    with CaptureQueriesContext(connection) as captured:
        rows = reports.consultations(family)
    grouped = [q["sql"] for q in captured if "audit_auditevent" in q["sql"]]
    assert len(grouped) == 1
    assert "GROUP BY" in grouped[0]
    assert (
        sum(row.count for row in rows)
        == AuditEvent.objects.filter(family_id=str(family.pk)).count()
    )


def test_report_of_an_erased_family_still_works(
    pia: User,
    pia_client: Client,
    network: Network,
    family: Family,
    referral: Referral,
    tag: ApplicationTag,
) -> None:
    erase_family(family, by=pia, reason="Antrag nach Art. 17 DSGVO", seal=False)
    response = pia_client.get(report_url(family))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.erased_at is not None
    assert [c.valid_from for c in report.consents] == [
        Consent.objects.get(family=family).valid_from
    ]
    assert any(c.action == "family.erased" for c in report.consultations)
    assert any(c.action == "referral.viewed" for c in report.consultations)
    page = response.content.decode()
    assert "gelöscht" in page
    for secret in SECRETS:
        assert secret not in page
    data = json.loads(pia_client.get(download_url(family, "json")).content)
    assert data["family"]["erased_on"] == timezone.localdate().isoformat()
    assert pia_client.get(download_url(family, "pdf")).content.startswith(b"%PDF")


def test_report_of_a_restricted_family_says_since_when_but_not_why(
    pia: User, pia_client: Client, network: Network, family: Family, referral: Referral
) -> None:
    reason = "Familie bestreitet die Richtigkeit der Angaben zum Einkommen"
    core.restrict_processing(family, reason=reason, by=pia)
    page = pia_client.get(report_url(family)).content.decode()
    assert "Verarbeitung eingeschränkt seit" in page
    assert reason not in page
    data = json.loads(pia_client.get(download_url(family, "json")).content)
    assert data["family"]["restricted_since"] == timezone.localdate().isoformat()
    assert any(c["action"] == "family.processing_restricted" for c in data["consultations"])
    assert reason not in json.dumps(data, ensure_ascii=False)


def test_pdf_of_a_long_trail_runs_over_pages_with_the_heading_on_each() -> None:
    now = timezone.now()
    rows = [
        reports.Consultation(
            day=timezone.localdate() - timedelta(days=n),
            agency="Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck",
            agency_kind="jobcenter",
            action="referral.viewed",
            action_label="Vermittlung geöffnet",
            purpose="x" * 150,  # one word wider than its column: cut, not lost
            purpose_label="x" * 150,
            count=n,
        )
        for n in range(300)
    ]
    report = reports.AccessReport(
        generated_at=now,
        reference="F-2026-0001",
        owner="Projekt",
        owner_kind="project",
        registered_at=now,
        restricted_at=None,
        erased_at=None,
        staff_names=False,
        consultations=rows,
    )
    pages = pdf_pages(report)
    assert len(pages) > 5
    # The table's heading on every page it runs over (the last ones hold the rights).
    assert sum("Zweck / Rechtsgrundlage" in page for page in pages) >= len(pages) - 1
    assert "299" in "\n".join(pages)


# Complete as a family reads it (Art. 15(1)(d)-(h), 13(1)(a)-(b))


def test_report_names_controller_dpo_retention_rights_and_the_supervisory_authority(
    pia_client: Client, network: Network, family: Family, settings
) -> None:
    network.project.locations.create(street="Hochstraße 12", postal_code="45964", city="Gladbeck")
    network.project.email = "info@rebeq.example"
    network.project.dpo_name = "Dr. Małgorzata Kühn"
    network.project.dpo_email = "datenschutz@rebeq.example"
    network.project.save()
    settings.RETENTION_FAMILY_DAYS = 1095

    page = pia_client.get(report_url(family)).content.decode()
    data = json.loads(pia_client.get(download_url(family, "json")).content)
    report = pia_client.get(report_url(family)).context["report"]
    pdf = " ".join(" ".join(pdf_pages(report)).split())  # its lines joined, as read

    for text in (page, pdf):
        assert "Hochstraße 12" in text
        assert "info@rebeq.example" in text
        assert "Dr. Małgorzata Kühn" in text  # as written, in the PDF too
        assert "datenschutz@rebeq.example" in text
        assert "1095 Tage nach der letzten Aktivität" in text
        for right in ("Berichtigung", "Löschung", "Einschränkung der Verarbeitung", "Widerspruch"):
            assert right in text
        assert "Beschwerde bei der Aufsichtsbehörde" in text
        assert "Landesbeauftragte für Datenschutz und Informationsfreiheit" in text
    assert data["controller"]["address"] == ["Hochstraße 12", "45964 Gladbeck"]
    assert data["data_protection_officer"]["email"] == "datenschutz@rebeq.example"
    assert "families" in {row["code"] for row in data["retention"]}
    assert [r["article"] for r in data["rights"]] == [
        "Art. 16 DSGVO",
        "Art. 17 DSGVO",
        "Art. 18 DSGVO",
        "Art. 21 DSGVO",
        "Art. 77 DSGVO",
    ]


def test_the_dpos_own_search_is_attributed_to_the_dpo_not_her_home_agency(
    vera_client: Client, network: Network, family: Family
) -> None:
    # Vera is the network's DPO at the Jobcenter; she searches the trail for the family.
    vera_client.get(reverse("console:search"), {"family": family.reference})
    family = Family.objects.select_related("owner").get(pk=family.pk)

    report = reports.build_access_report(family)

    [searched] = [c for c in report.consultations if c.action == "console.searched"]
    assert (searched.agency, searched.agency_kind) == ("Datenschutzbeauftragte/r", "dpo")
    assert network.jobcenter.name not in {c.agency for c in report.consultations}


def test_every_action_is_in_words_even_one_no_longer_declared(
    network: Network, family: Family
) -> None:
    AuditEvent.objects.create(
        actor_id=network.anna.pk,
        actor_label=f"user:{network.anna.pk}",
        action="legacy.thing_done",
        family_id=str(family.pk),
        family_ref=family.reference,
    )
    core.record_family_read(family, by=network.anna, action="family.viewed")
    family = Family.objects.select_related("owner").get(pk=family.pk)

    labels = {c.action: c.action_label for c in reports.build_access_report(family).consultations}

    assert labels["legacy.thing_done"] == "Sonstiger protokollierter Vorgang"
    assert labels["family.viewed"] == "Familiendaten geöffnet"
    assert not any("." in label and "_" in label for label in labels.values())


def test_pdf_has_page_numbers_and_breaks_no_word() -> None:
    now = timezone.now()
    states = ["angenommen", "abgeschlossen", "zurückgezogen"]
    referrals = [
        reports.ReferralEntry(
            id=str(n),
            from_agency="Projekt",
            to_agency="Stadt Gladbeck, Amt für Migration und Zusammenleben",
            to_agency_kind="partner",
            sent_at=now,
            state="accepted",
            state_label=states[n % 3],
            basis="consent",
            basis_label="Einwilligung (Art. 6 Abs. 1 lit. a DSGVO)",
            categories=("employment",),
            category_labels=("Beschäftigungsverhältnisse und Arbeitsuche",),
            consents=(),
        )
        for n in range(60)
    ]
    report = reports.AccessReport(
        generated_at=now,
        reference="F-2026-0001",
        owner="Projekt",
        owner_kind="project",
        registered_at=now,
        restricted_at=None,
        erased_at=None,
        staff_names=False,
        referrals=referrals,
    )

    pages = pdf_pages(report)

    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert f"Seite {number} von {len(pages)}" in page
    words = set("\n".join(pages).split())
    for whole in [*states, "Beschäftigungsverhältnisse", "Zusammenleben", "Einwilligung"]:
        assert whole in words, whole


def test_report_lists_conferences_their_agencies_and_agreements_without_their_texts(
    pia_client: Client, network: Network, family: Family
) -> None:
    core.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.jobcenter, network.jugendamt],
            purposes=[Purpose.CASE_COORDINATION],
        ),
        by=network.anna,
    )
    conference = conference_actions.convene_conference(
        family, data=conference_data([network.ben, network.clara]), by=network.anna
    )
    what = "Ben klärt eine Teilzeitstelle im Einzelhandel"
    agreement = conference_actions.record_agreement(
        conference,
        data=conference_actions.AgreementData(
            what, network.jobcenter, network.ben, timezone.localdate() + timedelta(days=9)
        ),
        by=network.anna,
    )
    conference_actions.close_agreement(agreement, done=False, reason="waiting_time", by=network.ben)
    conference_actions.ask_network(
        family,
        question="Wer kennt eine Schuldnerberatung mit Kinderbetreuung?",
        agencies=[network.migration],
        by=network.anna,
    )
    response = pia_client.get(report_url(family))
    report = response.context["report"]
    [listed] = report.conferences
    assert listed.agencies == tuple(sorted([network.jobcenter.name, network.jugendamt.name]))
    [kept] = listed.agreements
    assert (kept.responsible, kept.state, kept.gap_label) == (
        network.jobcenter.name,
        "not_possible",
        "Wartezeit zu lang",
    )
    [asked] = report.case_consultations
    assert asked.agencies == (network.migration.name,)
    assert asked.named_to == ()
    page = response.content.decode()
    assert "Empfänger: Familienkonferenzen" in page and "Wartezeit zu lang" in page
    data = json.loads(pia_client.get(download_url(family, "json")).content)
    [as_json] = data["recipients"]["conferences"]
    assert as_json["agreements"][0]["gap_reason"] == "Wartezeit zu lang"
    assert data["recipients"]["anonymous_consultations"][0]["agencies"] == [network.migration.name]
    text = " ".join(pdf_pages(report))
    assert "Empfänger: Familienkonferenzen" in text and "Anonyme Fallberatungen" in text
    for secret in (what, "Schuldnerberatung", "Familienbüro", "Arbeitssuche"):
        assert secret not in page and secret not in json.dumps(data) and secret not in text
