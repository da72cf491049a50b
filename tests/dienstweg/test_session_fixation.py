"""Session fixation: the session key changes at login and again after the second factor."""

from __future__ import annotations

from django.conf import settings
from django.test import Client

from dienstweg.models import StaffSession
from tests.conftest import enrol
from tests.dienstweg.signin import (
    is_verified_in,
    next_code,
    password_login,
    session_key,
    submit_code,
)


def test_session_key_changes_at_login_and_after_verification(network):
    device = enrol(network.anna)
    client = Client()
    before = client.session.session_key  # an anonymous session, as a visitor has
    password_login(client, network.anna.email)
    after_login = session_key(client)
    assert after_login != before
    submit_code(client, next_code(device))
    after_verification = session_key(client)
    assert after_verification not in {before, after_login}
    assert is_verified_in(client)


def test_old_session_keys_are_gone_from_the_database(network):
    device = enrol(network.anna)
    client = Client()
    before = client.session.session_key
    password_login(client, network.anna.email)
    after_login = session_key(client)
    submit_code(client, next_code(device))
    keys = set(StaffSession.objects.values_list("session_key", flat=True))
    assert before not in keys
    assert after_login not in keys
    assert session_key(client) in keys


def test_planted_session_key_gives_the_attacker_nothing(network):
    device = enrol(network.anna)
    attacker = Client()
    planted = attacker.session.session_key
    victim = Client()
    victim.cookies[settings.SESSION_COOKIE_NAME] = planted
    password_login(victim, network.anna.email)
    submit_code(victim, next_code(device))
    assert is_verified_in(victim)
    response = attacker.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/anmelden/")


def test_key_known_between_password_and_code_is_useless_afterwards(network):
    """Someone who read the key after the password step cannot ride the verified session."""
    device = enrol(network.anna)
    client = Client()
    password_login(client, network.anna.email)
    half_way = session_key(client)
    submit_code(client, next_code(device))
    onlooker = Client()
    onlooker.cookies[settings.SESSION_COOKIE_NAME] = half_way
    response = onlooker.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/anmelden/")
