"""Lockout after repeated failed logins (django-axes), per account and per source address."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.dienstweg.signin import WRONG_LOGIN, password_login

LOCKED = "Zu viele fehlgeschlagene Anmeldeversuche."
BAD_PASSWORD = "falsches-Passwort-123"


def main_part(response) -> str:
    """The page content without the header, whose forms carry per-request CSRF tokens."""
    return re.search(r"<main.*?</main>", response.content.decode(), re.S).group(0)


def fail_from_many_addresses(email: str, times: int) -> list[int]:
    """Wrong passwords for one account, each from another address: only the account counts."""
    return [
        password_login(Client(REMOTE_ADDR=f"198.51.100.{i}"), email, BAD_PASSWORD).status_code
        for i in range(1, times + 1)
    ]


def test_state_is_reset_between_tests_first(network, settings):
    assert not AccessAttempt.objects.exists()
    fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT)


def test_state_is_reset_between_tests_second(network, settings):
    # Runs after the test above locked Anna out: the database rollback undid it.
    assert not AccessAttempt.objects.exists()
    response = password_login(Client(), network.anna.email)
    assert response.status_code == 302


def test_failures_below_the_limit_only_show_the_login_error(network, settings):
    statuses = fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT - 1)
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    response = password_login(Client(REMOTE_ADDR="192.0.2.1"), network.anna.email)
    assert response.status_code == 302


def test_account_is_locked_at_the_failure_limit(network, settings):
    statuses = fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT)
    assert statuses[-1] == 429
    assert statuses[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)


def test_locked_account_refuses_even_the_right_password(network, settings):
    fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT)
    client = Client(REMOTE_ADDR="192.0.2.1")
    response = password_login(client, network.anna.email)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_lockout_page_explains_in_german(network, settings):
    fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT)
    response = password_login(Client(REMOTE_ADDR="192.0.2.1"), network.anna.email)
    page = response.content.decode()
    assert LOCKED in page
    assert "die Anmeldung gesperrt" in page
    assert "in 15 Minuten erneut" in page
    assert WRONG_LOGIN not in page
    assert network.anna.email not in page


def test_lockout_message_is_the_same_for_unknown_accounts(network, settings):
    fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT)
    fail_from_many_addresses("niemand@example.org", settings.AXES_FAILURE_LIMIT)
    known = password_login(Client(REMOTE_ADDR="192.0.2.1"), network.anna.email)
    unknown = password_login(Client(REMOTE_ADDR="192.0.2.2"), "niemand@example.org")
    assert known.status_code == unknown.status_code == 429
    assert LOCKED in main_part(known)
    assert main_part(known) == main_part(unknown)


def test_changing_the_case_of_the_email_does_not_dodge_the_lockout(network, settings):
    variants = ["anna@example.org", "Anna@example.org", "ANNA@EXAMPLE.ORG", "anna@Example.org"]
    for i in range(settings.AXES_FAILURE_LIMIT):
        client = Client(REMOTE_ADDR=f"198.51.100.{i + 1}")
        password_login(client, variants[i % len(variants)], BAD_PASSWORD)
    response = password_login(Client(REMOTE_ADDR="192.0.2.1"), network.anna.email)
    assert response.status_code == 429


def test_lockout_ends_after_the_cool_off_time(network, settings):
    fail_from_many_addresses(network.anna.email, settings.AXES_FAILURE_LIMIT)
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= settings.AXES_COOLOFF_TIME
        attempt.save(update_fields=["attempt_time"])
    response = password_login(Client(REMOTE_ADDR="192.0.2.1"), network.anna.email)
    assert response.status_code == 302


def test_source_address_is_locked_after_failures_on_many_accounts(network, settings):
    sprayer = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [
        password_login(sprayer, f"konto{i}@example.org", BAD_PASSWORD).status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429
    # Ben shares the address (same office network): he is refused too ...
    response = password_login(Client(REMOTE_ADDR="203.0.113.7"), network.ben.email)
    assert response.status_code == 429
    # ... but his account is not locked: from elsewhere he gets in.
    response = password_login(Client(REMOTE_ADDR="192.0.2.1"), network.ben.email)
    assert response.status_code == 302


def test_forged_forwarded_for_header_does_not_dodge_the_lockout(network, settings):
    assert settings.TRUSTED_PROXIES == []
    statuses = [
        password_login(
            Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i + 1}"),
            f"konto{i}@example.org",
            BAD_PASSWORD,
        ).status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    response = password_login(
        Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="192.0.2.99"), network.ben.email
    )
    assert response.status_code == 429


def test_trusted_proxy_passes_on_the_client_address(network, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    statuses = [
        password_login(
            Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{i + 1}"),
            f"konto{i}@example.org",
            BAD_PASSWORD,
        ).status_code
        for i in range(settings.AXES_FAILURE_LIMIT + 1)
    ]
    # Six different people behind the proxy, one mistake each: nobody is locked out.
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT + 1)
    recorded = set(AccessAttempt.objects.values_list("ip_address", flat=True))
    assert recorded == {f"198.51.100.{i + 1}" for i in range(settings.AXES_FAILURE_LIMIT + 1)}


def test_trusted_proxy_locks_the_client_not_the_proxy(network, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    behind_proxy = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    statuses = [
        password_login(Client(**behind_proxy), f"konto{i}@example.org", BAD_PASSWORD).status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429
    assert password_login(Client(**behind_proxy), network.ben.email).status_code == 429
    other_client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert password_login(other_client, network.ben.email).status_code == 302


@pytest.mark.parametrize("email", ["anna@example.org", "niemand@example.org"])
def test_failed_logins_count_alike_for_known_and_unknown_accounts(network, settings, email):
    statuses = fail_from_many_addresses(email, settings.AXES_FAILURE_LIMIT)
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]


def test_own_successful_logins_do_not_wipe_failures_on_another_account(network, settings):
    """Ben guesses Anna's password from his desk and logs in as himself in between."""
    desk, phone = "203.0.113.7", "198.51.100.44"
    for _guess in range(settings.AXES_FAILURE_LIMIT - 1):
        password_login(Client(REMOTE_ADDR=desk), network.anna.email, BAD_PASSWORD)
    assert password_login(Client(REMOTE_ADDR=desk), network.ben.email).status_code == 302
    last_guess = password_login(Client(REMOTE_ADDR=phone), network.anna.email, BAD_PASSWORD)
    assert last_guess.status_code == 429


def test_own_successful_logins_do_not_wipe_the_source_lockout(network, settings):
    """A sprayer with one valid password cannot reset her address's count by using it."""
    sprayer = "203.0.113.7"
    statuses = []
    for round_ in range(2):
        for guess in range(settings.AXES_FAILURE_LIMIT - 1):
            email = f"konto{round_}-{guess}@example.org"
            statuses.append(
                password_login(Client(REMOTE_ADDR=sprayer), email, BAD_PASSWORD).status_code
            )
        password_login(Client(REMOTE_ADDR=sprayer), network.ben.email)
    assert 429 in statuses


def test_successful_login_clears_the_accounts_own_failures(network, settings):
    """A typo or two before the right password does not count against her later on."""
    for _round in range(2):
        for _typo in range(settings.AXES_FAILURE_LIMIT - 1):
            password_login(Client(), network.anna.email, BAD_PASSWORD)
        assert password_login(Client(), network.anna.email).status_code == 302
    assert not AccessAttempt.objects.exists()
