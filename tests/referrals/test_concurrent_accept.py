"""Two "accept" clicks at the same moment (two tabs, two connections): transition() locks the
referral row, so the second waits for the first to commit, then finds the referral
accepted and is refused; one timeline step, one audit event. PostgreSQL only: SQLite has
no row locks.

Anna (coach at the project) sends to the Jobcenter; Jana (lead there, made below) assigns
it to Ben (caseworker there), who accepts it in two tabs at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from dienstweg.actions import ActionError
from dienstweg.models import DataCategory, Membership, Notification
from referrals.actions import steps as referral_steps
from referrals.models import Referral, ReferralEvent
from tests.builders import build_referral
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait
from tests.conftest import make_staff

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
]


@pytest.fixture
def referral(committed, network, family, consent) -> Referral:
    """Sent to the Jobcenter and assigned to Ben (committed)."""
    jana = make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)
    sent = build_referral(network, family, summary="", categories=[DataCategory.EMPLOYMENT])
    return referral_steps.assign_referral(sent, assignee=network.ben, by=jana)


def race(referral: Referral, second: Callable[[], Referral]) -> tuple[Worker, Worker, float]:
    """Start two tabs together; the first accepts and holds the row lock until released,
    the second runs SECOND while that lock is held. Returns both and the first's commit
    moment once the second has been seen waiting for the lock and the first committed."""
    start = threading.Barrier(2, timeout=TIMEOUT)
    holding, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}
    ben = referral.assignee
    assert ben is not None

    def first_tab() -> Referral:
        start.wait()
        with transaction.atomic():
            accepted = referral_steps.accept_referral(referral, by=ben)  # the row stays locked
            holding.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()
        return accepted

    def second_tab() -> Referral:
        start.wait()
        assert holding.wait(TIMEOUT)
        return second()

    first, other = Worker(first_tab), Worker(second_tab)
    assert holding.wait(TIMEOUT)
    wait_for_lock_wait()
    assert not other.done.is_set()  # the second tab waits for the first one's lock

    commit_now.set()

    first.join()
    return first, other, moments["commit"]


def test_one_of_two_simultaneous_accepts_wins(referral, network):
    ben = network.ben

    first, second, committed_at = race(
        referral, lambda: referral_steps.accept_referral(referral, by=ben)
    )

    assert first.result.state == Referral.State.ACCEPTED
    with pytest.raises(ActionError, match="bereits „angenommen“"):
        second.join()
    assert second.finished_at > committed_at  # it waited, then saw the committed state
    referral.refresh_from_db()
    assert referral.state == Referral.State.ACCEPTED
    assert ReferralEvent.objects.filter(referral=referral, verb="accepted").count() == 1
    assert (
        AuditEvent.objects.filter(action="referral.accepted", target_id=str(referral.pk)).count()
        == 1
    )
    assert Notification.objects.filter(kind="referral.accepted").count() == 1


def test_decline_at_the_moment_of_accepting_is_refused(referral, network):
    ben = network.ben

    first, second, _committed_at = race(
        referral, lambda: referral_steps.decline_referral(referral, reason="Doppelt", by=ben)
    )

    assert first.result.state == Referral.State.ACCEPTED
    with pytest.raises(ActionError, match="bereits „angenommen“"):
        second.join()
    referral.refresh_from_db()
    assert referral.state == Referral.State.ACCEPTED
    assert referral.decrypt_field("decision_note") == ""
    assert list(referral.events.values_list("verb", flat=True)) == [
        "drafted",
        "sent",
        "assigned",
        "accepted",
    ]
    assert not AuditEvent.objects.filter(action="referral.declined").exists()
