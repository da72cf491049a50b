"""The login throttle (dienstweg/security.py): wrong passwords count per pair of account and
source address, never the account alone or the address alone, so a lockout cannot be aimed
at anyone; each further failure makes the pair wait longer, up to a cap; a correct password
forgives the pair. The clock is patched (`clock`), nothing sleeps."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg.models import LoginThrottle
from dienstweg.security import lock_delay, pair_key
from tests.conftest import enrol
from tests.dienstweg.signin import WRONG_LOGIN, password_login

LOCKED = "Zu viele fehlgeschlagene Anmeldeversuche."
BAD_PASSWORD = "falsches-Passwort-123"
DESK = "192.0.2.1"
OFFICE = "203.0.113.7"


class Clock:
    """timezone.now() for the test: it moves only when told."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Iterator[Clock]:
    moment = Clock(timezone.now())
    with mock.patch("django.utils.timezone.now", side_effect=lambda: moment.now):
        yield moment


def main_part(response) -> str:
    """The page content without the header, whose forms carry per-request CSRF tokens."""
    main = re.search(r"<main.*?</main>", response.content.decode(), re.S).group(0)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", main)


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


def wait_of(response) -> int:
    """Seconds until the pair may try again, as the lockout answer tells."""
    assert response.status_code == 429
    return int(response["Retry-After"])


# The pair, not the account or the address


def test_state_is_reset_between_tests_first(network, settings):
    assert not LoginThrottle.objects.exists()
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)


def test_state_is_reset_between_tests_second(network, settings):
    # Runs after the test above locked Anna out: the database rollback undid it.
    assert not LoginThrottle.objects.exists()
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 302


def test_failures_below_the_limit_only_show_the_login_error(network, settings):
    statuses = fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES - 1)
    assert statuses == [200] * (settings.LOGIN_LOCKOUT_FAILURES - 1)
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 302


def test_account_is_locked_at_the_failure_limit(network, settings):
    statuses = fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    assert statuses[-1] == 429
    assert statuses[:-1] == [200] * (settings.LOGIN_LOCKOUT_FAILURES - 1)


def test_locked_account_refuses_even_the_right_password(network, settings):
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    client = Client(REMOTE_ADDR=DESK)
    response = password_login(client, network.anna.email)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_account_locked_from_one_address_still_logs_in_from_another(network, settings):
    fail_from(OFFICE, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    assert password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email).status_code == 429
    client = Client(REMOTE_ADDR=DESK)
    assert password_login(client, network.anna.email).status_code == 302
    assert client.session["_auth_user_id"] == str(network.anna.pk)


def test_failures_from_elsewhere_cannot_lock_a_known_account_out(network, settings):
    """Whoever knows Anna's address cannot lock her out, however many addresses they use."""
    statuses = fail_from_many_addresses(network.anna.email, 3 * settings.LOGIN_LOCKOUT_FAILURES)
    assert statuses == [200] * (3 * settings.LOGIN_LOCKOUT_FAILURES)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 302


def test_colleague_behind_the_same_address_still_logs_in(network, settings, clock):
    """One person's wrong passwords behind the office's shared address lock nobody else, not
    even after many rounds of growing delays."""
    for _round in range(4):
        fail_from(OFFICE, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
        clock.advance(minutes=1)
    assert password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email).status_code == 429
    client = Client(REMOTE_ADDR=OFFICE)
    assert password_login(client, network.ben.email).status_code == 302
    assert client.session["_auth_user_id"] == str(network.ben.pk)


def test_one_wrong_password_each_on_many_accounts_locks_no_one(network, settings):
    """Spraying one guess per account stays below every pair's limit; the address is not
    locked, so the colleagues behind it are not either."""
    sprayer = Client(REMOTE_ADDR=OFFICE)
    statuses = [
        password_login(sprayer, f"konto{i}@example.org", BAD_PASSWORD).status_code
        for i in range(settings.LOGIN_LOCKOUT_FAILURES + 1)
    ]
    assert statuses == [200] * (settings.LOGIN_LOCKOUT_FAILURES + 1)
    response = password_login(Client(REMOTE_ADDR=OFFICE), network.ben.email)
    assert response.status_code == 302


