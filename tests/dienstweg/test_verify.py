"""Later logins: the authenticator code on /zweiter-faktor/, its replay guard and back-off."""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import hotp

from tests.conftest import Clock, current_code, enrol
from tests.dienstweg.signin import (
    ENROL_URL,
    THROTTLED,
    VERIFY_URL,
    WRONG_CODE,
    is_verified_in,
    let_throttle_pass,
    next_code,
    password_login,
    sign_in,
    submit_code,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("slow_throttle")


@pytest.fixture
def returning(network, device) -> Client:
    """Anna after the password step of a later login."""
    client = Client()
    response = password_login(client, network.anna.email)
    assert response["Location"].startswith(VERIFY_URL)
    return client


def test_anonymous_visitor_is_sent_to_login(db):
    response = Client().get(VERIFY_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/anmelden/")


def test_user_without_device_is_sent_to_enrolment(network):
    client = Client()
    client.force_login(network.anna)  # a session from before enrolment links
    response = client.get(VERIFY_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(ENROL_URL)


def test_current_code_verifies_the_session(device, returning):
    response = submit_code(returning, next_code(device))
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert returning.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert is_verified_in(returning)


def test_code_with_spaces_is_accepted(device, returning):
    code = next_code(device)
    submit_code(returning, f" {code[:3]} {code[3:]} ")
    assert is_verified_in(returning)


def test_verification_continues_to_the_requested_page(device, returning):
    response = returning.post(f"{VERIFY_URL}?next=/konto/", {"token": next_code(device)})
    assert response["Location"] == "/konto/"


def test_verification_does_not_continue_to_a_foreign_site(device, returning):
    response = returning.post(
        f"{VERIFY_URL}?next=https://evil.example/", {"token": next_code(device)}
    )
    assert response["Location"] == "/"


def test_wrong_code_is_refused(device, returning):
    response = submit_code(returning, wrong_code(device))
    assert response.status_code == 200
    assert WRONG_CODE in response.content.decode()
    assert DEVICE_ID_SESSION_KEY not in returning.session
    assert not is_verified_in(returning)


def test_code_of_another_users_device_is_refused(network, device):
    other = enrol(network.ben)
    if next_code(other) == next_code(device):  # one in a million: both keys give one code
        pytest.skip("the two devices happen to show the same code")
    client = Client()
    password_login(client, network.anna.email)
    response = submit_code(client, next_code(other))
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(client)


def test_code_cannot_be_replayed_for_a_second_login(network, device):
    code = next_code(device)
    first = sign_in(network.anna, code)
    assert is_verified_in(first)
    second = Client()
    password_login(second, network.anna.email)
    response = submit_code(second, code)
    assert response.status_code == 200
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(second)


def test_code_used_at_enrolment_cannot_be_replayed(network, device, returning):
    # enrol() confirmed the device with a code; the device remembers its time step.
    enrolment_code = f"{hotp(device.bin_key, device.last_t, digits=device.digits):06d}"
    response = submit_code(returning, enrolment_code)
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(returning)


def test_right_code_right_after_a_wrong_one_is_throttled(device, returning):
    submit_code(returning, wrong_code(device))
    response = submit_code(returning, next_code(device))
    assert response.status_code == 200
    assert THROTTLED in response.content.decode()
    assert not is_verified_in(returning)


def test_wrong_codes_double_the_wait(device, returning):
    submit_code(returning, wrong_code(device))
    let_throttle_pass(device)
    submit_code(returning, wrong_code(device))
    device.refresh_from_db()
    assert device.throttling_failure_count == 2
    allowed, details = device.verify_is_allowed()
    assert not allowed
    wait = details["locked_until"] - device.throttling_failure_timestamp
    assert wait.total_seconds() == 2 * 60  # factor x 2^(failures - 1)


def test_right_code_is_accepted_once_the_wait_is_over(device, returning):
    submit_code(returning, wrong_code(device))
    let_throttle_pass(device)
    submit_code(returning, next_code(device))
    assert is_verified_in(returning)
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_throttled_code_is_not_used_up(device, returning):
    code = next_code(device)
    submit_code(returning, wrong_code(device))
    submit_code(returning, code)  # refused: too soon after the wrong one
    let_throttle_pass(device)
    submit_code(returning, code)
    assert is_verified_in(returning)


def test_verified_user_is_sent_on(device, returning):
    submit_code(returning, next_code(device))
    response = returning.get(f"{VERIFY_URL}?next=/konto/")
    assert response.status_code == 302
    assert response["Location"] == "/konto/"


def last_second_of_a_later_step(clock: Clock, device) -> None:
    """Move the clock to the last second of a time step the device has not used yet."""
    clock.advance(2 * device.step + device.step - clock.now() % device.step - 1)


def test_a_code_read_as_its_step_ends_is_accepted_in_the_next(device, returning, clock):
    # Typed in and sent, the code of the app arrives a moment after the step changed.
    last_second_of_a_later_step(clock, device)
    code = current_code(device)
    clock.advance(2)
    assert submit_code(returning, code).status_code == 302
    assert is_verified_in(returning)


def test_a_code_two_steps_old_is_refused(device, returning, clock):
    last_second_of_a_later_step(clock, device)
    code = current_code(device)
    clock.advance(device.step + 2)
    response = submit_code(returning, code)
    assert WRONG_CODE in response.content.decode()
    assert not is_verified_in(returning)
