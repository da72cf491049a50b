"""Accounts in the Django admin: name and e-mail only, never a password. The person gets a
link; the admin resends it, or resets a lost second factor, through admin actions."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import AuthenticatorDevice, EnrolmentLink, StaffSession, User
from tests.conftest import PASSWORD, enrol, verified_client
from tests.dienstweg.signin import redirects_to_login
from tests.dienstweg.test_deactivation import change_form_data

USERS_URL = "/admin/dienstweg/user/"
ADD_URL = f"{USERS_URL}add/"


@pytest.fixture
def ada(db) -> User:
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


@pytest.fixture
def admin_client(ada) -> Client:
    return verified_client(ada)


def test_add_form_asks_for_name_and_email_only(admin_client):
    response = admin_client.get(ADD_URL)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.fields) == {"email", "full_name"}
    content = response.content.decode().split('id="content"')[1]
    assert 'type="password"' not in content
    assert "password" not in content.lower()


def test_change_form_has_no_password_field(admin_client, network):
    response = admin_client.get(f"{USERS_URL}{network.anna.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "password" not in form.fields
    page = response.content.decode()
    assert 'type="password"' not in page
    assert network.anna.password not in page  # not even the hash
    assert "/password/" not in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_password_change_view_is_refused(admin_client, network, method):
    url = f"{USERS_URL}{network.anna.pk}/password/"
    data = {"password1": "Neues-Passwort-vom-Admin-1", "password2": "Neues-Passwort-vom-Admin-1"}
    response = getattr(admin_client, method)(url, data if method == "post" else None)
    assert response.status_code == 403
    network.anna.refresh_from_db()
    assert network.anna.check_password(PASSWORD)


def test_adding_an_account_sends_a_link_and_sets_no_password(admin_client, ada, send_outbox):
    response = admin_client.post(
        ADD_URL, {"email": " Nina@Example.org", "full_name": "Nina Neu"}, follow=True
    )
    assert response.status_code == 200
    nina = User.objects.get(email="nina@example.org")
    assert not nina.has_usable_password()
    link = EnrolmentLink.objects.get(user=nina)
    assert link.issued_by == ada
    [mail] = send_outbox()
    assert mail.to == ["nina@example.org"]
    page = response.content.decode()
    assert "Einrichtungslink an die E-Mail-Adresse gesendet" in page
    assert "/zugang/" not in page  # the admin never sees the link
    assert AuditEvent.objects.filter(action="account.created", actor_id=ada.pk).exists()


def test_email_is_fixed_once_she_has_a_password_or_a_second_factor(admin_client, network):
    response = admin_client.get(f"{USERS_URL}{network.anna.pk}/change/")
    assert "email" not in response.context["adminform"].form.fields


def test_corrected_email_before_enrolment_gets_a_fresh_link(admin_client, ada, send_outbox):
    first = actions.create_account("nina@exmaple.org", full_name="Nina Neu", by=ada)
    url = f"{USERS_URL}{first.link.user.pk}/change/"
    data = {"email": "nina@example.org", "full_name": "Nina Neu", "is_active": "on"}
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    # The first link's e-mail, not sent yet, is withdrawn: only the fresh one goes out.
    assert [mail.to for mail in send_outbox()] == [["nina@example.org"]]
    first.link.refresh_from_db()
    assert first.link.voided_at is not None


def test_admin_action_resends_the_link(admin_client, ada, django_capture_on_commit_callbacks):
    nina = actions.create_account("nina@example.org", full_name="Nina Neu", by=ada).link.user
    response = admin_client.post(
        USERS_URL, {"action": "send_enrolment_link", "_selected_action": [nina.pk]}, follow=True
    )
    assert "Einrichtungslink gesendet" in response.content.decode()
    assert EnrolmentLink.objects.filter(user=nina, voided_at=None).count() == 1
    assert EnrolmentLink.objects.filter(user=nina).count() == 2
    assert AuditEvent.objects.filter(action="account.enrolment_link_sent").count() == 2


def test_admin_action_refuses_to_resend_for_an_enrolled_account(admin_client, network):
    enrol(network.anna)
    response = admin_client.post(
        USERS_URL,
        {"action": "send_enrolment_link", "_selected_action": [network.anna.pk]},
        follow=True,
    )
    assert "schon eingerichtet" in response.content.decode()
    assert not EnrolmentLink.objects.exists()


def test_admin_resets_a_lost_second_factor(admin_client, ada, network, send_outbox):
    enrol(network.anna)
    browser = verified_client(network.anna)
    admin_client.post(
        USERS_URL, {"action": "reset_second_factor", "_selected_action": [network.anna.pk]}
    )
    assert not AuthenticatorDevice.objects.filter(user=network.anna).exists()
    assert not StaffSession.objects.filter(user=network.anna).exists()
    assert redirects_to_login(browser.get("/"))
    link = EnrolmentLink.objects.get(user=network.anna)
    assert link.purpose == EnrolmentLink.Purpose.REPLACE_FACTOR  # she keeps her password
    network.anna.refresh_from_db()
    assert network.anna.check_password(PASSWORD)
    assert [mail.subject for mail in send_outbox()] == [
        "Dienstweg: neuen zweiten Faktor einrichten"
    ]
    event = AuditEvent.objects.get(action="account.second_factor_reset")
    assert event.actor_id == ada.pk
    assert event.details == {"link": link.pk, "password_reset": False}


def test_admin_resets_password_and_second_factor(admin_client, network):
    enrol(network.anna)
    admin_client.post(
        USERS_URL,
        {"action": "reset_password_and_second_factor", "_selected_action": [network.anna.pk]},
    )
    network.anna.refresh_from_db()
    assert not network.anna.has_usable_password()
    assert EnrolmentLink.objects.get(user=network.anna).purpose == EnrolmentLink.Purpose.ENROL


def test_admin_cannot_reset_his_own_second_factor(admin_client, ada):
    response = admin_client.post(
        USERS_URL, {"action": "reset_second_factor", "_selected_action": [ada.pk]}, follow=True
    )
    assert "zweite Person" in response.content.decode()
    assert AuthenticatorDevice.objects.filter(user=ada, confirmed=True).exists()
    assert not EnrolmentLink.objects.exists()


def test_the_admin_records_a_new_account_and_admin_rights_with_ids_only(
    admin_client, ada, django_capture_on_commit_callbacks
):
    """Issue 14: creating an account and changing its staff/superuser flags through the
    admin go through the actions, which record them (target, actor, no name or e-mail)."""
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(ADD_URL, {"email": "nina@example.org", "full_name": "Nina Neu"})
    nina = User.objects.get(email="nina@example.org")
    [created] = AuditEvent.objects.filter(action="account.created")
    assert (created.actor_id, created.target_id) == (ada.pk, str(nina.pk))

    url = f"{USERS_URL}{nina.pk}/change/"
    data = change_form_data(admin_client.get(url))
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    data.update({"is_staff": "on", "is_superuser": "on"})
    assert admin_client.post(url, data).status_code == 302
    nina.refresh_from_db()
    assert nina.is_staff and nina.is_superuser
    [changed] = AuditEvent.objects.filter(action="account.admin_rights_changed")
    assert (changed.actor_id, changed.target_id) == (ada.pk, str(nina.pk))
    assert changed.details == {"user": nina.pk, "staff": True, "superuser": True}
    for event in (created, changed):
        text = str(event.details)
        assert "nina" not in text.casefold() and "Neu" not in text
