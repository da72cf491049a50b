"""The network directory: search, filters, pages, the agency page, and a list page whose
cost does not grow with the number of agencies, services and contacts."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dienstweg import actions
from dienstweg.models import Agency, Contact, Location, Service, User
from tests.conftest import Network, verified_client

CHECKED_ON = datetime.date(2026, 3, 2)


@dataclass
class Directory:
    diakonie: Agency  # debt counselling in Dorsten, Arabic spoken, takes new families
    beratung: Agency  # youth-office counselling, Tigrinya spoken, full at the moment


def add_entries(agency: Agency, *, by: User, city: str, services: list[dict[str, Any]]) -> None:
    """A location, services and one contact per service, all checked by `by`."""
    location = Location.objects.create(
        agency=agency, street="Hauptstraße 5", postal_code="46282", city=city
    )
    for fields in services:
        contact = fields.pop("contact")
        service = Service.objects.create(
            agency=agency, location=location, checked_on=CHECKED_ON, checked_by=by, **fields
        )
        Contact.objects.create(
            agency=agency, service=service, checked_on=CHECKED_ON, checked_by=by, **contact
        )


@pytest.fixture
def directory(network: Network) -> Directory:
    diakonie = actions.create_agency(
        name="Diakoniewerk Gladbeck",
        kind="partner",
        rechtskreis="other",
        public_phone="02043 27 90 00",
        golden_phone="02043 27 90 99",
        checked_on=CHECKED_ON,
        checked_by=network.clara,
    )
    add_entries(
        diakonie,
        by=network.clara,
        city="Dorsten",
        services=[
            {
                "name": "Schuldnerberatung",
                "rechtskreis": "sgb_xii",
                "opening_hours": "Mo–Do 9–12 Uhr",
                "languages": "Deutsch, Arabisch",
                "accepts_new_families": True,
                "contact": {
                    "name": "Petra Pohl",
                    "title": "Schuldnerberaterin",
                    "direct_phone": "02043 27 90 17",
                },
            }
        ],
    )
    beratung = actions.create_agency(
        name="Erziehungsberatung Nord", kind="jugendamt", rechtskreis="sgb_viii"
    )
    add_entries(
        beratung,
        by=network.ben,
        city="Gladbeck",
        services=[
            {
                "name": "Elternsprechstunde",
                "opening_hours": "Di 14–18 Uhr",
                "languages": "Deutsch, Tigrinya",
                "accepts_new_families": False,
                "contact": {"name": "Jonas Jahn", "title": "Familientherapeut"},
            }
        ],
    )
    return Directory(diakonie=diakonie, beratung=beratung)


@pytest.fixture
def client(network: Network) -> Client:
    return verified_client(network.anna)


def search(client: Client, **params: str) -> HttpResponse:
    response = client.get(reverse("directory"), params)
    assert response.status_code == 200
    return response


def found(client: Client, **params: str) -> set[str]:
    names = {agency.name for agency in search(client, **params).context["page"].object_list}
    return names


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("Diakoniewerk", "agency name"),
        ("Schuldnerberatung", "service name"),
        ("schuldnerBERATUNG", "service name, any case"),
        ("Pohl", "contact name"),
        ("Schuldnerberaterin", "contact function"),
        ("Dorsten", "city"),
        ("Arabisch", "language"),
        ("Schuldnerberatung Dorsten", "every word matches"),
    ],
)
def test_search_finds_agency_by(client: Client, directory: Directory, query: str, why: str) -> None:
    assert found(client, q=query) == {directory.diakonie.name}, why


def test_search_finds_agency_by_contact_function_of_another_agency(
    client: Client, directory: Directory
) -> None:
    assert found(client, q="Familientherapeut") == {directory.beratung.name}


def test_search_needs_every_word(client: Client, directory: Directory) -> None:
    assert found(client, q="Schuldnerberatung Tigrinya") == set()


def test_result_page_shows_the_match(client: Client, directory: Directory) -> None:
    html = search(client, q="Pohl").content.decode()
    assert "1 Einrichtung gefunden" in html
    assert "Diakoniewerk Gladbeck" in html
    assert "Erziehungsberatung Nord" not in html


def test_filter_by_kind(client: Client, network: Network, directory: Directory) -> None:
    assert found(client, kind="jugendamt") == {network.jugendamt.name, directory.beratung.name}


def test_filter_by_rechtskreis_of_agency_or_service(
    client: Client, network: Network, directory: Directory
) -> None:
    assert found(client, rechtskreis="sgb_viii") == {
        network.jugendamt.name,
        directory.beratung.name,
    }
    assert found(client, rechtskreis="sgb_xii") == {directory.diakonie.name}  # by its service


def test_filter_by_language(client: Client, directory: Directory) -> None:
    assert found(client, language="Tigrinya") == {directory.beratung.name}


def test_filter_accepting_new_families(client: Client, directory: Directory) -> None:
    assert found(client, accepting="on") == {directory.diakonie.name}


def test_filters_combine_with_search(
    client: Client, network: Network, directory: Directory
) -> None:
    assert found(client, q="Gladbeck", kind="jugendamt") == {
        network.jugendamt.name,
        directory.beratung.name,  # by its city
    }
    assert found(client, q="Dorsten", kind="jugendamt") == set()


def test_unknown_kind_gives_form_error_and_no_results(client: Client, directory: Directory) -> None:
    response = search(client, kind="unknown")
    form = response.context["form"]
    assert "kind" in form.errors
    html = response.content.decode()
    assert form.errors["kind"][0] in html
    assert 'role="alert"' in html
    assert response.context["page"].total == 0
    assert 'class="agency"' not in html


def test_results_are_paginated(client: Client, network: Network) -> None:
    size = settings.DIRECTORY_PAGE_SIZE
    for number in range(size + 1):
        actions.create_agency(
            name=f"Beratungsstelle {number:03d}", kind="partner", rechtskreis="other"
        )
    first = search(client, q="Beratungsstelle")
    page = first.context["page"]
    assert page.total == size + 1
    assert len(page.object_list) == size
    html = first.content.decode()
    assert 'href="?q=Beratungsstelle&amp;page=2" rel="next"' in html
    assert "Beratungsstelle 000" in html

    second = search(client, q="Beratungsstelle", page="2")
    assert [agency.name for agency in second.context["page"].object_list] == [
        f"Beratungsstelle {size:03d}"
    ]
    assert 'rel="prev"' in second.content.decode()


def test_page_number_out_of_range_shows_last_page(client: Client, directory: Directory) -> None:
    response = search(client, page="999")
    assert response.context["page"].number == response.context["page"].num_pages


def test_agency_page_shows_everything_members_need(client: Client, directory: Directory) -> None:
    response = client.get(reverse("agency_detail", args=[directory.diakonie.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hauptstraße 5, 46282 Dorsten" in html
    assert "02043 27 90 00" in html  # public phone
    assert "02043 27 90 99" in html  # golden number
    assert "nur netzwerkintern" in html
    assert "Schuldnerberatung" in html
    assert "Mo–Do 9–12 Uhr" in html
    assert "Deutsch, Arabisch" in html
    assert "nimmt neue Familien auf" in html
    assert "Petra Pohl" in html
    assert "Schuldnerberaterin" in html
    assert 'href="tel:02043 27 90 17"' in html  # the contact's direct number
    assert "Zuletzt geprüft am 02.03.2026 von Clara Czerny" in html


def test_agency_page_shows_when_a_service_is_full(client: Client, directory: Directory) -> None:
    html = client.get(reverse("agency_detail", args=[directory.beratung.pk])).content.decode()
    assert "derzeit keine Aufnahme" in html
    assert "Zuletzt geprüft am 02.03.2026 von Ben Becker" in html  # the service's check
    assert "Noch nicht geprüft" in html  # the agency itself was never checked


def test_unknown_agency_gives_404(client: Client, directory: Directory) -> None:
    missing = Agency.objects.order_by("-pk").first().pk + 1  # type: ignore[union-attr]
    assert client.get(reverse("agency_detail", args=[missing])).status_code == 404


def add_measured_agencies(count: int, start: int, network: Network) -> None:
    for number in range(start, start + count):
        agency = actions.create_agency(
            name=f"Messstelle {number:03d}",
            kind="partner",
            rechtskreis="sgb_ii",
            checked_on=CHECKED_ON,
            checked_by=network.ben,
        )
        add_entries(
            agency,
            by=network.clara,
            city="Gladbeck",
            services=[
                {"name": f"Angebot {number}-{index}", "contact": {"name": f"Person {index}"}}
                for index in range(2)
            ],
        )


def count_list_queries(client: Client, expected_agencies: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = search(client, q="Messstelle")
    assert response.context["page"].total == expected_agencies
    assert len(response.context["page"].object_list) == expected_agencies
    return len(queries)


def test_list_page_queries_do_not_grow_with_the_directory(client: Client, network: Network) -> None:
    assert settings.DIRECTORY_PAGE_SIZE >= 20  # every agency lands on the measured page
    search(client)  # the first request of a session writes it; measure the steady state
    add_measured_agencies(3, 0, network)
    few = count_list_queries(client, 3)
    add_measured_agencies(17, 3, network)
    many = count_list_queries(client, 20)
    assert few == many
