"""The outbox's sender (dienstweg/outbox.py): it claims one due mail at a time, sends it
outside any transaction, retries with a doubling wait and gives up after MAX_EMAIL_ATTEMPTS;
a claim is a lease that a crashed sender loses; two senders never take the same mail; an
enrolment link is never stored in plain text. Time comes from an injected clock."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from datetime import datetime, timedelta
from io import StringIO
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from dienstweg import actions, hooks, outbox, vault
from dienstweg.models import OutboxMail, User
from dienstweg.outbox import FIRST_RETRY, LEASE, MAX_EMAIL_ATTEMPTS
from tests.concurrency import TIMEOUT, Worker
from tests.conftest import Network


class Clock:
    """A clock that moves only when told to; made after the mails are queued, which are due
    from the moment they were written."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def queue(users: list[User], body: str = "3 neue Vermittlungen") -> list[OutboxMail]:
    return outbox.queue_mail(users, kind="referral.digest", subject="Dienstweg: Test", body=body)


def failing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every send fail as a refusing server would; returns the addresses tried."""
    tried: list[str] = []

    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        tried.append(self.to[0])
        raise SMTPException("451 try again later")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    return tried


def test_retries_after_a_doubling_wait_then_gives_up(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    [queued] = queue([network.ben])
    clock = Clock()
    tried = failing(monkeypatch)
    waits = []
    for attempt in range(1, MAX_EMAIL_ATTEMPTS + 1):
        assert outbox.send_due(clock=clock).sent == 0
        assert len(tried) == attempt
        queued.refresh_from_db()
        assert queued.attempts == attempt
        assert queued.claimed_until is None  # released for the next round
        if attempt == MAX_EMAIL_ATTEMPTS:
            break
        waits.append(queued.due_at - clock.now)
        # Not due a moment before its time: nothing is tried.
        clock.advance(waits[-1] - timedelta(seconds=1))
        outbox.send_due(clock=clock)
        assert len(tried) == attempt
        clock.advance(timedelta(seconds=1))
    assert waits == [FIRST_RETRY * factor for factor in (1, 2, 4, 8)]
    assert queued.given_up_at is not None
    assert bytes(queued.body_enc) == b""  # nothing left to read once given up
    monkeypatch.undo()
    clock.advance(timedelta(days=1))
    assert outbox.send_due(clock=clock).sent == 0
    assert mail.outbox == []


def test_sends_due_mails_oldest_first_and_each_once(network: Network) -> None:
    queue([network.ben], body="erste")
    queue([network.clara], body="zweite")
    clock = Clock()
    done = outbox.send_due(clock=clock)
    assert done.sent == 2
    assert [(m.to, m.body) for m in mail.outbox] == [
        ([network.ben.email], "erste"),
        ([network.clara.email], "zweite"),
    ]
    assert outbox.send_due(clock=clock).sent == 0
    assert len(mail.outbox) == 2
    sent = OutboxMail.objects.get(user=network.ben)
    assert sent.sent_at == clock.now and sent.attempts == 1
    assert bytes(sent.body_enc) == b""


def test_the_address_is_read_when_sending(network: Network) -> None:
    queue([network.ben])
    clock = Clock()
    User.objects.filter(pk=network.ben.pk).update(email="ben.neu@example.org")
    outbox.send_due(clock=clock)
    assert [m.to for m in mail.outbox] == [["ben.neu@example.org"]]


def test_a_claimed_mail_is_not_claimed_again_until_its_lease_runs_out(network: Network) -> None:
    [queued] = queue([network.ben])
    clock = Clock()
    crashed = outbox.claim_next(now=clock.now)  # a sender that dies before sending
    assert crashed is not None and crashed.pk == queued.pk
    assert outbox.claim_next(now=clock.now) is None
    clock.advance(LEASE - timedelta(seconds=1))
    assert outbox.claim_next(now=clock.now) is None
    assert outbox.send_due(clock=clock).sent == 0
    clock.advance(timedelta(seconds=1))
    # The lease ran out: the next sender takes the mail over and sends it, once.
    assert outbox.send_due(clock=clock).sent == 1
    assert [m.to for m in mail.outbox] == [[network.ben.email]]
    queued.refresh_from_db()
    assert queued.attempts == 2  # the crashed attempt counts: a mail that kills senders ends
    assert queued.sent_at is not None
    # Should the dead sender come back, its finish changes nothing.
    assert outbox.send_claimed(crashed, clock=clock) == outbox.Outcome.LOST
    queued.refresh_from_db()
    assert queued.sent_at is not None and queued.claimed_by == ""


def test_a_sender_that_comes_second_takes_nothing(network: Network) -> None:
    # Both senders saw the same due mail; the first claims it. SQLite has no row locks:
    # this conditional UPDATE is what keeps the second from sending it too.
    [queued] = queue([network.ben])
    clock = Clock()
    first = outbox.claim_next(now=clock.now)
    assert first is not None
    assert not outbox.take(queued.pk, now=clock.now, token=uuid.uuid4().hex)
    first_token = first.claimed_by
    queued.refresh_from_db()
    assert queued.claimed_by == first_token and queued.attempts == 1


def test_a_mail_of_a_deactivated_account_is_given_up(network: Network) -> None:
    queue([network.ben])
    clock = Clock()
    User.objects.filter(pk=network.ben.pk).update(is_active=False)
    assert outbox.send_due(clock=clock).given_up == 1
    assert mail.outbox == []


def test_finished_mails_are_kept_thirty_days_then_deleted(network: Network) -> None:
    [sent] = queue([network.ben])
    [open_] = queue([network.clara])
    clock = Clock()
    OutboxMail.objects.filter(pk=open_.pk).update(due_at=clock.now + timedelta(days=60))
    outbox.send_due(clock=clock)
    clock.advance(outbox.KEEP_FINISHED)
    assert outbox.prune_finished(now=clock.now) == 0
    clock.advance(timedelta(seconds=1))
    assert outbox.prune_finished(now=clock.now) == 1
    assert list(OutboxMail.objects.values_list("pk", flat=True)) == [open_.pk]
    assert not OutboxMail.objects.filter(pk=sent.pk).exists()


def test_a_rolled_back_action_queues_nothing(network: Network) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        queue([network.ben])
        1 / 0  # noqa: B018 (the action fails after queueing)
    assert not OutboxMail.objects.exists()


# The enrolment link at rest


def test_the_enrolment_link_is_stored_encrypted_and_dropped_once_sent(db, send_outbox) -> None:
    issued = actions.create_account("nina@example.org", full_name="Nina Neu", by=None)
    token = issued.url.rstrip("/").rsplit("/", 1)[-1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM dienstweg_outboxmail")
        rows = cursor.fetchall()
    assert len(rows) == 1
    stored = b" ".join(
        value if isinstance(value, bytes) else str(value).encode() for value in rows[0]
    )
    assert token.encode() not in stored
    assert b"zugang" not in stored  # no part of the link's path either
    queued = OutboxMail.objects.get()
    assert issued.url in queued.decrypt_field("body")  # readable with the account's key only
    # Bound to its row: copied into another row, it does not decrypt.
    other = OutboxMail(pk=uuid.uuid4(), user=queued.user, body_enc=queued.body_enc)
    with pytest.raises(vault.VaultError):
        other.decrypt_field("body")

    [message] = send_outbox()
    assert issued.url in message.body
    queued.refresh_from_db()
    assert bytes(queued.body_enc) == b""


def test_a_newer_link_withdraws_the_unsent_email_of_the_older(db, send_outbox) -> None:
    first = actions.create_account("nina@example.org", full_name="Nina Neu", by=None)
    second = actions.send_enrolment_link(first.link.user, by=None)
    [message] = send_outbox()
    assert second.url in message.body and first.url not in message.body


# The loop and its command


def test_each_round_runs_the_hooks_before_sending(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds: list[int] = []

    def producer() -> None:
        rounds.append(len(rounds))
        with transaction.atomic():  # as messaging's notices do
            queue([network.ben], body=f"Runde {len(rounds)}")

    monkeypatch.setattr(hooks, "before_sending", [producer])
    # The service drops stale connections each round; this test's transaction holds its own.
    monkeypatch.setattr(outbox, "close_old_connections", lambda: None)
    total = outbox.send_loop(interval=0, stop=lambda: len(rounds) >= 2 and not _pending())
    assert rounds == [0, 1]
    assert total.sent == 2
    assert [m.body for m in mail.outbox] == ["Runde 1", "Runde 2"]


def test_a_failing_hook_does_not_keep_the_mails_back(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue([network.ben])

    def broken() -> None:
        raise RuntimeError("notices failed")

    monkeypatch.setattr(hooks, "before_sending", [broken])
    assert outbox.run_round().sent == 1


def _pending() -> bool:
    return OutboxMail.objects.filter(sent_at=None, given_up_at=None).exists()


def test_the_unread_message_notices_run_before_sending() -> None:
    from messaging.actions import send_unread_notices

    assert send_unread_notices in hooks.before_sending


def test_sigterm_finishes_the_mail_in_hand_and_ends_the_loop(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue([network.ben])
    queue([network.clara])
    send = EmailMessage.send

    def send_then_get_stopped(self: EmailMessage, fail_silently: bool = False) -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # systemd stops the service mid-mail
        return send(self, fail_silently)

    monkeypatch.setattr(EmailMessage, "send", send_then_get_stopped)
    monkeypatch.setattr(outbox, "close_old_connections", lambda: None)  # the test's transaction
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        call_command("send_notifications", "--loop", "--interval", "0", stdout=StringIO())
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    # The first mail went out and was marked sent; the second waits for the next start.
    assert [m.to for m in mail.outbox] == [[network.ben.email]]
    assert OutboxMail.objects.get(user=network.ben).sent_at is not None
    waiting = OutboxMail.objects.get(user=network.clara)
    assert waiting.sent_at is None and waiting.attempts == 0


# Two senders at once, on two PostgreSQL connections (SQLite queues its writers instead)

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


@pytest.mark.postgres
@on_postgres
def test_a_mail_another_sender_holds_is_skipped_not_waited_for(committed, network) -> None:
    [held] = queue([network.ben], body="erste")
    [free] = queue([network.clara], body="zweite")
    holding, release = threading.Event(), threading.Event()

    def other_sender() -> None:
        with transaction.atomic():
            OutboxMail.objects.select_for_update().get(pk=held.pk)  # in the midst of a claim
            holding.set()
            assert release.wait(TIMEOUT)

    worker = Worker(other_sender)
    try:
        assert holding.wait(TIMEOUT)
        # Were it waiting for the lock, this would hang until the worker gave up.
        claimed = outbox.claim_next(now=timezone.now())
    finally:
        release.set()
        worker.join()
    assert claimed is not None and claimed.pk == free.pk


@pytest.mark.postgres
@on_postgres
def test_two_senders_at_once_send_each_mail_once(committed, network) -> None:
    for number in range(20):
        queue([network.ben if number % 2 else network.clara], body=f"Nr. {number}")
    start = threading.Barrier(2, timeout=TIMEOUT)

    def sender() -> int:
        start.wait()
        return outbox.send_due().sent

    first, second = Worker(sender), Worker(sender)
    assert first.join() + second.join() == 20
    assert sorted(m.body for m in mail.outbox) == sorted(f"Nr. {n}" for n in range(20))
    assert OutboxMail.objects.filter(sent_at__isnull=False, attempts=1).count() == 20
