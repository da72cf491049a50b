"""Designed German error pages: what happened, what to do, a way back; never Django's English
"Not Found" in production, never the address or the exception's details."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from tests.conftest import verified_client


@pytest.fixture(autouse=True)
def production_errors(settings):
    # Django renders its own debug pages with DEBUG on; these are the pages production shows.
    settings.DEBUG = False


def assert_designed(html: str, *, heading: str) -> None:
    assert f"<h1>{heading}</h1>" in html
    assert f'href="{reverse("home")}"' in html  # the way back
    assert 'lang="de"' in html
    assert "kern/kern.min.css" in html  # the page is laid out like every other one
    for english in ("Not Found", "Forbidden", "Server Error", "requested resource"):
        assert english not in html


def test_an_unknown_family_shows_the_german_404(network) -> None:
    client = verified_client(network.anna)
    missing = uuid.uuid4()
    response = client.get(reverse("family_detail", args=[missing]))
    assert response.status_code == 404
    html = response.content.decode()
    assert_designed(html, heading="Seite nicht gefunden")
    assert str(missing) not in html  # the typed address is not echoed back, not even hidden
    # The signed-in user keeps the menu and "Abmelden".
    assert 'aria-label="Hauptnavigation"' in html and "Abmelden" in html


def test_an_unknown_address_shows_the_german_404(network) -> None:
    response = verified_client(network.anna).get("/gibt-es-nicht/")
    assert response.status_code == 404
    assert_designed(response.content.decode(), heading="Seite nicht gefunden")


def test_a_refused_page_shows_the_german_403_with_its_reason(network) -> None:
    response = verified_client(network.ben).get(reverse("family_register"))
    assert response.status_code == 403
    html = response.content.decode()
    assert_designed(html, heading="Kein Zugriff")
    assert "Familien legen Coaches und Leitungen eines Projekts an." in html


def test_a_refused_form_token_shows_the_german_page(network) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert_designed(response.content.decode(), heading="Formular abgelaufen")


@pytest.mark.urls("tests.dienstweg.error_urls")
def test_a_failing_view_shows_the_german_500(network) -> None:
    client = verified_client(network.anna)
    client.raise_request_exception = False
    response = client.get("/kaputt/")
    assert response.status_code == 500
    html = response.content.decode()
    assert_designed(html, heading="Technischer Fehler")
    assert "kaputt" not in html  # neither the path nor the exception
    assert "Yılmaz" not in html


def test_the_500_page_needs_neither_request_context_nor_database() -> None:
    # No `db` fixture: any query here would fail the test. Django renders 500.html with an
    # empty context, as after a lost database connection.
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert_designed(response.content.decode(), heading="Technischer Fehler")
