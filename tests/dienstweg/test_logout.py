"""Logging out (/abmelden/): ends the session on the server and in the browser."""

from __future__ import annotations

from django.conf import settings
from django.test import Client

from dienstweg.models import StaffSession
from tests.conftest import verified_client
from tests.dienstweg.signin import (
    LOGOUT_URL,
    is_verified_in,
    password_login,
    redirects_to_login,
    session_key,
)


def test_logout_ends_the_session(network):
    client = verified_client(network.anna)
    key = session_key(client)
    response = client.post(LOGOUT_URL)
    assert redirects_to_login(response)
    assert not StaffSession.objects.filter(session_key=key).exists()
    assert redirects_to_login(client.get("/"))


def test_old_session_cookie_is_useless_after_logout(network):
    client = verified_client(network.anna)
    key = session_key(client)
    client.post(LOGOUT_URL)
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    assert redirects_to_login(replay.get("/"))


def test_logout_clears_site_data_in_the_browser(network):
    response = verified_client(network.anna).post(LOGOUT_URL)
    assert response["Clear-Site-Data"] == '"cache", "cookies", "storage"'


def test_logout_ends_only_this_session(network):
    office = verified_client(network.anna)
    laptop = verified_client(network.anna)
    office.post(LOGOUT_URL)
    assert is_verified_in(laptop)


def test_logout_works_before_the_second_factor(network):
    client = Client()
    password_login(client, network.anna.email)
    response = client.post(LOGOUT_URL)
    assert redirects_to_login(response)
    assert "_auth_user_id" not in client.session


def test_logout_by_get_is_refused(network):
    """A link or an image on another page must not log anybody out."""
    client = verified_client(network.anna)
    response = client.get(LOGOUT_URL)
    assert response.status_code == 405
    assert is_verified_in(client)
