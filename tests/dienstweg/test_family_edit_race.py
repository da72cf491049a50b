"""Two people save the same family at the same moment (two connections): change_family
locks the family row, so the second waits for the first to commit, then sees that the
record changed since her form was shown and is refused; nothing of hers overwrites the
first change. PostgreSQL only: SQLite has no row locks.

Anna (coach at the project) edits in two tabs, both opened at the same version."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from dienstweg import actions
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
]


def test_the_second_of_two_simultaneous_saves_is_refused(committed, network, family):
    shown = actions.family_version(family)
    holding, commit_now = threading.Event(), threading.Event()

    def first_tab() -> dict[str, int | bool]:
        with transaction.atomic():
            changes = actions.change_family(
                family, phone="0157 1111111", seen_version=shown, by=network.anna
            )
            holding.set()  # the family row stays locked until this commits
            assert commit_now.wait(TIMEOUT)
        return changes

    def second_tab() -> dict[str, int | bool]:
        assert holding.wait(TIMEOUT)
        return actions.change_family(
            family, address="Anderswo 2, 45964 Gladbeck", seen_version=shown, by=network.anna
        )

    first = Worker(first_tab)
    assert holding.wait(TIMEOUT)
    second = Worker(second_tab)
    wait_for_lock_wait()
    assert not second.done.is_set()  # waits for the family row
    commit_now.set()

    assert first.join() == {"phone": True}
    with pytest.raises(actions.ActionError, match="Inzwischen hat jemand anderes"):
        second.join()
    family.refresh_from_db()
    assert family.decrypt_field("phone") == "0157 1111111"
    assert family.decrypt_field("address") == "Horster Straße 30, 45964 Gladbeck"
    assert AuditEvent.objects.filter(action="family.changed").count() == 1
