"""The Strukturkonferenz report: who may open it (the steering group, network-wide; a lead,
for her own agencies), what it counts (families, in the database), what it hides (1 to 4
families, and what would give them away), what it never shows (references, names, free
text), its exports and their audit."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from audit.models import AuditEvent
from conferences import actions
from conferences.report import Period, Scope, build_report
from dienstweg.models import DataCategory, Family, Membership, User
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import build_consenting_family, build_referral, conference_data
from tests.conftest import Network, make_staff, verified_client

WHOLE = Scope(None, "das ganze Netzwerk")


@pytest.fixture
def steering(network: Network) -> User:
    """Sofia of the steering group (at the Jugendamt): the network's figures, no case."""
    return make_staff(
        "sofia@example.org", "Sofia Steuer", network.jugendamt, Membership.Role.STEERING
    )


@pytest.fixture
def families(network: Network) -> list[Family]:
    """Seven families referred to the Jobcenter (employment), three of them also to the
    Jugendamt (children): the Jugendamt's cell holds 3 families and must be hidden."""
    made = [build_consenting_family(network, number) for number in range(1, 8)]
    for family in made:
        build_referral(network, family, categories=[DataCategory.EMPLOYMENT])
    for family in made[:3]:
        build_referral(network, family, to=network.jugendamt, categories=[DataCategory.CHILDREN])
    return made


def today() -> Period:
    return Period(timezone.localdate() - timedelta(days=30), timezone.localdate())


def test_counts_families_and_hides_small_cells(network: Network, families: list[Family]) -> None:
    report = build_report(today(), WHOLE)
    table = report.table("categories")
    rows = dict(table.lines())
    sgb_ii = table.columns.index("SGB II")
    sgb_viii = table.columns.index("SGB VIII")
    assert rows["Beschäftigung und Qualifikation"][sgb_ii] == 7
    assert rows["Kinder, Betreuung und Schule"][sgb_viii] is None  # 3 families
    # Its row total would give it away (it is the row's only entry): hidden as well.
    assert rows["Kinder, Betreuung und Schule"][-1] is None
    [referred, *_rest] = report.trends
    assert referred.now == 7
    assert referred.before == 0


def test_a_lead_sees_her_agency_only(network: Network, families: list[Family]) -> None:
    jana = make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)
    response = verified_client(jana).get(reverse("structure_report"))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.scope.agency_ids == (network.jobcenter.pk,)
    rows = dict(report.table("outcomes").lines())
    assert rows["SGB VIII"][-1] == 0  # the Jugendamt's referrals are not hers


def test_who_may_open_it(network: Network, steering: User, families: list[Family]) -> None:
    url = reverse("structure_report")
    response = verified_client(steering).get(url)
    assert response.status_code == 200
    assert response.context["report"].scope.network
    for outsider in (network.ben, network.anna, network.dora, network.dirk):
        assert verified_client(outsider).get(url).status_code == 404
    assert AuditEvent.objects.filter(action="report.access_denied").count() == 4
    viewed = AuditEvent.objects.get(action="report.viewed")
    assert viewed.actor_id == steering.pk and not viewed.family_id
    assert verified_client(network.clara).get(url).status_code == 200  # a lead


