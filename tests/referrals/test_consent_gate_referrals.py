"""The consent gate after sending (DESIGN.md, "The three gates", 3): revoking the consent a
referral relied on takes the receiving agency's access away at once, and an expired consent
hides the referral from it the same day, before any job runs; end_expired_access() then
tidies the permissions and records the end. On PostgreSQL: a revocation racing a sending
never leaves a sent referral visible to the receiver under a revoked consent.

Anna (coach at the project) sends to the Jobcenter; Jana (lead there, from
tests/referrals/conftest.py) assigns; Ben (caseworker there) is the assignee."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.actions import ActionError
from dienstweg.models import Consent, DataCategory
from referrals.access import inbox_of, outbox_of, referrals_visible_to
from referrals.actions import permissions as referral_permissions
from referrals.actions import steps as referral_steps
from referrals.models import (
    Referral,
    ReferralGroupPermission,
    ReferralUserPermission,
)
from tests.builders import build_referral
from tests.concurrency import TIMEOUT, Worker, wait_for_lock_wait
from tests.conftest import Network, consent_data, verified_client
from tests.dienstweg.helpers import consent_triggers_lifted

ENDED_NOTE = "die empfangende Stelle hat keinen Zugriff mehr"


def send(network: Network, family: Any) -> Referral:
    return build_referral(
        network, family, summary="", notes={DataCategory.EMPLOYMENT: "Ausbildung als Friseurin"}
    )


@pytest.fixture
def referral(network, family, consent, jana) -> Referral:
    """Sent to the Jobcenter under the `consent` fixture and assigned to Ben."""
    return referral_steps.assign_referral(send(network, family), assignee=network.ben, by=jana)


def receiver_perms(referral: Referral) -> list[tuple[str, str]]:
    """The receiving side's object permissions: the agency group's and the assignee's."""
    group = list(
        ReferralGroupPermission.objects.filter(
            content_object=referral, group=referral.to_agency.group
        ).values_list("group__name", "permission__codename")
    )
    users = list(
        ReferralUserPermission.objects.filter(content_object=referral).values_list(
            "user__email", "permission__codename"
        )
    )
    return group + users


def detail(referral: Referral) -> str:
    return reverse("referral_detail", args=[referral.pk])


def withdrawn_events(referral: Referral) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action="referral.access_withdrawn", target_id=str(referral.pk))
    )


def assert_receiver_shut_out(network: Network, referral: Referral) -> None:
    """Ben sees nothing of it any more, cannot act on it, and his refusal is audited."""
    ben = verified_client(network.ben)
    assert ben.get(detail(referral)).status_code == 404
    assert AuditEvent.objects.filter(
        action="referral.access_denied", actor_id=network.ben.pk, family_id=str(referral.family_id)
    ).exists()
    assert referral not in inbox_of(network.ben)
    assert list(ben.get(reverse("referral_inbox")).context["page"].object_list) == []
    assert referral.family.reference not in ben.get(reverse("referral_inbox")).content.decode()
    with pytest.raises(ActionError, match="nicht berechtigt"):
        referral_steps.accept_referral(referral, by=network.ben)


def assert_sender_sees_the_end(network: Network, referral: Referral) -> None:
    response = verified_client(network.anna).get(detail(referral))
    assert response.status_code == 200
    assert ENDED_NOTE in response.content.decode()
    assert referral in outbox_of(network.anna)


# Revocation


def test_receiver_sees_and_may_accept_before_revocation(network, referral):
    """The baseline the tests below change: Ben has the referral and may accept it."""
    assert receiver_perms(referral) == [
        (network.jobcenter.group.name, "view_referral"),
        (network.ben.email, "change_referral"),
    ]
    assert verified_client(network.ben).get(detail(referral)).status_code == 200
    assert referral in inbox_of(network.ben)


