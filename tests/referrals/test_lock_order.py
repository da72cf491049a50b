"""One lock order (dienstweg/locks.py, README "Lock order"): family, then referral or tag,
then thread. Two PostgreSQL connections, each a thread with its own transaction; the first
is held at a known point, the second is seen waiting for a row lock (pg_stat_activity)
before the first goes on. Each race ends with one consistent outcome, never a deadlock.
PostgreSQL only: SQLite has no row locks.

Anna (coach at the project) refers the Yılmaz family and tags its Bürgergeld application at
the Jobcenter, where Ben records a step; Anna revokes the family's consent; Pia (the
project's DPO) erases the family; Lena (a second lead of the project) approves a referral
on a legal basis that Anna withdraws at the same moment; Jana (lead at the Jobcenter)
reassigns a referral in two tabs at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from applications import actions as application_actions
from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.actions import ActionError
from dienstweg.models import Family, Membership, Notification, User
from messaging import actions as messaging_actions
from privacy import erasure
from referrals.actions import permissions as referral_permissions
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import build_referral, build_tag, project_dpo
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait
from tests.conftest import make_staff
from tests.referrals.helpers import child_protection, receiver_can_view

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
]

REASON = "Antrag der Familie auf Löschung"


class Hold:
    """A point where the first connection stops, with its locks, until released."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()

    def here(self) -> None:
        self.reached.set()
        assert self.release.wait(TIMEOUT)

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """FUNCTION, stopping here first."""

        def held(*args: Any, **kwargs: Any) -> Any:
            self.here()
            return function(*args, **kwargs)

        return held


def second_waits_for_first(hold: Hold, second: Callable[[], Any]) -> Worker:
    """Once the first has reached HOLD, start SECOND and see it wait for a row lock, then
    let the first go on."""
    assert hold.reached.wait(TIMEOUT)
    waiting = Worker(second)
    wait_for_lock_wait()
    assert not waiting.done.is_set()
    hold.release.set()
    return waiting


def erase(family: Family, pia: User) -> erasure.ErasureResult:
    return erasure.erase_family(family, by=pia, reason=REASON, seal=False)


# Sending against erasure


def test_an_erasure_waits_for_a_send_in_progress_then_erases_what_was_sent(
    committed, network, family, consent, monkeypatch
):
    draft = build_referral(network, family, send=False)
    pia = project_dpo(network)
    hold = Hold()
    # The send stops just before its consent check, holding what it has locked so far.
    monkeypatch.setattr(
        referral_steps, "require_consent", hold.wrap(referral_steps.require_consent)
    )

    sender = Worker(lambda: referral_steps.send_referral(draft, by=network.anna))
    eraser = second_waits_for_first(hold, lambda: erase(family, pia))

    assert sender.join().state == Referral.State.SENT
    result = eraser.join()  # no deadlock: it waited at the family row, then went on
    family.refresh_from_db()
    assert family.is_erased
    assert not Referral.objects.filter(pk=draft.pk).exists()
    assert result.event.details["referrals_removed"] == 1
    sent, erased = (
        AuditEvent.objects.get(action=action).pk for action in ("referral.sent", "family.erased")
    )
    assert sent < erased


def test_a_send_waits_for_an_erasure_in_progress_then_is_refused(
    committed, network, family, consent, monkeypatch
):
    draft = build_referral(network, family, send=False)
    pia = project_dpo(network)
    hold = Hold()
    # The erasure stops after it has locked the family (and, in order, its cases).
    monkeypatch.setattr(
        messaging_actions,
        "erase_family_threads",
        hold.wrap(messaging_actions.erase_family_threads),
    )

    eraser = Worker(lambda: erase(family, pia))
    sender = second_waits_for_first(
        hold, lambda: referral_steps.send_referral(draft, by=network.anna)
    )

    eraser.join()
    with pytest.raises(ActionError, match="gibt es nicht mehr"):
        sender.join()
    assert not Referral.objects.filter(pk=draft.pk).exists()
    assert not AuditEvent.objects.filter(action="referral.sent").exists()
    assert not Notification.objects.filter(kind="referral.received").exists()


