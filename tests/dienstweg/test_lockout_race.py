"""Parallel wrong passwords of one pair all count (dienstweg/security.py): two PostgreSQL
connections, each a thread with its own transaction; the second attempt waits for the
first one's row (or its insert of the row) and then counts on top of it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from dienstweg import security
from dienstweg.models import LoginThrottle
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
]

DESK = "192.0.2.1"


def attempt_request():
    return RequestFactory().post(
        "/anmelden/", {"username": "anna@example.org", "password": "x"}, REMOTE_ADDR=DESK
    )


def race_two_attempts() -> list[security.PasswordAttempt]:
    """The first attempt keeps its transaction open until the second one waits for it."""
    counted, commit_now = threading.Event(), threading.Event()

    def first() -> security.PasswordAttempt:
        with transaction.atomic():
            attempt = security.count_password_attempt(attempt_request())
            counted.set()
            assert commit_now.wait(TIMEOUT)
        return attempt

    one = Worker(first)
    assert counted.wait(TIMEOUT)
    two = Worker(lambda: security.count_password_attempt(attempt_request()))
    wait_for_lock_wait()
    assert not two.done.is_set()  # blocked behind the first attempt's row
    commit_now.set()
    return [one.join(), two.join()]


def test_two_first_attempts_of_a_new_pair_both_count(committed):
    race_two_attempts()
    assert LoginThrottle.objects.get().failures == 2


def test_parallel_attempts_on_a_counted_pair_both_count(committed, settings):
    LoginThrottle.objects.create(
        key=security.pair_key("anna@example.org", DESK),
        failures=settings.LOGIN_LOCKOUT_FAILURES - 2,
        last_failure_at=timezone.now(),
    )
    first, second = race_two_attempts()
    assert LoginThrottle.objects.get().failures == settings.LOGIN_LOCKOUT_FAILURES
    # The second attempt is the one at the limit: should its password be wrong, it locks.
    assert first.locks_until is None
    assert second.locks_until is not None


def test_an_attempt_racing_the_locking_one_is_refused(committed, settings):
    LoginThrottle.objects.create(
        key=security.pair_key("anna@example.org", DESK),
        failures=settings.LOGIN_LOCKOUT_FAILURES - 1,
        last_failure_at=timezone.now(),
    )
    first, second = race_two_attempts()
    assert first.locks_until is not None
    assert second.refused_until == first.locks_until
    assert LoginThrottle.objects.get().failures == settings.LOGIN_LOCKOUT_FAILURES
