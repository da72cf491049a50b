"""Setting up one's access through the enrolment link (/zugang/<token>/): she chooses her
password, sets up her authenticator app, sees her backup codes once and is signed in. The
login page never enrols (/zweiter-faktor/einrichten/ only points to the link)."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest
from django.test import Client

from dienstweg import actions
from dienstweg.models import AuthenticatorDevice, BackupCode, EnrolmentLink, User
from tests.conftest import PASSWORD, current_code, enrol
from tests.dienstweg.signin import (
    BACKUP_CODE,
    ENROL_URL,
    VERIFY_URL,
    is_verified_in,
    let_throttle_pass,
    password_login,
    sign_in,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("slow_throttle")

NEW_PASSWORD = "Wohngeld-Antrag-2026-sicher"
INVALID = "Dieser Link gilt nicht (mehr)."


@pytest.fixture
def nina(db) -> tuple[User, str]:
    """Nina, whose account an admin has just created: no password yet, a link in her mail."""
    issued = actions.create_account("nina@example.org", full_name="Nina Neu", by=None)
    return issued.link.user, urlsplit(issued.url).path


def pending_device(user: User) -> AuthenticatorDevice:
    return AuthenticatorDevice.objects.get(user=user, confirmed=False)


def shown_secret(page: str) -> str:
    return "".join(page.split('class="secret">')[1].split("</code>")[0].split())


def enrol_form(token: str, password: str = NEW_PASSWORD, again: str | None = None) -> dict:
    return {"new_password1": password, "new_password2": again or password, "token": token}


def test_link_page_asks_for_a_password_and_shows_qr_code_and_secret(nina):
    user, url = nina
    response = Client().get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Zugang einrichten" in page
    assert 'name="new_password1"' in page and 'name="new_password2"' in page
    assert "<svg" in page
    secret = base64.b32encode(pending_device(user).bin_key).decode().rstrip("=")
    assert shown_secret(page) == secret


def test_reloading_in_the_same_browser_keeps_the_secret(nina):
    user, url = nina
    browser = Client()
    first = shown_secret(browser.get(url).content.decode())
    assert shown_secret(browser.get(url).content.decode()) == first
    assert AuthenticatorDevice.objects.filter(user=user).count() == 1


def test_another_browser_never_sees_the_secret_she_confirms(nina):
    """Whoever opened the link before her learns nothing about the factor she sets up."""
    user, url = nina
    other = shown_secret(Client().get(url).content.decode())
    browser = Client()
    mine = shown_secret(browser.get(url).content.decode())
    assert mine != other
    device = pending_device(user)
    browser.post(url, enrol_form(current_code(device)))
    device.refresh_from_db()
    assert device.confirmed
    assert base64.b32encode(device.bin_key).decode().rstrip("=") == mine


def test_right_password_and_code_sign_her_in_with_ten_backup_codes(nina, settings):
    user, url = nina
    browser = Client()
    browser.get(url)
    response = browser.post(url, enrol_form(current_code(pending_device(user))))
    assert response.status_code == 200
    codes = BACKUP_CODE.findall(response.content.decode())
    assert len(set(codes)) == settings.BACKUP_CODE_COUNT
    assert BackupCode.objects.filter(device__user=user).count() == settings.BACKUP_CODE_COUNT
    assert is_verified_in(browser)
    assert "Guten Tag, Nina Neu" in browser.get("/").content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_she_then_logs_in_with_her_own_password_and_code(nina):
    user, url = nina
    browser = Client()
    browser.get(url)
    device = pending_device(user)
    browser.post(url, enrol_form(current_code(device)))
    client = Client()
    response = password_login(client, user.email, NEW_PASSWORD)
    assert response["Location"].startswith(VERIFY_URL)


def test_the_link_works_once(nina):
    user, url = nina
    browser = Client()
    browser.get(url)
    device = pending_device(user)
    browser.post(url, enrol_form(current_code(device)))
    again = Client().get(url)
    assert again.status_code == 404
    assert INVALID in again.content.decode()
    replay = Client().post(url, enrol_form(current_code(device, 1), password="Anderes-Passwort-99"))
    assert replay.status_code == 404
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuthenticatorDevice.objects.filter(user=user).count() == 1


def test_wrong_code_changes_nothing(nina):
    user, url = nina
    browser = Client()
    browser.get(url)
    device = pending_device(user)
    response = browser.post(url, enrol_form(wrong_code(device)))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Der Code stimmt nicht." in page
    assert "Bitte prüfen Sie Ihre Eingaben" in page  # the error summary at the top
    device.refresh_from_db()
    assert not device.confirmed
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert EnrolmentLink.objects.get(user=user).used_at is None
    assert not is_verified_in(browser)


def test_right_code_after_a_wrong_one_and_a_pause(nina):
    user, url = nina
    browser = Client()
    browser.get(url)
    device = pending_device(user)
    browser.post(url, enrol_form(wrong_code(device)))
    right_away = browser.post(url, enrol_form(current_code(device)))
    assert "Zu viele falsche Codes." in right_away.content.decode()
    let_throttle_pass(device)
    browser.post(url, enrol_form(current_code(device)))
    assert is_verified_in(browser)


@pytest.mark.parametrize(
    "password, again, message",
    [
        ("kurz-1", None, "zu kurz"),
        ("123456789012345", None, "komplett numerisch"),
        (NEW_PASSWORD, "Wohngeld-Antrag-2026-anders", "stimmen nicht überein"),
    ],
    ids=["too-short", "only-digits", "mismatch"],
)
def test_password_rules_apply_and_the_code_is_not_used_up(nina, password, again, message):
    user, url = nina
    browser = Client()
    browser.get(url)
    device = pending_device(user)
    response = browser.post(url, enrol_form(current_code(device), password, again))
    assert message in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed and device.last_t == -1  # the code was not checked
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_backup_codes_are_shown_only_once(nina):
    user, url = nina
    browser = Client()
    browser.get(url)
    first = browser.post(url, enrol_form(current_code(pending_device(user))))
    codes = BACKUP_CODE.findall(first.content.decode())
    again = browser.get(url)
    assert not any(code in again.content.decode() for code in codes)


def test_lost_factor_link_asks_for_the_current_password(network, device):
    """After a reset she proves her password again: the link alone is not enough."""
    anna = network.anna
    lead = actions.create_staff("lena@example.org", full_name="Lena Leitung", password=PASSWORD)
    actions.add_membership(lead, agency=network.project, role="lead", by=None)
    url = urlsplit(actions.reset_second_factor(anna, by=lead).url).path
    browser = Client()
    page = browser.get(url).content.decode()
    assert "Neuen zweiten Faktor einrichten" in page
    assert 'name="password"' in page and 'name="new_password1"' not in page
    new_device = pending_device(anna)
    wrong = {"password": "falsch-falsch-falsch", "token": current_code(new_device)}
    response = browser.post(url, wrong)
    assert "Das Passwort stimmt nicht." in response.content.decode()
    let_throttle_pass(new_device)
    browser.post(url, {"password": PASSWORD, "token": current_code(new_device)})
    assert is_verified_in(browser)
    anna.refresh_from_db()
    assert anna.check_password(PASSWORD)


def test_login_page_no_longer_enrols(network):
    client = Client()
    response = password_login(client, network.anna.email)
    assert response["Location"] == ENROL_URL
    response = client.get(ENROL_URL)
    assert 'name="token"' not in response.content.decode()
    assert not AuthenticatorDevice.objects.filter(user=network.anna).exists()


def test_a_session_without_second_factor_is_ended_at_the_hint(network):
    client = Client()
    client.force_login(network.anna)  # e.g. from before enrolment links
    response = client.get("/konto/")
    assert response["Location"].startswith(ENROL_URL)
    client.get(response["Location"])
    assert "_auth_user_id" not in client.session


def test_enrolled_user_is_sent_to_verification(network):
    device = enrol(network.anna)
    client = Client()
    password_login(client, network.anna.email)
    response = client.get(ENROL_URL)
    assert response["Location"].startswith(VERIFY_URL)
    assert is_verified_in(sign_in(network.anna, current_code(device, 1)))
