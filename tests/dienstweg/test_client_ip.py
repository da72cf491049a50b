"""Who is asking (dienstweg.security): the address lockouts and sessions record."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from dienstweg.security import client_ip, login_name


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_proxies_the_remote_address_counts(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request_from("203.0.113.7")) == "203.0.113.7"


def test_forwarded_for_from_an_untrusted_address_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request_from("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


def test_forwarded_for_is_ignored_when_no_proxy_is_configured(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request_from("10.0.0.1", "198.51.100.1")) == "10.0.0.1"


def test_trusted_proxy_passes_on_the_client_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request_from("10.0.0.1", "198.51.100.1")) == "198.51.100.1"


def test_address_the_client_put_in_front_is_ignored(settings):
    # The client sent "X-Forwarded-For: 192.0.2.66"; our proxy appended what it saw.
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request_from("10.0.0.1", "192.0.2.66, 198.51.100.1")) == "198.51.100.1"


def test_chain_of_trusted_proxies_is_walked_back_to_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    forwarded = "192.0.2.66, 198.51.100.1, 10.0.0.5, 10.0.0.9"
    assert client_ip(request_from("10.0.0.1", forwarded)) == "198.51.100.1"


def test_proxy_without_forwarded_for_counts_itself(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request_from("10.0.0.1")) == "10.0.0.1"
    assert client_ip(request_from("10.0.0.1", "")) == "10.0.0.1"


def test_forwarded_for_of_only_trusted_hops_counts_the_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_ip(request_from("10.0.0.1", "10.0.0.2, 10.0.0.3")) == "10.0.0.1"


@pytest.mark.parametrize("garbage", ["nonsense", "198.51.100.1; DROP TABLE", "999.1.1.1"])
def test_malformed_forwarded_for_falls_back_to_the_proxy(settings, garbage):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request_from("10.0.0.1", garbage)) == "10.0.0.1"


def test_ipv6_proxy_and_client(settings):
    settings.TRUSTED_PROXIES = ["fd00::/8"]
    assert client_ip(request_from("fd00::1", "2001:db8::7")) == "2001:db8::7"


def test_login_name_ignores_case_and_spaces():
    request = RequestFactory().post("/anmelden/", {"username": "  Anna@EXAMPLE.org "})
    assert login_name(request) == "anna@example.org"


def test_login_name_of_a_request_without_one_is_empty():
    assert login_name(RequestFactory().post("/anmelden/", {})) == ""
