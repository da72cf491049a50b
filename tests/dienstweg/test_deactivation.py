"""Deactivating an account, and ending a user's sessions from the admin: her open
browsers are logged out at once, not at their next expiry."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from dienstweg import actions
from dienstweg.models import AuthenticatorDevice, StaffSession, User
from tests.conftest import PASSWORD, verified_client
from tests.dienstweg.signin import is_verified_in, password_login, redirects_to_login

USERS_URL = "/admin/dienstweg/user/"


@pytest.fixture
def admin_client(db) -> Client:
    ada = User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")
    return verified_client(ada)


@pytest.fixture
def anna_browsers(network) -> list[Client]:
    return [verified_client(network.anna), verified_client(network.anna)]


def change_form_data(response: Any) -> dict[str, Any]:
    """What the browser would send back for the admin change form as it was rendered."""
    data: dict[str, Any] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for name, field in form.fields.items():
            if field.disabled:
                continue
            value = form[name].value()
            if value is True:
                data[form.add_prefix(name)] = "on"
            elif value not in (None, False):
                data[form.add_prefix(name)] = value
    return data


def test_deactivation_ends_all_sessions(network, anna_browsers):
    actions.deactivate_staff(network.anna, by=None)
    assert not StaffSession.objects.filter(user=network.anna).exists()
    for browser in anna_browsers:
        assert redirects_to_login(browser.get("/"))


def test_deactivation_leaves_other_users_logged_in(network, anna_browsers):
    ben = verified_client(network.ben)
    actions.deactivate_staff(network.anna, by=None)
    assert is_verified_in(ben)


def test_deactivated_user_cannot_log_in_again(network):
    actions.deactivate_staff(network.anna, by=None)
    response = password_login(Client(), network.anna.email)
    assert response.status_code == 200
    assert "E-Mail-Adresse oder Passwort ist falsch." in response.content.decode()


def test_admin_action_deactivates_and_ends_sessions(network, admin_client, anna_browsers):
    response = admin_client.post(
        USERS_URL, {"action": "deactivate", "_selected_action": [network.anna.pk]}
    )
    assert response.status_code == 302
    network.anna.refresh_from_db()
    assert not network.anna.is_active
    assert not StaffSession.objects.filter(user=network.anna).exists()
    for browser in anna_browsers:
        assert redirects_to_login(browser.get("/"))


def test_unticking_active_in_the_admin_ends_sessions(network, admin_client, anna_browsers):
    url = f"{USERS_URL}{network.anna.pk}/change/"
    data = change_form_data(admin_client.get(url))
    assert data["is_active"] == "on"
    del data["is_active"]
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    network.anna.refresh_from_db()
    assert not network.anna.is_active
    assert not StaffSession.objects.filter(user=network.anna).exists()
    for browser in anna_browsers:
        assert redirects_to_login(browser.get("/"))


def test_saving_an_active_user_in_the_admin_keeps_her_sessions(
    network, admin_client, anna_browsers
):
    url = f"{USERS_URL}{network.anna.pk}/change/"
    data = change_form_data(admin_client.get(url))
    data["full_name"] = "Anna Albers-Ahrens"
    assert admin_client.post(url, data).status_code == 302
    for browser in anna_browsers:
        assert is_verified_in(browser)


def test_admin_action_ends_all_sessions_of_an_active_user(network, admin_client, anna_browsers):
    ben = verified_client(network.ben)
    response = admin_client.post(
        USERS_URL,
        {"action": "end_all_sessions", "_selected_action": [network.anna.pk]},
        follow=True,
    )
    assert "2 Sitzungen beendet." in response.content.decode()
    network.anna.refresh_from_db()
    assert network.anna.is_active
    for browser in anna_browsers:
        assert redirects_to_login(browser.get("/"))
    assert is_verified_in(ben)
    assert is_verified_in(admin_client)


def test_admin_action_resetting_the_second_factor_ends_sessions(
    network, admin_client, anna_browsers
):
    admin_client.post(
        USERS_URL, {"action": "reset_second_factor", "_selected_action": [network.anna.pk]}
    )
    assert not AuthenticatorDevice.objects.filter(user=network.anna).exists()
    for browser in anna_browsers:
        assert redirects_to_login(browser.get("/"))