def test_revocation_removes_the_receivers_access_at_once(network, family, consent, referral):
    core.revoke_consent(consent, note="Frau Y. hat telefonisch widerrufen", by=network.anna)

    referral.refresh_from_db()
    assert referral.access_ended_at is not None
    assert receiver_perms(referral) == []
    assert referral.state == Referral.State.SENT  # the sender's record stays as it was
    assert_receiver_shut_out(network, referral)
    (event,) = withdrawn_events(referral)
    assert event.actor_id == network.anna.pk
    assert event.family_id == str(family.pk)
    assert event.agency_id == network.jobcenter.pk
    assert event.details["reason"] == "consent_revoked"
    assert "Art. 7 Abs. 3 DSGVO" in event.purpose
    assert list(referral.events.filter(verb="access_ended").values_list("by", flat=True)) == [
        network.anna.pk
    ]
    assert_sender_sees_the_end(network, referral)


def test_revocation_through_the_family_page_removes_the_receivers_access(
    network, family, consent, referral, anna_client
):
    response = anna_client.post(
        reverse("consent_revoke", args=[family.pk, consent.pk]),
        {"note": "", "confirm": "ja"},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == ["Die Einwilligung ist widerrufen."]
    referral.refresh_from_db()
    assert referral.access_ended_at is not None
    assert receiver_perms(referral) == []
    assert_receiver_shut_out(network, referral)
    assert len(withdrawn_events(referral)) == 1
    assert_sender_sees_the_end(network, referral)


def test_revocation_of_an_unrelated_consent_leaves_access(network, family, consent, referral):
    other = core.grant_consent(
        family,
        data=consent_data(network, family, recipients=[network.migration]),
        by=network.anna,
    )

    core.revoke_consent(other, note="", by=network.anna)

    referral.refresh_from_db()
    assert referral.access_ended_at is None
    assert verified_client(network.ben).get(detail(referral)).status_code == 200
    assert withdrawn_events(referral) == []


def test_revocation_ends_access_of_an_accepted_referral_too(network, consent, referral):
    accepted = referral_steps.accept_referral(referral, by=network.ben)

    core.revoke_consent(consent, note="", by=network.anna)

    assert receiver_perms(accepted) == []
    assert verified_client(network.ben).get(detail(accepted)).status_code == 404
    with pytest.raises(ActionError, match="nicht berechtigt"):
        referral_steps.complete_referral(accepted, outcome="Vermittelt", by=network.ben)


# Expiry


@pytest.fixture
def on_day(monkeypatch) -> Callable[[date], None]:
    """Move "today" (timezone.localdate) to another day."""

    def move(day: date) -> None:
        monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: day)

    return move


def test_expired_consent_hides_the_referral_the_same_day(network, consent, referral, on_day):
    on_day(consent.valid_until + timedelta(days=1))

    # No job has run: the permissions are still there, the date alone shuts Ben out.
    assert receiver_perms(referral) != []
    assert_receiver_shut_out(network, referral)
    assert_sender_sees_the_end(network, referral)


def test_on_the_last_day_of_the_consent_the_receiver_still_sees_it(
    network, consent, referral, on_day
):
    on_day(consent.valid_until)

    assert verified_client(network.ben).get(detail(referral)).status_code == 200
    assert referral_permissions.end_expired_access() == 0


def test_expired_rows_hide_the_referral_without_any_job(network, family, consent, referral):
    yesterday = timezone.localdate() - timedelta(days=1)
    with consent_triggers_lifted():  # a consent is never changed but in a test's past
        Consent.objects.filter(pk=consent.pk).update(
            valid_from=yesterday - timedelta(days=30), valid_until=yesterday
        )
    Referral.objects.filter(pk=referral.pk).update(access_until=yesterday)
    referral.refresh_from_db()

    assert_receiver_shut_out(network, referral)
    assert_sender_sees_the_end(network, referral)