def test_changing_the_case_of_the_email_does_not_dodge_the_lockout(network, settings):
    variants = ["anna@example.org", "Anna@example.org", "ANNA@EXAMPLE.ORG", " anna@Example.org"]
    for i in range(settings.LOGIN_LOCKOUT_FAILURES):
        password_login(Client(REMOTE_ADDR=DESK), variants[i % len(variants)], BAD_PASSWORD)
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 429


def test_addresses_of_one_ipv6_network_count_as_one(network, settings):
    """An IPv6 client holds a whole /64: a fresh address per guess must not dodge the count."""
    statuses = [
        password_login(
            Client(REMOTE_ADDR=f"2001:db8:0:7::{i + 1:x}"), network.anna.email, BAD_PASSWORD
        ).status_code
        for i in range(settings.LOGIN_LOCKOUT_FAILURES)
    ]
    assert statuses[-1] == 429
    other_network = Client(REMOTE_ADDR="2001:db8:0:8::1")
    assert password_login(other_network, network.anna.email).status_code == 302


# Growing delays


def test_delays_grow_with_each_further_failure_up_to_the_cap(network, settings, clock):
    """1 minute at the limit, then twice as long after each further wrong password, never
    more than the cap (60 minutes by default)."""
    first, longest = settings.LOGIN_LOCKOUT_FIRST_DELAY, settings.LOGIN_LOCKOUT_MAX_DELAY
    assert (first, longest) == (timedelta(minutes=1), timedelta(minutes=60))
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES - 1)
    waits = []
    for _lock in range(9):
        wait = wait_of(password_login(Client(REMOTE_ADDR=DESK), network.anna.email, BAD_PASSWORD))
        waits.append(wait)
        clock.advance(seconds=wait)
    assert waits == [60 * minutes for minutes in (1, 2, 4, 8, 16, 32, 60, 60, 60)]


def test_the_cap_is_configurable(network, settings, clock):
    settings.LOGIN_LOCKOUT_MAX_DELAY = timedelta(minutes=15)
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES - 1)
    waits = []
    for _lock in range(6):
        wait = wait_of(password_login(Client(REMOTE_ADDR=DESK), network.anna.email, BAD_PASSWORD))
        waits.append(wait // 60)
        clock.advance(seconds=wait)
    assert waits == [1, 2, 4, 8, 15, 15]


def test_lock_delay_stays_a_valid_duration_after_very_many_failures(settings):
    assert lock_delay(settings.LOGIN_LOCKOUT_FAILURES - 1) is None
    assert lock_delay(10_000) == settings.LOGIN_LOCKOUT_MAX_DELAY


def test_after_the_delay_the_right_password_logs_in(network, settings, clock):
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    clock.advance(seconds=59)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 429
    clock.advance(seconds=1)
    client = Client(REMOTE_ADDR=DESK)
    assert password_login(client, network.anna.email).status_code == 302
    assert client.session["_auth_user_id"] == str(network.anna.pk)


def test_a_known_colleague_locked_from_elsewhere_waits_no_longer_than_the_delay(
    network, settings, clock
):
    """Someone at the office guesses at Anna's account: behind that address, she waits the
    pair's delay and then logs in; the guesser's next wrong password locks the pair anew."""
    fail_from(OFFICE, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    clock.advance(minutes=1)
    assert wait_of(password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email, "x" * 12)) == 120
    clock.advance(minutes=2)
    assert password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email).status_code == 302


