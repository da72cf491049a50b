"""The outbox: every e-mail of the platform is a row that an action writes in its own
transaction (`queue_mail`); only the sender (`manage.py send_notifications`) sends.

The sender claims one due mail at a time in a short transaction, sends it outside any
transaction or lock, and then marks it sent or schedules its retry. A mail server that hangs
therefore holds up the sender only: never a request, never another writer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.core.mail import EmailMessage
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from dienstweg import hooks, vault
from dienstweg.models import OutboxMail, User

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# A mail that fails this often is given up (kept without its body until pruned).
MAX_EMAIL_ATTEMPTS = 5
# The wait after the first failure, doubled after each further one: 2, 4, 8, 16 minutes.
FIRST_RETRY = timedelta(minutes=2)
# How long a sender holds a claimed mail. Far above EMAIL_TIMEOUT: only a sender that died
# holds one this long, and then another sender takes the mail over.
LEASE = timedelta(minutes=5)
# Sent and given-up mails (without their bodies) stay this long for an operator's questions.
KEEP_FINISHED = timedelta(days=30)
PRUNE_EVERY = timedelta(hours=1)


def queue_mail(
    users: Iterable[User], *, kind: str, subject: str, body: str, family_ref: str = ""
) -> list[OutboxMail]:
    """Put an e-mail to each active user with an address (each once) into the outbox.

    Call it inside the action's transaction: a rolled-back action sends nothing. The caller
    guarantees that SUBJECT holds no secret and no name, and BODY no more than the e-mail
    may say; the body is stored encrypted with each recipient's data key."""
    recipients = {user.pk: user for user in users if user.is_active and user.email}
    mails = []
    with transaction.atomic():
        for user in recipients.values():
            if user.data_key is None:
                user.data_key = vault.create_data_key()
                user.save(update_fields=["data_key"])
            mail = OutboxMail(user=user, kind=kind, subject=subject, family_ref=family_ref)
            mail.encrypt_field("body", body)
            mails.append(mail)
        return OutboxMail.objects.bulk_create(mails)


def withdraw(user: User, *, kind: str, now: datetime) -> int:
    """Give up the user's mails of KIND not sent yet (a link that a newer one replaced).
    A mail a sender holds right now may still go out."""
    return (
        OutboxMail.objects.filter(user=user, kind=kind, sent_at=None, given_up_at=None)
        .filter(Q(claimed_until=None) | Q(claimed_until__lte=now))
        .update(given_up_at=now, body_enc=b"")
    )


def _due(now: datetime) -> Q:
    return Q(
        sent_at=None,
        given_up_at=None,
        due_at__lte=now,
    ) & (Q(claimed_until=None) | Q(claimed_until__lte=now))


def claim_next(*, now: datetime) -> OutboxMail | None:
    """Claim the oldest due mail for this sender until NOW + LEASE, or None if none is due.

    PostgreSQL: the row is locked with SKIP LOCKED, so a second sender takes the next one
    instead of waiting. SQLite has no row locks (its IMMEDIATE transactions queue the
    senders): there the conditional UPDATE alone decides, and a sender that finds the mail
    already claimed tries the next."""
    token = uuid.uuid4().hex
    while True:
        with transaction.atomic():
            pk = (
                OutboxMail.objects.select_for_update(skip_locked=True)
                .filter(_due(now))
                .order_by("due_at", "created_at")
                .values_list("pk", flat=True)
                .first()
            )
            if pk is None:
                return None
            taken = take(pk, now=now, token=token)
        if taken:
            return (
                OutboxMail.objects.select_related("user__data_key")
                .filter(pk=pk, claimed_by=token)
                .first()
            )


def take(pk: uuid.UUID, *, now: datetime, token: str) -> bool:
    """Claim this mail for the sender TOKEN if it is still due: whoever updates it first
    holds it, a sender that comes second changes nothing."""
    return bool(
        OutboxMail.objects.filter(_due(now), pk=pk).update(
            claimed_until=now + LEASE, claimed_by=token, attempts=F("attempts") + 1
        )
    )


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    GIVEN_UP = "given_up"
    LOST = "lost"  # the lease ran out and another sender holds the mail now


