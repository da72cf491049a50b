"""Renewing one's own backup codes or authenticator needs a fresh login (password and a
current code, within DIENSTWEG_REAUTHENTICATION_MINUTES) and tells her, in the app and by
e-mail: a stolen or forgotten open session cannot silently replace her second factor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import AuthenticatorDevice, BackupCode, Notification, StaffSession
from tests.conftest import PASSWORD, current_code, verified_client
from tests.dienstweg.signin import (
    BACKUP_CODE,
    REAUTH_URL,
    RENEW_CODES_URL,
    RENEW_FACTOR_URL,
    confirm_login,
    is_verified_in,
    login_confirmed_at,
    next_code,
    redirects_to_login,
    sign_in,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("slow_throttle")


@pytest.fixture
def codes(network, device) -> list[str]:
    return actions.issue_backup_codes(network.anna)


@pytest.fixture
def anna_browser(network, device) -> Client:
    return verified_client(network.anna)


def stored_code_hashes(user) -> set[str]:
    return set(BackupCode.objects.filter(device__user=user).values_list("code_hash", flat=True))


# The rule, with an injected clock


def test_a_fresh_login_counts_for_five_minutes(settings):
    assert settings.REAUTHENTICATION_MINUTES == 5
    now = timezone.now()
    actions.check_fresh_login(now - timedelta(minutes=5), now=now)
    with pytest.raises(actions.FreshLoginRequired):
        actions.check_fresh_login(now - timedelta(minutes=5, seconds=1), now=now)
    with pytest.raises(actions.FreshLoginRequired):
        actions.check_fresh_login(None, now=now)


def test_the_action_refuses_without_a_fresh_login(network, codes):
    before = stored_code_hashes(network.anna)
    later = timezone.now() + timedelta(minutes=6)
    with pytest.raises(actions.FreshLoginRequired):
        actions.renew_backup_codes(
            network.anna, by=network.anna, reauthenticated_at=timezone.now(), now=later
        )
    assert stored_code_hashes(network.anna) == before
    assert not Notification.objects.exists()


def test_nobody_renews_someone_elses_codes(network, codes):
    with pytest.raises(actions.NotAllowed):
        actions.renew_backup_codes(network.anna, by=network.ben, reauthenticated_at=timezone.now())


# Backup codes


def test_renewing_codes_without_a_fresh_login_asks_for_one(network, codes, anna_browser):
    before = stored_code_hashes(network.anna)
    response = anna_browser.post(RENEW_CODES_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(REAUTH_URL)
    assert stored_code_hashes(network.anna) == before
    assert not Notification.objects.exists()


def test_a_stale_confirmation_is_not_enough(network, codes, anna_browser):
    login_confirmed_at(anna_browser, timezone.now() - timedelta(minutes=6))
    before = stored_code_hashes(network.anna)
    assert anna_browser.post(RENEW_CODES_URL)["Location"].startswith(REAUTH_URL)
    assert stored_code_hashes(network.anna) == before


def test_after_a_fresh_login_new_codes_and_a_notice(
    network, device, codes, anna_browser, send_outbox, django_capture_on_commit_callbacks
):
    response = confirm_login(anna_browser, next_code(device))
    assert response.status_code == 302
    assert response["Location"] == "/konto/"
    with django_capture_on_commit_callbacks(execute=True):
        response = anna_browser.post(RENEW_CODES_URL)
    assert response.status_code == 200
    new = BACKUP_CODE.findall(response.content.decode())
    assert len(set(new)) == 10 and not set(new) & set(codes)
    [notice] = Notification.objects.filter(user=network.anna)
    assert notice.kind == "account.backup_codes_renewed"
    assert "Waren Sie das nicht" in notice.title
    [mail] = send_outbox()
    assert mail.to == [network.anna.email]
    assert network.anna.full_name not in mail.body
    assert not any(code in mail.body for code in new)


def test_the_account_page_offers_renewal_only_after_a_fresh_login(network, device, anna_browser):
    page = anna_browser.get("/konto/").content.decode()
    assert f'href="{REAUTH_URL}?next=/konto/"' in page
    assert f'action="{RENEW_CODES_URL}"' not in page
    confirm_login(anna_browser, next_code(device))
    page = anna_browser.get("/konto/").content.decode()
    assert f'action="{RENEW_CODES_URL}"' in page
    assert f'href="{RENEW_FACTOR_URL}"' in page


# Confirming the login


def test_wrong_password_does_not_confirm(network, device, anna_browser):
    response = confirm_login(anna_browser, next_code(device), password="falsch-falsch-falsch")
    assert response.status_code == 200
    assert "Das Passwort stimmt nicht." in response.content.decode()
    assert anna_browser.post(RENEW_CODES_URL)["Location"].startswith(REAUTH_URL)
    event = AuditEvent.objects.get(action="auth.reauthentication_failed")
    assert event.details == {"step": "password", "throttled": False}


def test_wrong_code_does_not_confirm(network, device, anna_browser):
    response = confirm_login(anna_browser, wrong_code(device))
    assert "Der Code stimmt nicht" in response.content.decode()
    assert anna_browser.post(RENEW_CODES_URL)["Location"].startswith(REAUTH_URL)


def test_confirmation_is_audited(network, device, anna_browser):
    confirm_login(anna_browser, next_code(device))
    assert AuditEvent.objects.filter(action="auth.reauthenticated", actor_id=network.anna.pk)


def test_confirmation_needs_a_verified_session(network, device):
    client = Client()
    client.post("/anmelden/", {"username": network.anna.email, "password": PASSWORD})
    response = confirm_login(client, next_code(device))
    assert response.status_code == 302
    assert response["Location"].startswith("/zweiter-faktor/")


# A new authenticator app


def test_renewing_the_factor_without_a_fresh_login_asks_for_one(network, device, anna_browser):
    response = anna_browser.get(RENEW_FACTOR_URL)
    assert response["Location"].startswith(REAUTH_URL)
    assert AuthenticatorDevice.objects.filter(user=network.anna).count() == 1


def test_new_app_replaces_the_old_after_its_first_code(
    network, device, anna_browser, send_outbox, django_capture_on_commit_callbacks
):
    other_browser = verified_client(network.anna)
    confirm_login(anna_browser, next_code(device))
    page = anna_browser.get(RENEW_FACTOR_URL).content.decode()
    assert "<svg" in page
    new = AuthenticatorDevice.objects.get(user=network.anna, confirmed=False)
    # Until the new one is confirmed, the old one still works.
    assert is_verified_in(sign_in(network.anna, current_code(device, 2)))
    with django_capture_on_commit_callbacks(execute=True):
        response = anna_browser.post(RENEW_FACTOR_URL, {"token": current_code(new)})
    assert response.status_code == 200
    assert len(BACKUP_CODE.findall(response.content.decode())) == 10
    assert list(AuthenticatorDevice.objects.filter(user=network.anna)) == [new]
    new.refresh_from_db()
    assert new.confirmed
    assert is_verified_in(anna_browser)  # this session now rests on the new app
    assert redirects_to_login(other_browser.get("/"))  # her other sessions end
    assert StaffSession.objects.filter(user=network.anna).count() == 1
    kinds = set(Notification.objects.filter(user=network.anna).values_list("kind", flat=True))
    assert kinds == {"account.second_factor_renewed"}
    assert [mail.to for mail in send_outbox()] == [[network.anna.email]]
    assert AuditEvent.objects.filter(action="account.second_factor_renewed").count() == 1


def test_wrong_first_code_keeps_the_old_app(network, device, anna_browser):
    confirm_login(anna_browser, next_code(device))
    anna_browser.get(RENEW_FACTOR_URL)
    new = AuthenticatorDevice.objects.get(user=network.anna, confirmed=False)
    response = anna_browser.post(RENEW_FACTOR_URL, {"token": wrong_code(new)})
    assert "Der Code stimmt nicht" in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert not Notification.objects.exists()


def test_confirmation_running_out_meanwhile_stops_the_renewal(network, device, anna_browser):
    confirm_login(anna_browser, next_code(device))
    anna_browser.get(RENEW_FACTOR_URL)
    new = AuthenticatorDevice.objects.get(user=network.anna, confirmed=False)
    login_confirmed_at(anna_browser, timezone.now() - timedelta(minutes=10))
    response = anna_browser.post(RENEW_FACTOR_URL, {"token": current_code(new)})
    assert response["Location"].startswith(REAUTH_URL)
    new.refresh_from_db()
    assert not new.confirmed


# One's own password


CHANGE_PASSWORD_URL = "/konto/passwort/"
NEW_PASSWORD = "Mein-eigenes-Passwort-2026"


def test_changing_the_password_needs_a_fresh_login(network, device, anna_browser):
    response = anna_browser.post(
        CHANGE_PASSWORD_URL, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"].startswith(REAUTH_URL)
    network.anna.refresh_from_db()
    assert network.anna.check_password(PASSWORD)


def test_own_new_password_ends_other_sessions_and_notifies(
    network, device, anna_browser, send_outbox, django_capture_on_commit_callbacks
):
    other_browser = verified_client(network.anna)
    confirm_login(anna_browser, next_code(device))
    with django_capture_on_commit_callbacks(execute=True):
        response = anna_browser.post(
            CHANGE_PASSWORD_URL, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
    assert response["Location"] == "/konto/"
    network.anna.refresh_from_db()
    assert network.anna.check_password(NEW_PASSWORD)
    assert is_verified_in(anna_browser)  # this session stays
    assert redirects_to_login(other_browser.get("/"))
    kinds = set(Notification.objects.filter(user=network.anna).values_list("kind", flat=True))
    assert kinds == {"account.password_changed"}
    [mail] = send_outbox()
    assert NEW_PASSWORD not in mail.body
    assert AuditEvent.objects.filter(action="account.password_changed").count() == 1


def test_new_password_follows_the_rules(network, device, anna_browser):
    confirm_login(anna_browser, next_code(device))
    response = anna_browser.post(
        CHANGE_PASSWORD_URL, {"new_password1": "kurz", "new_password2": "kurz"}
    )
    assert "zu kurz" in response.content.decode()
    network.anna.refresh_from_db()
    assert network.anna.check_password(PASSWORD)


def test_guessing_the_password_on_the_confirmation_is_throttled_like_the_login(
    network, device, anna_browser, settings
):
    """A stolen session cannot guess her password here faster than at the login page."""
    for _guess in range(settings.LOGIN_LOCKOUT_FAILURES):
        response = confirm_login(anna_browser, wrong_code(device), password="geraten-123456")
    assert response.status_code == 429
    response = confirm_login(anna_browser, next_code(device))  # the right one must wait too
    assert response.status_code == 429
    assert anna_browser.post(RENEW_CODES_URL)["Location"].startswith(REAUTH_URL)
    # The same pair as her login: it waits there too.
    login = Client().post("/anmelden/", {"username": network.anna.email, "password": PASSWORD})
    assert login.status_code == 429