def test_attempts_while_locked_are_refused_unchecked_and_do_not_count(network, settings, clock):
    """A guesser who keeps trying during the wait learns nothing (not even a right password
    gets through) and does not lengthen the next delay for the pair."""
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    statuses = fail_from(DESK, network.anna.email, 20)
    assert statuses == [429] * 20
    clock.advance(minutes=1)
    assert (
        wait_of(password_login(Client(REMOTE_ADDR=DESK), network.anna.email, BAD_PASSWORD)) == 120
    )
    assert LoginThrottle.objects.get().failures == settings.LOGIN_LOCKOUT_FAILURES + 1


def test_a_correct_password_resets_the_pair(network, settings, clock):
    """Typos, a lock or two, then the right password: the next typo starts from scratch."""
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    clock.advance(minutes=1)
    fail_from(DESK, network.anna.email, 1)
    clock.advance(minutes=2)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 302
    assert not LoginThrottle.objects.exists()
    statuses = fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    assert statuses == [200] * (settings.LOGIN_LOCKOUT_FAILURES - 1) + [429]
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert wait_of(response) == 60


def test_successful_login_clears_the_accounts_own_failures(network, settings):
    """A typo or two before the right password does not count against her later on."""
    for _round in range(2):
        for _typo in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
            password_login(Client(), network.anna.email, BAD_PASSWORD)
        assert password_login(Client(), network.anna.email).status_code == 302
    assert not LoginThrottle.objects.exists()


def test_failures_are_forgotten_after_a_quiet_period(network, settings, clock):
    quiet = settings.LOGIN_LOCKOUT_FORGET_AFTER
    assert quiet == timedelta(hours=24)
    limit = settings.LOGIN_LOCKOUT_FAILURES
    fail_from(DESK, network.anna.email, limit - 1)
    clock.advance(hours=23, minutes=59)
    assert fail_from(DESK, network.anna.email, 1) == [429]  # not quiet long enough

    clock.advance(minutes=1)
    fail_from(DESK, "niemand@example.org", limit - 1)
    clock.advance(hours=24)
    assert fail_from(DESK, "niemand@example.org", limit - 1) == [200] * (limit - 1)


