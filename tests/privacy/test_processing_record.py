"""The record of processing activities (GDPR Art. 30): generated from the platform's state,
with the retention periods as configured, the recipient agencies with their counts, the
Art. 9 categories marked and the measures of Art. 32; DPO only, audited, constant queries,
and no family named.

Who does what here: Anna (coach at the project) refers the Yılmaz family to the Jobcenter on
Ayşe's consent; Dora (DPO) opens the record; Anna, Ben, Clara and Dirk are refused."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.models import Consent, Family
from referrals.models import Referral
from tests.builders import build_referral
from tests.conftest import YILMAZ, Network, consent_data, verified_client

PAGE = reverse("console:processing_record")
JSON = reverse("console:processing_record_json")


@pytest.fixture
def referral(network: Network, family: Family, consent: Consent) -> Referral:
    return build_referral(network, family, need="Arbeitsvermittlung", summary="Sucht Arbeit.")


def record_json(client: Client) -> dict:
    response = client.get(JSON)
    assert response.status_code == 200
    return json.loads(response.content)


def test_lists_the_retention_periods_from_the_settings(dora_client: Client, settings) -> None:
    settings.RETENTION_CLOSED_CASE_DAYS = 365
    settings.AUDIT_SECURITY_RETENTION_DAYS = 45
    settings.AUDIT_ACCESS_RETENTION_YEARS = 2
    settings.RETENTION_FAMILY_DAYS = 999
    page = dora_client.get(PAGE).content.decode()
    assert "365 Tage nach dem Abschluss" in page
    assert "45 Tage" in page
    assert "bis zum Ende des 2. Kalenderjahres nach dem Ereignis" in page
    assert "999 Tage nach der letzten Aktivität" in page
    retention = {row["code"]: row for row in record_json(dora_client)["retention"]}
    assert (retention["closed_cases"]["value"], retention["closed_cases"]["unit"]) == (365, "days")
    assert retention["audit_security"]["value"] == 45
    assert retention["audit_access"]["value"] == 2
    assert retention["families"]["value"] == 999
    assert retention["audit_seals"]["value"] is None


def test_default_retention_periods(dora_client: Client) -> None:
    page = dora_client.get(PAGE).content.decode()
    assert "90 Tage" in page
    assert "bis zum Ende des Kalenderjahres nach dem Ereignis" in page
    assert "730 Tage nach dem Abschluss" in page


def test_lists_the_recipient_agencies_with_counts(
    dora_client: Client, network: Network, referral: Referral
) -> None:
    data = record_json(dora_client)
    recipients = {
        agency["name"]: agency for group in data["recipients"] for agency in group["agencies"]
    }
    assert set(recipients) == {network.jobcenter.name}  # nobody else received or is named
    assert recipients[network.jobcenter.name] == {
        "name": network.jobcenter.name,
        "referrals": 1,
        "application_tags": 0,
        "consents": 1,
    }
    [group] = data["recipients"]
    assert group["kind"] == "jobcenter"
    assert network.jobcenter.name in dora_client.get(PAGE).content.decode()


def test_lists_every_agency_as_controller_grouped_by_kind(
    dora_client: Client, network: Network
) -> None:
    groups = {group["kind"]: group for group in record_json(dora_client)["controllers"]}
    assert set(groups) == {"jobcenter", "jugendamt", "project", "partner"}
    [jobcenter] = groups["jobcenter"]["agencies"]
    assert jobcenter == {
        "name": network.jobcenter.name,
        "rechtskreis": "sgb_ii",
        "rechtskreis_label": "SGB II",
        "address": [],
        "email": "",
        "phone": "",
        "dpo": {"name": "", "email": "", "phone": "", "address": ""},
    }


def test_names_each_controller_with_its_address_and_dpo_contact_from_the_directory(
    dora_client: Client, network: Network
) -> None:
    jobcenter = network.jobcenter
    jobcenter.locations.create(street="Wilhelmstraße 2", postal_code="45964", city="Gladbeck")
    jobcenter.locations.create(street="Nebenstelle 9", postal_code="45966", city="Gladbeck")
    jobcenter.public_phone = "02043 7000"
    jobcenter.dpo_name = "Jörg Wiśniewski"
    jobcenter.dpo_email = "datenschutz@jobcenter.example"
    jobcenter.save()

    groups = {group["kind"]: group for group in record_json(dora_client)["controllers"]}
    [entry] = groups["jobcenter"]["agencies"]
    assert entry["address"] == ["Wilhelmstraße 2", "45964 Gladbeck"]  # the main location
    assert entry["phone"] == "02043 7000"
    assert entry["dpo"]["name"] == "Jörg Wiśniewski"
    page = dora_client.get(reverse("console:processing_record")).content.decode()
    assert "Wilhelmstraße 2" in page
    assert "datenschutz@jobcenter.example" in page
    # An agency whose DPO the directory lacks is marked, not silently left blank.
    assert "nicht im Verzeichnis" in page


def test_purposes_with_legal_bases_categories_subjects_and_measures(
    dora_client: Client, family: Family
) -> None:
    data = record_json(dora_client)
    purposes = {p["code"]: p for p in data["purposes"]}
    assert {"referral", "case_coordination", "application_support"} <= set(purposes)
    referral_bases = " ".join(purposes["referral"]["legal_bases"])
    assert "Art. 6 Abs. 1 lit. a" in referral_bases
    assert "§ 67b SGB X" in referral_bases
    assert "§ 8a SGB VIII" in referral_bases
    assert "§ 69 SGB X" in referral_bases
    special = {c["code"] for c in data["data_categories"] if c["special_category"]}
    assert special == {"health", "addiction"}
    subjects = {s["code"]: s["count"] for s in data["data_subjects"]}
    assert (subjects["families"], subjects["adult"], subjects["child"]) == (1, 1, 2)
    measures = {m["code"]: m["text"] for m in data["measures"]}
    assert "AES-256-GCM" in measures["encryption"]
    assert "Ed25519" in measures["audit_trail"]
    assert "TOTP" in measures["second_factor"]
    assert "30 Minuten" in measures["sessions"]


def test_session_lifetimes_come_from_the_settings(dora_client: Client, settings) -> None:
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
    settings.SESSION_MAX_LIFETIME = timedelta(hours=8)
    measures = {m["code"]: m["text"] for m in record_json(dora_client)["measures"]}
    assert "15 Minuten" in measures["sessions"]
    assert "8 Stunden" in measures["sessions"]


def test_names_no_family(dora_client: Client, family: Family, referral: Referral) -> None:
    page = dora_client.get(PAGE).content.decode()
    data = dora_client.get(JSON).content.decode()
    for text in [family.reference] + [m.last_name for m in YILMAZ] + ["Horster"]:
        assert text not in page
        assert text not in data


@pytest.mark.parametrize("url", [PAGE, JSON])
def test_is_recorded(dora_client: Client, network: Network, url: str) -> None:
    dora_client.get(url)
    [event] = AuditEvent.objects.filter(action="console.processing_record_viewed")
    assert event.actor_id == network.dora.pk
    assert event.details == {"format": "html" if url == PAGE else "json"}


def test_json_is_a_download(dora_client: Client) -> None:
    response = dora_client.get(JSON)
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith(
        'attachment; filename="verarbeitungsverzeichnis-'
    )


@pytest.mark.parametrize("persona", ["anna", "ben", "clara", "dirk"])
@pytest.mark.parametrize("url", [PAGE, JSON])
def test_non_dpo_gets_403(network: Network, persona: str, url: str) -> None:
    response = verified_client(getattr(network, persona)).get(url)
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="console.processing_record_viewed").exists()


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", [PAGE, JSON])
def test_costs_the_same_queries_however_much_the_platform_holds(
    dora_client: Client,
    network: Network,
    family: Family,
    referral: Referral,
    django_assert_num_queries,
    url: str,
) -> None:
    dora_client.get(url)  # warm-up: per-process caches
    few = _queries(dora_client, url)
    for number in range(3):
        agency = core.create_agency(
            name=f"Sozialamt {number}", kind="sozialamt", rechtskreis="sgb_xii"
        )
        second = core.register_family(
            owner=network.project,
            members=[core.MemberData("adult", "Ayşe", f"Evers{number}", date(1990, 1, 1 + number))],
            address="Irgendwo 1",
            phone="",
            notes="",
            by=network.anna,
        )
        core.grant_consent(
            second,
            data=consent_data(network, second, recipients=[network.jobcenter, agency]),
            by=network.anna,
        )
        build_referral(network, second, need="Arbeitsvermittlung", summary="Sucht Arbeit.")
    with django_assert_num_queries(few):
        response = dora_client.get(url)
    assert response.status_code == 200
