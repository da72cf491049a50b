"""Logins, failed logins, failed second factors and logouts are in the audit trail,
without the typed login name."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from tests.dienstweg.signin import next_code, password_login, sign_in, submit_code, wrong_code

pytestmark = pytest.mark.usefixtures("slow_throttle")


def actions_of(user=None) -> list[str]:
    events = AuditEvent.objects.order_by("id")
    if user is not None:
        events = events.filter(actor_id=user.pk)
    return list(events.values_list("action", flat=True))


def test_login_and_second_factor_are_recorded(network, device):
    sign_in(network.anna, next_code(device))
    assert actions_of(network.anna)[-2:] == ["auth.login", "auth.second_factor_passed"]


def test_failed_login_names_the_account_by_id_only(network):
    password_login(Client(), network.anna.email, password="falsch-falsch-falsch")
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.target_type, event.target_id) == ("user", str(network.anna.pk))
    assert network.anna.email not in repr(AuditEvent.objects.values())


def test_failed_login_for_unknown_account_records_no_name(db):
    password_login(Client(), "niemand@example.org", password="falsch-falsch-falsch")
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.target_id == ""
    assert "niemand" not in repr(AuditEvent.objects.values())


def test_failed_second_factor_is_recorded(network, device):
    client = Client()
    password_login(client, network.anna.email)
    submit_code(client, wrong_code(device))
    event = AuditEvent.objects.get(action="auth.second_factor_failed")
    assert event.actor_id == network.anna.pk
    assert event.details == {"throttled": False}


def test_logout_is_recorded(network, device):
    client = sign_in(network.anna, next_code(device))
    client.post("/abmelden/")
    assert actions_of(network.anna)[-1] == "auth.logout"
