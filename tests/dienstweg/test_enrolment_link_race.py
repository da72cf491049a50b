"""Two browsers submit the same enrolment link at the same moment: enrol_by_link locks the
link's row, so the second waits for the first to commit, then finds the link used and
changes nothing. PostgreSQL only: SQLite has no row locks."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from dienstweg import actions
from dienstweg.models import AuthenticatorDevice, EnrolmentLink, User
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait
from tests.conftest import current_code

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
]


def test_only_one_of_two_simultaneous_submissions_enrols(committed):
    issued = actions.create_account("nina@example.org", full_name="Nina Neu", by=None)
    link, user = issued.link, issued.link.user
    # Each browser has its own pending authenticator (pending_authenticator keeps one per
    # browser; made directly here so that both exist at once).
    first_device = AuthenticatorDevice.create_for(user, name="A", confirmed=False)
    second_device = AuthenticatorDevice.create_for(user, name="B", confirmed=False)
    holding, commit_now = threading.Event(), threading.Event()

    def first_browser() -> list[str]:
        with transaction.atomic():
            codes = actions.enrol_by_link(
                link,
                device=first_device,
                password="Erstes-Passwort-2026",
                token=current_code(first_device),
            )
            holding.set()  # the link's row stays locked until this commits
            assert commit_now.wait(TIMEOUT)
        return codes

    def second_browser() -> list[str]:
        assert holding.wait(TIMEOUT)
        return actions.enrol_by_link(
            link,
            device=second_device,
            password="Zweites-Passwort-2026",
            token=current_code(second_device),
        )

    first, second = Worker(first_browser), Worker(second_browser)
    assert holding.wait(TIMEOUT)
    wait_for_lock_wait()
    assert not second.done.is_set()
    commit_now.set()

    assert len(first.join()) == 10
    with pytest.raises(actions.InvalidLink):
        second.join()
    user = User.objects.get(pk=user.pk)
    assert user.check_password("Erstes-Passwort-2026")
    assert list(AuthenticatorDevice.objects.filter(user=user, confirmed=True)) == [first_device]
    assert EnrolmentLink.objects.get(pk=link.pk).used_at is not None