def test_an_erasure_waits_for_a_revocation_in_progress_then_erases(
    committed, network, family, consent, monkeypatch
):
    referral = build_referral(network, family)
    pia = project_dpo(network)
    hold = Hold()
    # The revocation stops after changing the consent, before it ends the referral's access.
    monkeypatch.setattr(
        referral_permissions,
        "end_receiver_access",
        hold.wrap(referral_permissions.end_receiver_access),
    )

    revoker = Worker(lambda: core.revoke_consent(consent, note="", by=network.anna))
    eraser = second_waits_for_first(hold, lambda: erase(family, pia))

    assert revoker.join().revoked_at is not None
    eraser.join()
    family.refresh_from_db()
    assert family.is_erased
    assert not Referral.objects.filter(pk=referral.pk).exists()
    assert AuditEvent.objects.filter(action="referral.access_withdrawn").count() == 1


def test_an_erasure_waits_for_a_tag_step_in_progress_then_erases_the_tag(
    committed, network, family, consent, monkeypatch
):
    tag = build_tag(network, family)
    pia = project_dpo(network)
    hold = Hold()
    # Ben's step stops just before its consent check, holding what it has locked so far.
    monkeypatch.setattr(
        application_actions,
        "require_tag_consent",
        hold.wrap(application_actions.require_tag_consent),
    )

    office = Worker(
        lambda: application_actions.record_tag_status(tag, state="received", by=network.ben)
    )
    eraser = second_waits_for_first(hold, lambda: erase(family, pia))

    assert office.join().state == ApplicationTag.State.RECEIVED
    assert eraser.join().event.details["tags_removed"] == 1
    assert not ApplicationTag.objects.filter(pk=tag.pk).exists()


# Approving against withdrawing


def test_a_withdrawal_waiting_for_an_approval_withdraws_what_was_sent(committed, network, family):
    lena = make_staff("lena@example.org", "Lena Lange", network.project, Membership.Role.LEAD)
    submitted = child_protection(network, family, by=network.anna)
    assert submitted.state == Referral.State.PENDING_APPROVAL
    hold = Hold()

    def approve() -> Referral:
        with transaction.atomic():
            approved = referral_steps.approve_referral(submitted, by=lena)
            hold.here()  # committed only after the withdrawal waits for its locks
        return approved

    approver = Worker(approve)
    withdrawer = second_waits_for_first(
        hold, lambda: referral_steps.withdraw_referral(submitted, by=network.anna)
    )

    assert approver.join().state == Referral.State.SENT
    assert withdrawer.join().state == Referral.State.WITHDRAWN
    submitted.refresh_from_db()
    assert submitted.state == Referral.State.WITHDRAWN
    assert list(submitted.events.values_list("verb", flat=True)) == [
        "drafted",
        "submitted",
        "approved",
        "withdrawn",
    ]
    # It had been delivered when the withdrawal took the lock: the Jugendamt, told of it
    # on approval, is told of the withdrawal and can no longer open it.
    assert not receiver_can_view(network.clara, submitted)
    assert Notification.objects.filter(kind="referral.received", user=network.clara).exists()
    assert Notification.objects.filter(kind="referral.withdrawn", user=network.clara).exists()


# Two reassignments at once


def test_of_two_reassignments_at_once_the_second_hands_over_from_the_first(
    committed, network, family, consent
):
    jana = make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)
    kai = make_staff("kai@example.org", "Kai Kramer", network.jobcenter, Membership.Role.CASEWORKER)
    ute = make_staff("ute@example.org", "Ute Urban", network.jobcenter, Membership.Role.CASEWORKER)
    referral = referral_steps.assign_referral(
        build_referral(network, family), assignee=network.ben, by=jana
    )
    hold = Hold()

    def to_kai() -> Referral:
        with transaction.atomic():
            assigned = referral_steps.assign_referral(referral, assignee=kai, by=jana)
            hold.here()
        return assigned

    first = Worker(to_kai)
    # Jana's second tab still shows Ben as the assignee.
    second = second_waits_for_first(
        hold, lambda: referral_steps.assign_referral(referral, assignee=ute, by=jana)
    )

    assert first.join().assignee == kai
    assert second.join().assignee == ute
    referral.refresh_from_db()
    assert referral.assignee == ute
    # Ute alone may take the receiving side's steps: Kai's right went with the handover.
    allowed = {
        user.email
        for user in (network.ben, kai, ute)
        if User.objects.get(pk=user.pk).has_perm("referrals.change_referral", referral)
    }
    assert allowed == {"ute@example.org"}
    assigned = AuditEvent.objects.filter(action="referral.assigned", target_id=str(referral.pk))
    assert [(e.details["previous"], e.details["assignee"]) for e in assigned.order_by("pk")] == [
        (None, network.ben.pk),
        (network.ben.pk, kai.pk),
        (kai.pk, ute.pk),  # the second names the first's assignee as the previous one
    ]