def test_quiet_pairs_are_removed(network, settings, clock):
    """What no correct password forgave (typos, unknown names) is not kept beyond the quiet
    period: it goes when the next pair turns up."""
    fail_from(DESK, "niemand@example.org", 2)
    fail_from(OFFICE, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    clock.advance(hours=24)
    fail_from(DESK, "konto@example.org", 1)
    assert LoginThrottle.objects.count() == 1
    assert LoginThrottle.objects.get().key == pair_key("konto@example.org", DESK)


def test_the_throttle_stores_neither_login_name_nor_address(network, settings):
    fail_from(DESK, "Tippfehler@Example.org", 2)
    row = LoginThrottle.objects.get()
    stored = " ".join(str(value) for value in LoginThrottle.objects.values().get().values())
    assert "tippfehler" not in stored.lower()
    assert DESK not in stored
    assert row.key == pair_key("tippfehler@example.org", DESK)
    assert row.key != pair_key("tippfehler@example.org", OFFICE)


def test_the_pair_key_depends_on_the_secret_key(settings):
    before = pair_key("anna@example.org", DESK)
    settings.SECRET_KEY = "ein-anderer-geheimer-schluessel-" * 2
    assert pair_key("anna@example.org", DESK) != before


# The answer tells nothing about the account


def test_lockout_page_says_when_to_try_again_in_german(network, settings, clock):
    clock.now = datetime(2026, 12, 4, 9, 15, 30, tzinfo=UTC)  # 10:15:30 in Gladbeck
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    clock.advance(seconds=20)
    response = password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert response.status_code == 429
    assert response["Retry-After"] == "40"
    page = response.content.decode()
    assert LOCKED in page
    assert "die Anmeldung gesperrt" in page
    assert "in 1 Minute erneut" in page
    # The wait ends at 10:16:30; the first full minute after it is shown.
    assert "Ab 10:17 Uhr können Sie sich wieder anmelden" in page
    assert WRONG_LOGIN not in page
    assert network.anna.email not in page


def test_lockout_page_in_english(network, settings, clock):
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    client = Client(REMOTE_ADDR=DESK)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = password_login(client, network.anna.email).content.decode()
    assert "Please try again in 1 minute." in page
    assert "You can log in again from" in page


@pytest.mark.parametrize("email", ["anna@example.org", "niemand@example.org"])
def test_failed_logins_count_alike_for_known_and_unknown_accounts(network, settings, email):
    statuses = fail_from(DESK, email, settings.LOGIN_LOCKOUT_FAILURES)
    assert statuses == [200] * (settings.LOGIN_LOCKOUT_FAILURES - 1) + [429]


def test_wrong_password_answer_is_the_same_for_unknown_accounts(network, settings):
    known = password_login(Client(REMOTE_ADDR=DESK), network.anna.email, BAD_PASSWORD)
    unknown = password_login(Client(REMOTE_ADDR=DESK), "niemand@example.org", BAD_PASSWORD)
    assert known.status_code == unknown.status_code == 200
    assert WRONG_LOGIN in main_part(known)
    assert main_part(known).replace(network.anna.email, "E") == main_part(unknown).replace(
        "niemand@example.org", "E"
    )


def test_lockout_answer_is_the_same_for_unknown_accounts(network, settings, clock):
    """The locking attempt, a refused one and a refused right password: each answer for
    Anna's account is the one an unknown name gets, status, wait and page alike."""
    limit = settings.LOGIN_LOCKOUT_FAILURES
    known = fail_from(DESK, network.anna.email, limit - 1)
    unknown = fail_from("192.0.2.2", "niemand@example.org", limit - 1)
    assert known == unknown
    answers = []
    for address, email in ((DESK, network.anna.email), ("192.0.2.2", "niemand@example.org")):
        answers.append(
            [
                password_login(Client(REMOTE_ADDR=address), email, BAD_PASSWORD),
                password_login(Client(REMOTE_ADDR=address), email, BAD_PASSWORD),
                password_login(Client(REMOTE_ADDR=address), email),
            ]
        )
    for known_answer, unknown_answer in zip(*answers, strict=True):
        assert known_answer.status_code == unknown_answer.status_code == 429
        assert known_answer["Retry-After"] == unknown_answer["Retry-After"]
        assert LOCKED in main_part(known_answer)
        assert main_part(known_answer) == main_part(unknown_answer)


# Addresses behind proxies


def test_forged_forwarded_for_header_does_not_dodge_the_lockout(network, settings):
    assert settings.TRUSTED_PROXIES == []
    statuses = [
        password_login(
            Client(REMOTE_ADDR=OFFICE, HTTP_X_FORWARDED_FOR=f"198.51.100.{i + 1}"),
            network.anna.email,
            BAD_PASSWORD,
        ).status_code
        for i in range(settings.LOGIN_LOCKOUT_FAILURES)
    ]
    assert statuses[-1] == 429
    assert list(LoginThrottle.objects.values_list("key", flat=True)) == [
        pair_key(network.anna.email, OFFICE)
    ]
    response = password_login(
        Client(REMOTE_ADDR=OFFICE, HTTP_X_FORWARDED_FOR="192.0.2.99"), network.anna.email
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
        for i in range(settings.LOGIN_LOCKOUT_FAILURES + 1)
    ]
    # Six different people behind the proxy, one mistake each: nobody is locked out.
    assert statuses == [200] * (settings.LOGIN_LOCKOUT_FAILURES + 1)
    recorded = set(LoginThrottle.objects.values_list("key", flat=True))
    assert recorded == {
        pair_key(f"konto{i}@example.org", f"198.51.100.{i + 1}")
        for i in range(settings.LOGIN_LOCKOUT_FAILURES + 1)
    }


def test_trusted_proxy_locks_the_client_not_the_proxy(network, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    behind_proxy = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": OFFICE}
    statuses = [
        password_login(Client(**behind_proxy), network.anna.email, BAD_PASSWORD).status_code
        for _ in range(settings.LOGIN_LOCKOUT_FAILURES)
    ]
    assert statuses[-1] == 429
    assert password_login(Client(**behind_proxy), network.anna.email).status_code == 429
    assert list(LoginThrottle.objects.values_list("key", flat=True)) == [
        pair_key(network.anna.email, OFFICE)
    ]
    other_client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert password_login(other_client, network.anna.email).status_code == 302


# Whose success resets what


def test_own_successful_logins_do_not_wipe_failures_on_another_account(network, settings):
    """Ben guesses Anna's password from his desk and logs in as himself in between."""
    for _guess in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
        password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email, BAD_PASSWORD)
    assert password_login(Client(REMOTE_ADDR=OFFICE), network.ben.email).status_code == 302
    last_guess = password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email, BAD_PASSWORD)
    assert last_guess.status_code == 429


