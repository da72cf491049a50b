"""Lockout after repeated failed logins (django-axes), per pair of account and source address:
never the account alone or the address alone, so a lockout cannot be aimed at anyone."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import enrol
from tests.dienstweg.signin import WRONG_LOGIN, password_login

LOCKED = "Zu viele fehlgeschlagene Anmeldeversuche."
BAD_PASSWORD = "falsches-Passwort-123"


def main_part(response) -> str:
    """The page content without the header, whose forms carry per-request CSRF tokens."""
    return re.search(r"<main.*?</main>", response.content.decode(), re.S).group(0)


DESK = "192.0.2.1"


@pytest.fixture(autouse=True)
def enrolled(network):
    """Anna and Ben have set up their second factor: only then does the right password log
    in (an account without one is sent to its enrolment link, and no session starts)."""
    enrol(network.anna)
    enrol(network.ben)


def fail_from(address: str, email: str, times: int) -> list[int]:
    """Wrong passwords for one account from one address: the pair that counts."""
    return [
        password_login(Client(REMOTE_ADDR=address), email, BAD_PASSWORD).status_code
        for _ in range(times)
    ]


def fail_from_many_addresses(email: str, times: int) -> list[int]:
    """Wrong passwords for one account, each from another address: no pair reaches the limit."""
    return [
        password_login(Client(REMOTE_ADDR=f"198.51.100.{i}"), email, BAD_PASSWORD).status_code
        for i in range(1, times + 1)
    ]


def test_state_is_reset_between_tests_first(network, settings):
    assert not AccessAttempt.objects.exists()
    fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)


def test_state_is_reset_between_tests_second(network, settings):
    # Runs after the test above locked Anna out: the database rollback undid it.
    assert not AccessAttempt.objects.exists()
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 302


def test_failures_below_the_limit_only_show_the_login_error(network, settings):
    statuses = fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT - 1)
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 302


def test_account_is_locked_at_the_failure_limit(network, settings):
    statuses = fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)
    assert statuses[-1] == 429
    assert statuses[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)


def test_locked_account_refuses_even_the_right_password(network, settings):
    fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)
    client = Client(REMOTE_ADDR=DESK)
    response = password_login(client, network.anna.email)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_account_locked_from_one_address_still_logs_in_from_another(network, settings):
    fail_from("203.0.113.7", network.anna.email, settings.AXES_FAILURE_LIMIT)
    assert password_login(Client(REMOTE_ADDR="203.0.113.7"), network.anna.email).status_code == 429
    client = Client(REMOTE_ADDR=DESK)
    assert password_login(client, network.anna.email).status_code == 302
    assert client.session["_auth_user_id"] == str(network.anna.pk)


def test_failures_from_elsewhere_cannot_lock_a_known_account_out(network, settings):
    """Whoever knows Anna's address cannot lock her out, however many addresses they use."""
    statuses = fail_from_many_addresses(network.anna.email, 3 * settings.AXES_FAILURE_LIMIT)
    assert statuses == [200] * (3 * settings.AXES_FAILURE_LIMIT)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 302


def test_colleague_behind_the_same_address_still_logs_in(network, settings):
    """One person's wrong passwords behind the office's shared address lock nobody else."""
    office = "203.0.113.7"
    statuses = fail_from(office, network.anna.email, settings.AXES_FAILURE_LIMIT)
    assert statuses[-1] == 429
    assert password_login(Client(REMOTE_ADDR=office), network.anna.email).status_code == 429
    client = Client(REMOTE_ADDR=office)
    assert password_login(client, network.ben.email).status_code == 302
    assert client.session["_auth_user_id"] == str(network.ben.pk)


def test_lockout_page_explains_in_german(network, settings):
    fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    page = response.content.decode()
    assert LOCKED in page
    assert "die Anmeldung gesperrt" in page
    assert "in 15 Minuten erneut" in page
    assert WRONG_LOGIN not in page
    assert network.anna.email not in page


def test_lockout_message_is_the_same_for_unknown_accounts(network, settings):
    fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)
    fail_from("192.0.2.2", "niemand@example.org", settings.AXES_FAILURE_LIMIT)
    known = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    unknown = password_login(Client(REMOTE_ADDR="192.0.2.2"), "niemand@example.org")
    assert known.status_code == unknown.status_code == 429
    assert LOCKED in main_part(known)
    assert main_part(known) == main_part(unknown)


