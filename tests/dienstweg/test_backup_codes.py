"""Backup codes: one-time codes for a lost phone, stored only as keyed hashes."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from dienstweg import actions
from dienstweg.models import BackupCodeDevice
from tests.conftest import enrol, verified_client
from tests.dienstweg.signin import (
    BACKUP_CODE,
    RENEW_CODES_URL,
    THROTTLED,
    WRONG_CODE,
    is_verified_in,
    let_throttle_pass,
    login_confirmed_at,
    next_code,
    password_login,
    sign_in,
    submit_code,
)

pytestmark = pytest.mark.usefixtures("slow_throttle")


@pytest.fixture
def codes(network, device) -> list[str]:
    """Anna's backup codes as she printed them (enrol() threw its own set away)."""
    return actions.issue_backup_codes(network.anna)


def logged_in_with_password(user) -> Client:
    client = Client()
    password_login(client, user.email)
    return client


def raw_backup_code_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM dienstweg_backupcode")
        return cursor.fetchall()


def test_backup_code_verifies_the_session(network, codes):
    client = sign_in(network.anna, codes[0])
    assert is_verified_in(client)
    assert client.session["otp_device_id"] == (
        BackupCodeDevice.objects.get(user=network.anna).persistent_id
    )


@pytest.mark.parametrize(
    "typed", [str.lower, lambda code: code.replace("-", ""), lambda code: code.replace("-", " ")]
)
def test_backup_code_may_be_typed_without_dash_or_in_lower_case(network, codes, typed):
    client = logged_in_with_password(network.anna)
    submit_code(client, typed(codes[0]))
    assert is_verified_in(client)


def test_backup_code_works_only_once(network, codes):
    sign_in(network.anna, codes[0])
    again = logged_in_with_password(network.anna)
    response = submit_code(again, codes[0])
    assert response.status_code == 200
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(again)


def test_each_backup_code_works_once(network, codes):
    for code in codes:
        assert is_verified_in(sign_in(network.anna, code))
    assert not BackupCodeDevice.objects.get(user=network.anna).codes.exists()


def test_backup_codes_of_another_user_are_refused(network, device, codes):
    enrol(network.ben)
    client = logged_in_with_password(network.ben)
    response = submit_code(client, codes[0])
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(client)
    assert is_verified_in(sign_in(network.anna, codes[0]))  # and Anna's code is still unused


def test_database_holds_no_backup_code_in_plain_text(network, codes):
    rows = raw_backup_code_rows()
    assert len(rows) == 10
    stored = " ".join(str(value) for row in rows for value in row).upper()
    for code in codes:
        for form in {code, code.replace("-", ""), code.lower(), code.replace("-", "").lower()}:
            assert form.upper() not in stored


def test_backup_codes_are_hashed_with_a_key(network, codes):
    """A plain SHA-256 of a ten-letter code could be guessed offline from a stolen database."""
    stored = {str(value) for row in raw_backup_code_rows() for value in row}
    for code in codes:
        normalized = code.replace("-", "")
        for form in (code, normalized):
            assert hashlib.sha256(form.encode()).hexdigest() not in stored


def test_wrong_backup_code_is_throttled(network, codes):
    client = logged_in_with_password(network.anna)
    submit_code(client, "AAAAA-AAAAA")
    response = submit_code(client, codes[0])
    assert THROTTLED in response.content.decode()
    assert not is_verified_in(client)
    let_throttle_pass(BackupCodeDevice.objects.get(user=network.anna))
    submit_code(client, codes[0])
    assert is_verified_in(client)


def test_wrong_backup_code_does_not_slow_down_the_authenticator(network, device, codes):
    client = logged_in_with_password(network.anna)
    submit_code(client, "AAAAA-AAAAA")
    submit_code(client, next_code(device))
    assert is_verified_in(client)


def test_renewing_shows_ten_new_codes(network, device):
    client = verified_client(network.anna)
    login_confirmed_at(client, timezone.now())
    response = client.post(RENEW_CODES_URL)
    assert response.status_code == 200
    assert len(set(BACKUP_CODE.findall(response.content.decode()))) == 10


def test_renewing_invalidates_the_old_codes(network, codes):
    client = verified_client(network.anna)
    login_confirmed_at(client, timezone.now())
    response = client.post(RENEW_CODES_URL)
    new_codes = BACKUP_CODE.findall(response.content.decode())
    assert not set(new_codes) & set(codes)
    old = logged_in_with_password(network.anna)
    response = submit_code(old, codes[1])
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(old)
    let_throttle_pass(BackupCodeDevice.objects.get(user=network.anna))
    assert is_verified_in(sign_in(network.anna, new_codes[0]))


def test_renewing_needs_post(network, codes):
    client = verified_client(network.anna)
    assert client.get(RENEW_CODES_URL).status_code == 405
    assert is_verified_in(sign_in(network.anna, codes[0]))


def test_renewing_needs_a_verified_session(network, codes):
    client = logged_in_with_password(network.anna)
    response = client.post(RENEW_CODES_URL)
    assert response.status_code == 302
    assert is_verified_in(sign_in(network.anna, codes[0]))