def test_own_successful_login_elsewhere_does_not_wipe_a_guessers_failures(network, settings):
    """Anna logging in at her desk does not reset what a guesser has tried from elsewhere."""
    fail_from(OFFICE, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES - 1)
    assert password_login(Client(REMOTE_ADDR=DESK), network.anna.email).status_code == 302
    last_guess = password_login(Client(REMOTE_ADDR=OFFICE), network.anna.email, BAD_PASSWORD)
    assert last_guess.status_code == 429


def test_own_successful_logins_do_not_wipe_the_pairs_count(network, settings):
    """A guesser with one valid password cannot reset the count on another account from her
    address by using it, round after round."""
    statuses = []
    for _round in range(2):
        statuses += fail_from(OFFICE, "konto@example.org", settings.LOGIN_LOCKOUT_FAILURES - 1)
        assert password_login(Client(REMOTE_ADDR=OFFICE), network.ben.email).status_code == 302
    assert 429 in statuses


# Audit and the processing record


def test_audit_trail_records_the_failures_and_the_pair_lockout(network, settings):
    fail_from(DESK, network.anna.email, settings.LOGIN_LOCKOUT_FAILURES)
    password_login(Client(REMOTE_ADDR=DESK), network.anna.email)
    assert password_login(Client(REMOTE_ADDR=OFFICE), network.ben.email).status_code == 302
    events = list(AuditEvent.objects.order_by("id"))
    actions = [event.action for event in events]
    # The refused right password counts as a failed login too, as before.
    assert actions.count("auth.login_failed") == settings.LOGIN_LOCKOUT_FAILURES + 1
    assert actions.count("auth.locked_out") == 2
    assert actions[-1] == "auth.login"
    for event in events:
        assert network.anna.email not in str(event.details)


def test_processing_record_names_the_growing_delay(settings):
    from privacy.processing_record import measures

    lockout = {measure.code: str(measure.text) for measure in measures()}["lockout"]
    assert "Nach 5 fehlgeschlagenen Anmeldungen" in lockout
    assert "bis zu 60 Minuten" in lockout


# django-axes, which counted before, is gone with its data


def test_migration_drops_what_axes_left_behind(db):
    """Its tables held login names in plain text; installing axes again starts afresh."""
    from django.db import connection

    drop_axes = importlib.import_module("dienstweg.migrations.0007_login_throttle").DROP_AXES
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE axes_accessattempt (id integer, username varchar(255))")
        cursor.execute("INSERT INTO axes_accessattempt VALUES (1, 'anna@example.org')")
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('axes', '0001_initial', %s)",
            [timezone.now()],
        )
        for statement in drop_axes:
            cursor.execute(statement)
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'axes'")
        assert cursor.fetchone() == (0,)
    assert "axes_accessattempt" not in connection.introspection.table_names()
    for statement in drop_axes:  # and again, as on a database that never had axes
        with connection.cursor() as cursor:
            cursor.execute(statement)
