"""Security headers: nothing cached, no framing, no sniffing, a strict CSP on every page;
logging out clears what the browser kept."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from tests.conftest import Network, verified_client


def csp_directives(response: HttpResponse) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    directives = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {name: (rest[0] if rest else "") for name, *rest in directives}


def assert_page_headers(response: HttpResponse) -> None:
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    directives = csp_directives(response)
    assert directives["frame-ancestors"] == "'none'"
    # No inline script may run: script-src must not be relaxed.
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"


def test_login_page_carries_security_headers(client: Client, db: None) -> None:
    assert_page_headers(client.get(reverse("login")))


@pytest.mark.parametrize("name", ["home", "directory", "account"])
def test_pages_of_verified_member_carry_security_headers(network: Network, name: str) -> None:
    client = verified_client(network.anna)
    assert_page_headers(client.get(reverse(name)))


def test_agency_page_carries_security_headers(network: Network) -> None:
    client = verified_client(network.anna)
    assert_page_headers(client.get(reverse("agency_detail", args=[network.jobcenter.pk])))


def test_redirects_are_not_cached_either(client: Client, db: None) -> None:
    response = client.get(reverse("directory"))
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"


def test_logout_clears_site_data(network: Network) -> None:
    client = verified_client(network.anna)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    cleared = {part.strip() for part in response["Clear-Site-Data"].split(",")}
    assert {'"cache"', '"cookies"', '"storage"'} <= cleared
    assert response["Cache-Control"] == "no-store"
