"""First login: setting up the authenticator app (/zweiter-faktor/einrichten/)."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from dienstweg.models import AuthenticatorDevice, BackupCode
from tests.conftest import current_code, enrol
from tests.dienstweg.signin import (
    BACKUP_CODE,
    ENROL_URL,
    VERIFY_URL,
    let_throttle_pass,
    password_login,
    submit_code,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("slow_throttle")


@pytest.fixture
def newcomer(network) -> Client:
    """Anna after her first password login: she has no second factor yet."""
    client = Client()
    response = password_login(client, network.anna.email)
    assert response["Location"].startswith(ENROL_URL)
    return client


def pending_device(user) -> AuthenticatorDevice:
    return AuthenticatorDevice.objects.get(user=user, confirmed=False)


def test_pages_redirect_to_enrolment_until_a_device_is_confirmed(network, newcomer):
    response = newcomer.get("/konto/")
    assert response.status_code == 302
    assert response["Location"] == f"{ENROL_URL}?next=%2Fkonto%2F"


def test_anonymous_visitor_cannot_enrol(network):
    response = Client().get(ENROL_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/anmelden/")
    assert not AuthenticatorDevice.objects.exists()


def test_page_shows_qr_code_and_secret(network, newcomer):
    response = newcomer.get(ENROL_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page
    secret = base64.b32encode(pending_device(network.anna).bin_key).decode().rstrip("=")
    shown = page.split('class="secret">')[1].split("</code>")[0]
    assert "".join(shown.split()) == secret


def test_reloading_the_page_keeps_the_same_secret(network, newcomer):
    newcomer.get(ENROL_URL)
    first = pending_device(network.anna).key
    newcomer.get(ENROL_URL)
    assert AuthenticatorDevice.objects.filter(user=network.anna).count() == 1
    assert pending_device(network.anna).key == first


def test_wrong_code_is_refused_and_device_stays_unconfirmed(network, newcomer):
    newcomer.get(ENROL_URL)
    device = pending_device(network.anna)
    response = submit_code(newcomer, wrong_code(device), url=ENROL_URL)
    assert response.status_code == 200
    assert "Der Code stimmt nicht." in response.content.decode()
    assert response.context["form"].errors["token"]
    device.refresh_from_db()
    assert not device.confirmed
    assert not BackupCode.objects.exists()
    assert newcomer.get("/").status_code == 302


def test_right_code_after_a_wrong_one_confirms(network, newcomer):
    newcomer.get(ENROL_URL)
    device = pending_device(network.anna)
    submit_code(newcomer, wrong_code(device), url=ENROL_URL)
    let_throttle_pass(device)
    response = submit_code(newcomer, current_code(device), url=ENROL_URL)
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_right_code_right_after_a_wrong_one_asks_to_wait(network, newcomer):
    newcomer.get(ENROL_URL)
    device = pending_device(network.anna)
    submit_code(newcomer, wrong_code(device), url=ENROL_URL)
    response = submit_code(newcomer, current_code(device), url=ENROL_URL)
    assert "Zu viele falsche Codes." in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed


def test_right_code_confirms_and_shows_ten_backup_codes(network, newcomer, settings):
    newcomer.get(ENROL_URL)
    device = pending_device(network.anna)
    response = submit_code(newcomer, current_code(device), url=ENROL_URL)
    assert response.status_code == 200
    codes = BACKUP_CODE.findall(response.content.decode())
    assert len(set(codes)) == settings.BACKUP_CODE_COUNT == 10
    device.refresh_from_db()
    assert device.confirmed
    assert BackupCode.objects.filter(device__user=network.anna).count() == 10


def test_session_is_verified_after_enrolment(network, newcomer):
    newcomer.get(ENROL_URL)
    submit_code(newcomer, current_code(pending_device(network.anna)), url=ENROL_URL)
    response = newcomer.get("/")
    assert response.status_code == 200
    assert "Guten Tag, Anna Albers" in response.content.decode()


def test_backup_codes_are_shown_only_once(network, newcomer):
    newcomer.get(ENROL_URL)
    device = pending_device(network.anna)
    first = submit_code(newcomer, current_code(device), url=ENROL_URL)
    codes = BACKUP_CODE.findall(first.content.decode())
    again = newcomer.post(ENROL_URL, {"token": current_code(device)}, follow=True)
    page = again.content.decode()
    assert not any(code in page for code in codes)
    assert not BACKUP_CODE.search(page)


def test_enrolled_user_cannot_add_another_device(network):
    enrol(network.anna)
    client = Client()
    password_login(client, network.anna.email)
    response = client.get(ENROL_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY_URL)
    assert AuthenticatorDevice.objects.filter(user=network.anna).count() == 1


def test_enrolled_user_cannot_confirm_a_new_device_by_posting(network):
    device = enrol(network.anna)
    client = Client()
    password_login(client, network.anna.email)
    response = submit_code(client, current_code(device, offset_steps=1), url=ENROL_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY_URL)
    assert client.get("/").status_code == 302