def send_claimed(mail: OutboxMail, *, clock: Clock = timezone.now) -> Outcome:
    """Send a mail this sender has claimed, outside any transaction; record the outcome."""
    user: User = mail.user
    if not user.is_active or not user.email:
        # Deactivated since: nothing goes to an account that may no longer read it.
        return _finish(mail, Outcome.GIVEN_UP, given_up_at=clock())
    try:
        body = mail.decrypt_field("body")
    except vault.VaultError:
        logger.error("Outbox mail %s (%s): body unreadable, given up", mail.pk, mail.kind)
        return _finish(mail, Outcome.GIVEN_UP, given_up_at=clock())
    try:
        message(user.email, subject=mail.subject, body=body).send()
    except Exception as error:
        now = clock()
        # Only the id and the error's type: its text may contain the address.
        logger.warning(
            "Outbox mail %s (%s): not sent (%s), attempt %d of %d",
            mail.pk,
            mail.kind,
            type(error).__name__,
            mail.attempts,
            MAX_EMAIL_ATTEMPTS,
        )
        if mail.attempts >= MAX_EMAIL_ATTEMPTS:
            return _finish(mail, Outcome.GIVEN_UP, given_up_at=now)
        return _finish(mail, Outcome.RETRY, due_at=now + retry_after(mail.attempts))
    return _finish(mail, Outcome.SENT, sent_at=clock())


def retry_after(attempts: int) -> timedelta:
    """The wait before the next attempt after ATTEMPTS failed ones."""
    return FIRST_RETRY * 2 ** (attempts - 1)


def _finish(mail: OutboxMail, outcome: Outcome, **fields: object) -> Outcome:
    if outcome != Outcome.RETRY:
        fields["body_enc"] = b""  # the link in it is nobody's business any more
    # Only while the mail is still ours: a sender whose lease ran out changes nothing.
    changed = OutboxMail.objects.filter(pk=mail.pk, claimed_by=mail.claimed_by).update(
        claimed_until=None, claimed_by="", **fields
    )
    if not changed:
        logger.warning("Outbox mail %s (%s): lease ran out while sending", mail.pk, mail.kind)
        return Outcome.LOST
    return outcome


def message(address: str, *, subject: str, body: str) -> EmailMessage:
    # Auto-Submitted (RFC 3834): out-of-office replies are not sent back to noreply.
    return EmailMessage(subject, body, to=[address], headers={"Auto-Submitted": "auto-generated"})


@dataclass
class Round:
    sent: int = 0
    retried: int = 0
    given_up: int = 0


def send_due(*, clock: Clock = timezone.now, stop: Callable[[], bool] = lambda: False) -> Round:
    """Send every mail due now, one at a time, until none is left or STOP() is true (then
    after the mail in hand)."""
    done = Round()
    while not stop():
        mail = claim_next(now=clock())
        if mail is None:
            break
        outcome = send_claimed(mail, clock=clock)
        if outcome == Outcome.SENT:
            done.sent += 1
        elif outcome == Outcome.RETRY:
            done.retried += 1
        elif outcome == Outcome.GIVEN_UP:
            done.given_up += 1
    return done


def run_round(*, clock: Clock = timezone.now, stop: Callable[[], bool] = lambda: False) -> Round:
    """One round of the sender: what the apps add before sending (hooks.before_sending,
    e.g. the notices of unread messages), then every due mail."""
    for producer in hooks.before_sending:
        try:
            producer()
        except Exception:
            # Its failure must not keep the mails already queued from going out.
            logger.exception("outbox sender: %s failed", getattr(producer, "__name__", producer))
    return send_due(clock=clock, stop=stop)


def prune_finished(*, now: datetime) -> int:
    """Delete the mails sent or given up more than KEEP_FINISHED ago; return how many."""
    cutoff = now - KEEP_FINISHED
    finished = OutboxMail.objects.filter(Q(sent_at__lt=cutoff) | Q(given_up_at__lt=cutoff))
    return finished.delete()[0]


def send_loop(*, interval: float, stop: Callable[[], bool], clock: Clock = timezone.now) -> Round:
    """Run a round every INTERVAL seconds until STOP() is true; a round in hand finishes its
    current mail first. Finished mails are pruned once an hour. Returns the totals."""
    total = Round()
    next_prune = clock()
    while not stop():
        close_old_connections()
        try:
            if clock() >= next_prune:
                prune_finished(now=clock())
                next_prune = clock() + PRUNE_EVERY
            done = run_round(clock=clock, stop=stop)
        except Exception:
            # A database restart must not end the sender; the next round tries again.
            logger.exception("outbox sender: round failed")
        else:
            total.sent += done.sent
            total.retried += done.retried
            total.given_up += done.given_up
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))
    return total