def test_end_expired_access_removes_permissions_and_audits(
    network, family, consent, referral, on_day
):
    on_day(consent.valid_until + timedelta(days=1))

    assert referral_permissions.end_expired_access() == 1

    referral.refresh_from_db()
    assert referral.access_ended_at is not None
    assert receiver_perms(referral) == []
    (event,) = withdrawn_events(referral)
    assert event.actor_id is None
    assert event.actor_label == "system:consent_expiry"
    assert event.family_id == str(family.pk)
    assert event.details["reason"] == "consent_expired"
    assert list(referral.events.filter(verb="access_ended").values_list("by", flat=True)) == [None]
    assert referral_permissions.end_expired_access() == 0  # once only
    assert len(withdrawn_events(referral)) == 1
    assert_sender_sees_the_end(network, referral)


# PostgreSQL: a revocation at the same moment as a sending


def assert_never_visible_under_a_revoked_consent(network: Network, consent: Consent) -> None:
    """The invariant: the consent is revoked, and the Jobcenter sees no referral."""
    consent.refresh_from_db()
    assert consent.revoked_at is not None
    assert list(referrals_visible_to(network.ben)) == []
    for referral in Referral.objects.filter(state=Referral.State.SENT):
        assert referral.access_ended_at is not None
        assert receiver_perms(referral) == []


needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


@pytest.mark.postgres
@needs_postgresql
def test_send_first_then_revocation_withdraws_the_access(committed, network, family, consent):
    sending_locked, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def sending() -> Referral:
        with transaction.atomic():
            sent = send(network, family)  # holds the consent row until commit
            sending_locked.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()
        return sent

    sender = Worker(sending)
    assert sending_locked.wait(TIMEOUT)
    revoker = Worker(lambda: core.revoke_consent(consent, note="", by=network.anna))
    wait_for_lock_wait()
    assert not revoker.done.is_set()  # the revocation waits for the sending

    commit_now.set()

    sent = sender.join()
    revoker.join()
    assert revoker.finished_at > moments["commit"]
    sent.refresh_from_db()
    assert sent.state == Referral.State.SENT
    assert sent.access_ended_at is not None
    assert len(withdrawn_events(sent)) == 1
    assert_never_visible_under_a_revoked_consent(network, consent)


@pytest.mark.postgres
@needs_postgresql
def test_revocation_first_then_the_send_is_refused(committed, network, family, consent):
    revoked, commit_now = threading.Event(), threading.Event()
    moments: dict[str, float] = {}

    def revocation() -> None:
        with transaction.atomic():
            core.revoke_consent(consent, note="", by=network.anna)
            revoked.set()
            assert commit_now.wait(TIMEOUT)
            moments["commit"] = time.monotonic()

    revoker = Worker(revocation)
    assert revoked.wait(TIMEOUT)
    sender = Worker(lambda: send(network, family))
    wait_for_lock_wait()
    assert not sender.done.is_set()  # the sending waits for the revocation

    commit_now.set()

    revoker.join()
    with pytest.raises(ActionError, match="Es wurde nichts gesendet"):
        sender.join()
    assert sender.finished_at > moments["commit"]
    assert not Referral.objects.exists()
    # Nothing was sent; only the refusal itself is recorded (step 8), for the family.
    events = AuditEvent.objects.filter(action__startswith="referral.")
    assert list(events.values_list("action", "family_id")) == [
        ("referral.step_refused", str(family.pk))
    ]
    assert_never_visible_under_a_revoked_consent(network, consent)


@pytest.mark.postgres
@needs_postgresql
def test_revocation_and_send_at_the_same_moment_never_leave_access(
    committed, network, family, consent
):
    start = threading.Barrier(2, timeout=TIMEOUT)

    def sending() -> Referral:
        start.wait()
        return send(network, family)

    def revocation() -> Consent:
        start.wait()
        return core.revoke_consent(consent, note="", by=network.anna)

    sender, revoker = Worker(sending), Worker(revocation)

    revoker.join()
    try:
        sent = sender.join()
    except ActionError as refused:  # the revocation came first
        assert "Es wurde nichts gesendet" in str(refused)
        assert not Referral.objects.exists()
    else:  # the sending committed first, and the revocation withdrew the access
        sent.refresh_from_db()
        assert sent.access_ended_at is not None
    assert_never_visible_under_a_revoked_consent(network, consent)