def test_never_shows_references_names_or_text(
    network: Network, steering: User, families: list[Family]
) -> None:
    client = verified_client(steering)
    page = client.get(reverse("structure_report")).text
    pdf = client.get(reverse("structure_report_export", args=["pdf"]))
    pdf_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    exported = client.get(reverse("structure_report_export", args=["csv"])).content.decode()
    for family in families:
        for text in (page, pdf_text, exported):
            assert family.reference not in text
    for secret in ("Mutter1", "Familie1", "Weg 1", "Teilzeit"):
        assert secret not in page and secret not in pdf_text and secret not in exported
    assert "Strukturkonferenz" in pdf_text and "•" in pdf_text
    rows = list(csv.reader(io.StringIO(exported.lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == ["Tabelle", "Zeile", "Spalte", "Wert", "Hinweis"]
    hidden = [row for row in rows if row[4] == "gesperrt"]
    assert hidden and all(row[3] == "" for row in hidden)
    # No published number in the export is 1 to 4.
    assert all(not (row[3].isdigit() and 0 < int(row[3]) < 5) for row in rows[1:])
    exports = AuditEvent.objects.filter(action="report.exported")
    assert sorted(e.details["format"] for e in exports) == ["csv", "pdf"]


def test_the_exports_speak_the_readers_language(
    network: Network, steering: User, families: list[Family]
) -> None:
    client = verified_client(steering)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    exported = client.get(reverse("structure_report_export", args=["csv"])).content.decode()
    rows = list(csv.reader(io.StringIO(exported.lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == ["Table", "Row", "Column", "Value", "Note"]
    assert any(row[4] == "hidden" for row in rows)
    assert any(row[1] == "Families referred" for row in rows)
    pdf = client.get(reverse("structure_report_export", args=["pdf"]))
    pdf_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Structural conference report – page 1 of" in pdf_text


def test_agreements_and_gaps_are_counted(network: Network, families: list[Family]) -> None:
    for family in families[:6]:
        conference = actions.convene_conference(
            family, data=conference_data([network.ben]), by=network.anna
        )
        agreement = actions.record_agreement(
            conference,
            data=actions.AgreementData(
                "Platz im Sprachkurs", network.jobcenter, None, timezone.localdate()
            ),
            by=network.anna,
        )
        actions.close_agreement(agreement, done=False, reason="no_place", by=network.ben)
    period = Period(timezone.localdate(), timezone.localdate() + timedelta(days=30))
    report = build_report(period, WHOLE)
    gaps = dict(report.table("gaps").lines())
    assert gaps["kein Platz frei"][0] == 6
    sides = dict(report.table("agreements").lines())
    assert sides["SGB II"][-2] == 6  # not possible, the column before the total


def test_bad_period_is_refused_and_nothing_is_recorded(network: Network, steering: User) -> None:
    response = verified_client(steering).get(
        reverse("structure_report"), {"start": "2026-12-01", "end": "2026-01-01"}
    )
    assert response.status_code == 200
    assert response.context["report"] is None
    assert "„bis“ liegt vor „von“" in response.text
    assert not AuditEvent.objects.filter(action="report.viewed").exists()
    export = verified_client(steering).get(
        reverse("structure_report_export", args=["csv"]), {"start": "x", "end": "y"}
    )
    assert export.status_code == 404


def test_the_page_costs_the_same_queries_however_many_cases(
    network: Network, steering: User
) -> None:
    client = verified_client(steering)
    url = reverse("structure_report")
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    few = queries()
    for number in range(1, 4):
        family = build_consenting_family(network, number)
        build_referral(network, family, categories=[DataCategory.EMPLOYMENT])
    assert queries() == few


def test_the_trail_records_period_and_scope_only(network: Network, steering: User) -> None:
    verified_client(steering).get(reverse("structure_report"))
    event = AuditEvent.objects.get(action="report.viewed")
    assert event.details == {
        "start": (timezone.localdate() - timedelta(days=182)).isoformat(),
        "end": timezone.localdate().isoformat(),
        "network": True,
        "agencies": 0,
        "format": "html",
    }


def test_time_to_answer_per_agency_from_five_families(
    network: Network, families: list[Family]
) -> None:
    jana = make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)
    sent = Referral.objects.filter(to_agency=network.jobcenter).order_by("sent_at")
    for referral in sent[:6]:
        referral_steps.assign_referral(referral, assignee=network.ben, by=jana)
        referral_steps.accept_referral(referral, by=network.ben)
    # Answered two days after sending (the same for each, so median and 90th percentile).
    Referral.objects.filter(to_agency=network.jobcenter, answered_at__isnull=False).update(
        sent_at=F("answered_at") - timedelta(days=2)
    )
    report = build_report(today(), WHOLE)
    [jobcenter] = report.answer_times
    assert jobcenter.label == network.jobcenter.name
    assert (jobcenter.families, jobcenter.median_days, jobcenter.p90_days) == (6, 2.0, 2.0)
    # Below five families answered, the row says nothing.
    Referral.objects.filter(pk__in=[r.pk for r in sent[:2]]).update(answered_at=None)
    [fewer] = build_report(today(), WHOLE).answer_times
    assert (fewer.families, fewer.median_days, fewer.p90_days) == (None, None, None)