def test_changing_the_case_of_the_email_does_not_dodge_the_lockout(network, settings):
    variants = ["anna@example.org", "Anna@example.org", "ANNA@EXAMPLE.ORG", "anna@Example.org"]
    for i in range(settings.AXES_FAILURE_LIMIT):
        password_login(Client(REMOTE_ADDR=DESK), variants[i % len(variants)], BAD_PASSWORD)
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 429


def test_lockout_ends_after_the_cool_off_time(network, settings):
    fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 429
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= settings.AXES_COOLOFF_TIME
        attempt.save(update_fields=["attempt_time"])
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 302


def test_one_wrong_password_each_on_many_accounts_locks_no_one(network, settings):
    """Spraying one guess per account stays below every pair's limit; the address is not
    locked, so the colleagues behind it are not either."""
    sprayer = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [
        password_login(sprayer, f"konto{i}@example.org", BAD_PASSWORD).status_code
        for i in range(settings.AXES_FAILURE_LIMIT + 1)
    ]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT + 1)
    response = password_login(Client(REMOTE_ADDR="203.0.113.7"), network.ben.email)
    assert response.status_code == 302


def test_forged_forwarded_for_header_does_not_dodge_the_lockout(network, settings):
    assert settings.TRUSTED_PROXIES == []
    statuses = [
        password_login(
            Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i + 1}"),
            network.anna.email,
            BAD_PASSWORD,
        ).status_code
        for i in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    response = password_login(
        Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="192.0.2.99"), network.anna.email
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
        password_login(Client(**behind_proxy), network.anna.email, BAD_PASSWORD).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429
    assert password_login(Client(**behind_proxy), network.anna.email).status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    other_client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert password_login(other_client, network.anna.email).status_code == 302


@pytest.mark.parametrize("email", ["anna@example.org", "niemand@example.org"])
def test_failed_logins_count_alike_for_known_and_unknown_accounts(network, settings, email):
    statuses = fail_from(DESK, email, settings.AXES_FAILURE_LIMIT)
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]


def test_own_successful_logins_do_not_wipe_failures_on_another_account(network, settings):
    """Ben guesses Anna's password from his desk and logs in as himself in between."""
    desk = "203.0.113.7"
    for _guess in range(settings.AXES_FAILURE_LIMIT - 1):
        password_login(Client(REMOTE_ADDR=desk), network.anna.email, BAD_PASSWORD)
    assert password_login(Client(REMOTE_ADDR=desk), network.ben.email).status_code == 302
    last_guess = password_login(Client(REMOTE_ADDR=desk), network.anna.email, BAD_PASSWORD)
    assert last_guess.status_code == 429


def test_own_successful_login_elsewhere_does_not_wipe_a_guessers_failures(network, settings):
    """Anna logging in at her desk does not reset what a guesser has tried from elsewhere."""
    guesser = "203.0.113.7"
    fail_from(guesser, network.anna.email, settings.AXES_FAILURE_LIMIT - 1)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 302
    last_guess = password_login(Client(REMOTE_ADDR=guesser), network.anna.email, BAD_PASSWORD)
    assert last_guess.status_code == 429


def test_own_successful_logins_do_not_wipe_the_pairs_count(network, settings):
    """A guesser with one valid password cannot reset the count on another account from her
    address by using it, round after round."""
    guesser = "203.0.113.7"
    statuses = []
    for _round in range(2):
        statuses += fail_from(guesser, "konto@example.org", settings.AXES_FAILURE_LIMIT - 1)
        assert password_login(Client(REMOTE_ADDR=guesser), network.ben.email).status_code == 302
    assert 429 in statuses


def test_successful_login_clears_the_accounts_own_failures(network, settings):
    """A typo or two before the right password does not count against her later on."""
    for _round in range(2):
        for _typo in range(settings.AXES_FAILURE_LIMIT - 1):
            password_login(Client(), network.anna.email, BAD_PASSWORD)
        assert password_login(Client(), network.anna.email).status_code == 302
    assert not AccessAttempt.objects.exists()


def test_audit_trail_records_the_failures_and_the_pair_lockout(network, settings):
    fail_from(DESK, network.anna.email, settings.AXES_FAILURE_LIMIT)
    password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert password_login(Client(REMOTE_ADDR="203.0.113.7"), network.ben.email).status_code == 302
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    # The refused right password counts as a failed login too, as before.
    assert actions.count("auth.login_failed") == settings.AXES_FAILURE_LIMIT + 1
    assert actions.count("auth.locked_out") == 2
    assert actions[-1] == "auth.login"
