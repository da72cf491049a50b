"""A revocation cannot race a transmission (DESIGN.md, "The three gates", 3): two PostgreSQL
connections, each a thread with its own Django connection and its own transaction.

require_consent() locks the consent rows it relies on until the transmission commits, and
revoke_consent() locks the row it changes: whichever comes second waits for the first."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from dienstweg import actions
from dienstweg.consent import ConsentMissing, require_consent
from dienstweg.models import Consent, DataCategory, Purpose
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
]

CATEGORIES = [DataCategory.IDENTITY, DataCategory.EMPLOYMENT]


def transmit(family, agency) -> list[Consent]:
    return require_consent(
        family, to_agency=agency, categories=CATEGORIES, purpose=Purpose.REFERRAL
    )


def test_revocation_waits_for_a_transmission_in_progress(committed, network, family, consent):
    locked, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def transmission() -> list[str]:
        with transaction.atomic():
            used = transmit(family, network.jobcenter)
            locked.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()
        return [str(c.pk) for c in used]

    sender = Worker(transmission)
    assert locked.wait(TIMEOUT)
    revoker = Worker(lambda: actions.revoke_consent(consent, note="", by=network.anna))
    wait_for_lock_wait()
    assert not revoker.done.is_set()  # blocked behind the transmission's lock

    commit_now.set()

    assert sender.join() == [str(consent.pk)]
    revoker.join()
    assert revoker.finished_at > moments["commit"]
    consent.refresh_from_db()
    assert consent.revoked_at is not None


def test_transmission_after_a_committed_revocation_is_refused(committed, network, family, consent):
    actions.revoke_consent(consent, note="", by=network.anna)  # committed on this connection

    def transmission() -> None:
        with transaction.atomic():
            transmit(family, network.jobcenter)

    sender = Worker(transmission)
    with pytest.raises(ConsentMissing) as refused:
        sender.join()
    assert refused.value.missing == set(CATEGORIES)


def test_transmission_waits_for_a_revocation_in_progress_and_is_refused(
    committed, network, family, consent
):
    revoked, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def revocation() -> None:
        with transaction.atomic():
            actions.revoke_consent(consent, note="", by=network.anna)
            revoked.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()

    def transmission() -> None:
        with transaction.atomic():
            transmit(family, network.jobcenter)

    revoker = Worker(revocation)
    assert revoked.wait(TIMEOUT)
    sender = Worker(transmission)
    wait_for_lock_wait()
    assert not sender.done.is_set()  # blocked behind the revocation's lock

    commit_now.set()

    revoker.join()
    with pytest.raises(ConsentMissing):
        sender.join()
    assert sender.finished_at > moments["commit"]
