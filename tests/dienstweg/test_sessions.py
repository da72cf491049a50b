"""The user's own sessions on /konto/: listed, and ended one by one or all others."""

from __future__ import annotations

import pytest
from django.test import Client

from dienstweg import actions
from dienstweg.views import session_handle
from tests.conftest import PASSWORD, enrol, verified_client
from tests.dienstweg.signin import (
    ACCOUNT_URL,
    END_SESSION_URL,
    is_verified_in,
    redirects_to_login,
    session_key,
    sign_in,
)


@pytest.fixture
def codes(network) -> list[str]:
    enrol(network.anna)
    return actions.issue_backup_codes(network.anna)


@pytest.fixture
def office(network, codes) -> Client:
    """Anna at her desk: the browser she uses in these tests."""
    return sign_in(
        network.anna, codes[0], REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Firefox Büro-PC"
    )


@pytest.fixture
def laptop(network, codes) -> Client:
    """Anna's second, forgotten session on the laptop."""
    return sign_in(
        network.anna, codes[1], REMOTE_ADDR="198.51.100.20", HTTP_USER_AGENT="Edge Laptop"
    )


def test_page_lists_the_users_sessions(office, laptop):
    response = office.get(ACCOUNT_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Firefox Büro-PC" in page
    assert "192.0.2.10" in page
    assert "Edge Laptop" in page
    assert "198.51.100.20" in page
    assert "diese Sitzung" in page
    rows = response.context["sessions"]
    assert [row["current"] for row in rows].count(True) == 1
    assert session_handle(session_key(laptop)) in page


def test_page_does_not_list_other_users_sessions(network, office):
    ben = verified_client(network.ben)
    response = office.get(ACCOUNT_URL)
    assert [row["session"].user for row in response.context["sessions"]] == [network.anna]
    assert session_handle(session_key(ben)) not in response.content.decode()


def test_page_never_shows_session_keys(office, laptop):
    page = office.get(ACCOUNT_URL).content.decode()
    assert session_key(laptop) not in page
    assert session_key(office) not in page


def test_end_others_logs_out_the_other_browser(office, laptop):
    response = office.post(END_SESSION_URL, {"session": "others"}, follow=True)
    assert "1 andere Sitzung beendet." in response.content.decode()
    assert redirects_to_login(laptop.get("/"))
    assert is_verified_in(office)


def test_end_one_session_by_its_handle(network, codes, office, laptop):
    phone = sign_in(network.anna, codes[2], HTTP_USER_AGENT="Safari Diensthandy")
    handle = session_handle(session_key(laptop))
    response = office.post(END_SESSION_URL, {"session": handle}, follow=True)
    assert "Die Sitzung wurde beendet." in response.content.decode()
    assert redirects_to_login(laptop.get("/"))
    assert is_verified_in(phone)
    assert is_verified_in(office)


def test_current_session_cannot_be_ended_by_its_handle(office, laptop):
    handle = session_handle(session_key(office))
    response = office.post(END_SESSION_URL, {"session": handle}, follow=True)
    assert "Diese Sitzung gibt es nicht (mehr)." in response.content.decode()
    assert is_verified_in(office)
    assert is_verified_in(laptop)


def test_another_users_session_handle_does_nothing(network, office):
    ben = verified_client(network.ben)
    assert is_verified_in(ben)
    handle = session_handle(session_key(ben))
    response = office.post(END_SESSION_URL, {"session": handle}, follow=True)
    assert "Diese Sitzung gibt es nicht (mehr)." in response.content.decode()
    assert is_verified_in(ben)


def test_session_key_in_place_of_the_handle_does_nothing(office, laptop):
    office.post(END_SESSION_URL, {"session": session_key(laptop)})
    assert is_verified_in(laptop)


def test_ending_sessions_needs_post(office, laptop):
    assert office.get(END_SESSION_URL, {"session": "others"}).status_code == 405
    assert is_verified_in(laptop)


def test_ending_sessions_needs_a_verified_session(network, office, laptop):
    half_logged_in = Client()
    half_logged_in.post("/anmelden/", {"username": network.anna.email, "password": PASSWORD})
    response = half_logged_in.post(END_SESSION_URL, {"session": "others"})
    assert response.status_code == 302
    assert is_verified_in(office)
    assert is_verified_in(laptop)
