"""Finding a family on the console by its reference and the DPO's page for it: status, the
access report's formats, the restriction form, the way to erasure; unknown references get a
clear message and change nothing; every look-up and view is recorded.

Who does what here: Pia (DPO of the project) looks up the Yılmaz family, which Anna's project
registered;
Anna, Ben, Clara and Dirk are refused the console."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from dienstweg.models import Family, User
from privacy.erasure import erase_family
from tests.conftest import YILMAZ, Network, verified_client

LOOKUP = reverse("console:subject_lookup")


def subject_url(reference: str) -> str:
    return reverse("console:subject", args=[reference])


def test_lookup_shows_the_form(pia_client: Client) -> None:
    response = pia_client.get(LOOKUP)
    assert response.status_code == 200
    assert "Kennung der Familie" in response.content.decode()


@pytest.mark.parametrize("typed", ["{ref}", " {ref} ", "{lower}"])
def test_lookup_of_a_known_reference_leads_to_the_family_page(
    pia_client: Client, family: Family, typed: str
) -> None:
    text = typed.format(ref=family.reference, lower=family.reference.lower())
    response = pia_client.get(LOOKUP, {"reference": text})
    assert response.status_code == 302
    assert response["Location"] == subject_url(family.reference)
    [event] = AuditEvent.objects.filter(action="console.subject_lookup")
    assert event.family_id == str(family.pk)
    assert event.details == {"found": True}


def test_lookup_of_an_unknown_reference_says_so_and_is_recorded(
    pia_client: Client, family: Family
) -> None:
    response = pia_client.get(LOOKUP, {"reference": "F-2026-9999"})
    assert response.status_code == 404
    assert "Keine Familie mit der Kennung „F-2026-9999“." in response.content.decode()
    [event] = AuditEvent.objects.filter(action="console.subject_lookup")
    assert event.family_id is None
    assert event.details == {"found": False, "reference": "F-2026-9999"}


def test_a_name_typed_into_the_lookup_stays_out_of_the_trail(
    pia_client: Client, family: Family
) -> None:
    response = pia_client.get(LOOKUP, {"reference": "Yilmaz"})
    assert response.status_code == 404
    [event] = AuditEvent.objects.filter(action="console.subject_lookup")
    assert event.details == {"found": False, "reference": ""}
    assert "Yilmaz" not in str(AuditEvent.objects.values_list("details", "purpose"))


def test_empty_lookup_asks_for_the_reference(pia_client: Client) -> None:
    response = pia_client.get(LOOKUP, {"reference": "  "})
    assert response.status_code == 400
    assert "Bitte die Kennung der Familie angeben." in response.content.decode()
    assert not AuditEvent.objects.filter(action="console.subject_lookup").exists()


def test_family_page_shows_status_report_links_restriction_and_erasure(
    pia_client: Client, network: Network, family: Family
) -> None:
    response = pia_client.get(subject_url(family.reference))
    assert response.status_code == 200
    page = response.content.decode()
    assert family.reference in page
    assert network.project.name in page
    report = reverse("console:access_report", args=[family.reference])
    assert f'href="{report}"' in page
    assert f'href="{report}?staff=1"' in page
    for fmt in ("pdf", "json"):
        url = reverse("console:access_report_download", args=[family.reference, fmt])
        assert f'href="{url}"' in page
        assert f'href="{url}?staff=1"' in page
    assert "mit Namen der Mitarbeitenden" in page
    assert reverse("console:restrict", args=[family.reference]) in page  # helper C's partial
    assert reverse("console:erase", args=[family.reference]) in page
    assert "Löschen (Art. 17)" in page


def test_family_page_shows_no_household_data(pia_client: Client, family: Family) -> None:
    page = pia_client.get(subject_url(family.reference)).content.decode()
    for secret in {n for m in YILMAZ for n in (m.first_name, m.last_name)} | {"Horster", "02043"}:
        assert secret not in page


def test_family_page_is_recorded(
    pia: User, pia_client: Client, network: Network, family: Family
) -> None:
    pia_client.get(subject_url(family.reference))
    [event] = AuditEvent.objects.filter(action="console.subject_viewed")
    assert (event.family_id, event.family_ref) == (str(family.pk), family.reference)
    assert (event.actor_id, event.agency_id) == (pia.pk, network.project.pk)


def test_erased_family_has_no_erase_link_but_its_page_and_dates(
    pia: User, pia_client: Client, network: Network, family: Family
) -> None:
    erase_family(family, by=pia, reason="Antrag nach Art. 17 DSGVO", seal=False)
    page = pia_client.get(subject_url(family.reference)).content.decode()
    assert reverse("console:erase", args=[family.reference]) not in page
    assert "Gelöscht am" in page


def test_unknown_reference_is_404_with_a_clear_message(pia_client: Client) -> None:
    response = pia_client.get(subject_url("F-1999-0001"))
    assert response.status_code == 404
    assert "Keine Familie mit der Kennung „F-1999-0001“." in response.content.decode()
    assert not AuditEvent.objects.filter(action="console.subject_viewed").exists()


@pytest.mark.parametrize("persona", ["anna", "ben", "clara", "dirk"])
@pytest.mark.parametrize("page", ["lookup", "subject"])
def test_non_dpo_gets_403(network: Network, family: Family, persona: str, page: str) -> None:
    client = verified_client(getattr(network, persona))
    url = (
        LOOKUP + f"?reference={family.reference}"
        if page == "lookup"
        else subject_url(family.reference)
    )
    assert client.get(url).status_code == 403
    assert not AuditEvent.objects.filter(
        action__in=["console.subject_lookup", "console.subject_viewed"]
    ).exists()
