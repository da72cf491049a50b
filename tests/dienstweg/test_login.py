"""The password step of the login page (/anmelden/); the second factor follows it."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from audit.models import AuditEvent
from dienstweg import actions, sessions
from dienstweg.models import AuthenticatorDevice, StaffSession
from tests.conftest import PASSWORD, enrol, verified_client
from tests.dienstweg.signin import (
    ENROL_URL,
    VERIFY_URL,
    WRONG_LOGIN,
    password_login,
    redirects_to_login,
)


def test_login_page_is_open_to_anonymous_visitors(db):
    response = Client().get("/anmelden/")
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()


def test_anonymous_visitor_is_sent_to_login(db):
    response = Client().get("/verzeichnis/")
    assert redirects_to_login(response)
    assert "next=/verzeichnis/" in response["Location"]


def test_right_password_without_device_does_not_lead_to_enrolment(network):
    """The password alone (perhaps one an admin once chose) never sets up a second factor:
    no session starts, the page points to the enrolment link."""
    client = Client()
    response = password_login(client, network.anna.email)
    assert response.status_code == 302
    assert response["Location"] == ENROL_URL
    assert "_auth_user_id" not in client.session
    assert not StaffSession.objects.filter(user=network.anna).exists()
    page = client.get(ENROL_URL).content.decode()
    assert "Zugang noch nicht eingerichtet" in page
    assert "persönlichen Link" in page
    assert 'name="token"' not in page
    assert not AuthenticatorDevice.objects.filter(user=network.anna).exists()
    assert client.get("/").status_code == 302


def test_right_password_without_device_is_audited(network):
    password_login(Client(), network.anna.email)
    event = AuditEvent.objects.get(action="auth.login_not_enrolled")
    assert (event.target_type, event.target_id) == ("dienstweg.user", str(network.anna.pk))
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_right_password_with_device_leads_to_verification(network):
    enrol(network.anna)
    response = password_login(Client(), network.anna.email)
    assert response.status_code == 302
    assert response["Location"] == f"{VERIFY_URL}?next=%2F"


def test_password_alone_does_not_open_any_page(network):
    enrol(network.anna)
    client = Client()
    password_login(client, network.anna.email)
    for path in ["/", "/verzeichnis/", "/konto/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(VERIFY_URL)


def test_email_is_matched_case_insensitively(network):
    enrol(network.anna)
    response = password_login(Client(), "  Anna@EXAMPLE.org ")
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY_URL)


def test_wrong_password_is_refused_with_one_message(network):
    client = Client()
    response = password_login(client, network.anna.email, "falsches-Passwort-123")
    assert response.status_code == 200
    assert WRONG_LOGIN in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "email, password",
    [
        ("anna@example.org", "falsches-Passwort-123"),
        ("niemand@example.org", "falsches-Passwort-123"),
        ("deaktiviert@example.org", PASSWORD),
    ],
    ids=["wrong-password", "unknown-account", "inactive-account"],
)
def test_failed_login_does_not_tell_whether_the_account_exists(network, email, password):
    inactive = actions.create_staff(
        "deaktiviert@example.org", full_name="Inge Inaktiv", password=password
    )
    actions.deactivate_staff(inactive, by=None)
    response = password_login(Client(), email, password)
    assert response.status_code == 200
    page = response.content.decode()
    assert WRONG_LOGIN in page
    assert page.count('class="error"') == 1


def test_login_records_start_address_and_browser_in_the_session(network):
    enrol(network.anna)
    client = Client(REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Firefox/140 Dienstrechner")
    before = time.time()
    password_login(client, network.anna.email)
    session = client.session
    assert before <= session[sessions.STARTED] <= time.time()
    assert session[sessions.SEEN] == session[sessions.STARTED]
    row = StaffSession.objects.get(session_key=session.session_key)
    assert row.user == network.anna
    assert row.ip_address == "192.0.2.10"
    assert row.user_agent == "Firefox/140 Dienstrechner"


def test_next_is_carried_to_the_second_factor(network):
    enrol(network.anna)
    client = Client()
    response = client.post(
        "/anmelden/?next=/verzeichnis/",
        {"username": network.anna.email, "password": PASSWORD},
    )
    assert response["Location"] == f"{VERIFY_URL}?next=%2Fverzeichnis%2F"


def test_foreign_next_is_replaced_by_home(network):
    enrol(network.anna)
    response = Client().post(
        "/anmelden/?next=https://evil.example/phish",
        {"username": network.anna.email, "password": PASSWORD},
    )
    assert response["Location"] == f"{VERIFY_URL}?next=%2F"


def test_logging_in_again_asks_for_the_second_factor_again(network):
    """A new password login starts unverified, even in a browser that was verified:
    otherwise the password alone would restart the absolute session lifetime."""
    client = verified_client(network.anna)
    assert client.get("/").status_code == 200
    session = client.session
    session[sessions.STARTED] = old_start = time.time() - 3600
    session.save()
    response = password_login(client, network.anna.email)
    assert response["Location"].startswith(VERIFY_URL)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY_URL)
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.session[sessions.STARTED] > old_start
