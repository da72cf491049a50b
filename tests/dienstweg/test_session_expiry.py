"""Sessions end after idle time (SESSION_IDLE_TIMEOUT) and after their absolute
lifetime (SESSION_MAX_LIFETIME), however active they are. Time is the test's clock
(dienstweg.clock): it stands still until a test moves it."""

from __future__ import annotations

import pytest
from django.test import Client

from dienstweg import clock, sessions
from dienstweg.models import StaffSession
from tests.conftest import enrol, verified_client
from tests.dienstweg.signin import (
    is_verified_in,
    next_code,
    password_login,
    redirects_to_login,
    session_key,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
def anna(network) -> Client:
    """Anna, signed in through the real pages (which stamp start and last activity)."""
    return sign_in(network.anna, next_code(enrol(network.anna)))


def age_session(client: Client, *, started_ago: float, seen_ago: float) -> None:
    now = clock.now()
    session = client.session
    session[sessions.STARTED] = now - started_ago
    session[sessions.SEEN] = now - seen_ago
    session.save()


def test_session_within_its_limits_stays_open(anna, settings):
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    lifetime = settings.SESSION_MAX_LIFETIME.total_seconds()
    age_session(anna, started_ago=lifetime - 60, seen_ago=idle - 60)
    assert is_verified_in(anna)


def test_idle_session_is_logged_out(anna, settings):
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    key = session_key(anna)
    age_session(anna, started_ago=idle + 60, seen_ago=idle + 1)
    response = anna.get("/verzeichnis/")
    assert redirects_to_login(response)
    assert "next=/verzeichnis/" in response["Location"]
    assert not StaffSession.objects.filter(session_key=key).exists()
    assert redirects_to_login(anna.get("/"))


def test_session_past_its_lifetime_is_logged_out_despite_activity(anna, settings):
    lifetime = settings.SESSION_MAX_LIFETIME.total_seconds()
    key = session_key(anna)
    age_session(anna, started_ago=lifetime + 1, seen_ago=5)
    assert redirects_to_login(anna.get("/"))
    assert not StaffSession.objects.filter(session_key=key).exists()
    assert redirects_to_login(anna.get("/"))


def test_expired_session_is_told_why_on_the_login_page(anna, settings):
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    age_session(anna, started_ago=idle + 60, seen_ago=idle + 1)
    response = anna.get("/", follow=True)
    assert response.status_code == 200
    assert "Ihre Sitzung ist abgelaufen." in response.content.decode()


def test_expiry_applies_before_the_second_factor_too(network, settings):
    """A half-finished login (password only) does not wait at the code prompt forever."""
    enrol(network.anna)
    client = Client()
    password_login(client, network.anna.email)
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    age_session(client, started_ago=idle + 60, seen_ago=idle + 1)
    assert redirects_to_login(client.get("/zweiter-faktor/"))
    assert "_auth_user_id" not in client.session


def test_activity_moves_the_idle_deadline(anna, settings, clock):
    idle = settings.SESSION_IDLE_TIMEOUT.total_seconds()
    age_session(anna, started_ago=idle, seen_ago=idle - 60)
    assert is_verified_in(anna)  # active again: last activity is now
    assert anna.session[sessions.SEEN] == clock.now()
    clock.advance(120)  # two minutes on: past the old deadline, well within the new one
    assert is_verified_in(anna)


def test_logins_by_other_means_get_a_lifetime_too(network, settings):
    """Sessions made without our login page (e.g. force_login) are stamped on first use."""
    client = verified_client(network.anna)
    assert sessions.STARTED not in client.session
    assert is_verified_in(client)
    assert client.session[sessions.STARTED] == clock.now()
    lifetime = settings.SESSION_MAX_LIFETIME.total_seconds()
    age_session(client, started_ago=lifetime + 1, seen_ago=5)
    assert redirects_to_login(client.get("/"))
