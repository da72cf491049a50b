"""In-app notifications of staff, and the outbox of every e-mail the platform sends.

A notification names its family only by the pseudonymous reference: its e-mail leaves the
platform, and the list is shown without an access check on the family."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg import vault
from dienstweg.models.accounts import User
from dienstweg.models.keys import DataKey


class Notification(models.Model):
    """Something happened that the user should look at: a title, a reference, a link."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    # A dotted event label, e.g. "referral.received".
    kind = models.CharField(_("Art"), max_length=64)
    # The German msgid: shown through gettext, so each reader gets her own language.
    title = models.CharField(_("Titel"), max_length=200)
    # Only the pseudonymous reference ("F-2026-0042"), never a name.
    family_ref = models.CharField(_("Kennung"), max_length=20, blank=True)
    # A local path ("/vermittlungen/12/"), never an address outside the platform.
    url = models.CharField(max_length=300)
    created_at = models.DateTimeField(_("erstellt am"), default=timezone.now)
    read_at = models.DateTimeField(_("gelesen am"), null=True, blank=True)

    class Meta:
        verbose_name = _("Benachrichtigung")
        verbose_name_plural = _("Benachrichtigungen")
        indexes = [
            # The user's list, newest first (id breaks ties of the same instant).
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.family_ref}".strip()

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class OutboxMail(vault.Encrypted, models.Model):
    """One e-mail to one account: written by an action in its own transaction, sent later by
    `manage.py send_notifications` (dienstweg/outbox.py), never inside a request.

    The address is read when it is sent. The body is encrypted with the account's data key
    (an enrolment link in it is a secret) and emptied once the mail is sent or given up."""

    # A random id: the body's ciphertext is bound to it, so it exists before the insert.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # A dotted label for the logs ("notification", "account.enrolment_link").
    kind = models.CharField(_("Art"), max_length=64)
    # Never a secret or a name: a title, at most a family reference.
    subject = models.CharField(_("Betreff"), max_length=250)
    # The family the mail is about, if any (its pseudonymous reference): an erasure of the
    # family removes its mails with its notifications.
    family_ref = models.CharField(_("Kennung"), max_length=20, blank=True)
    body_enc = models.BinaryField(editable=False)
    created_at = models.DateTimeField(_("erstellt am"), default=timezone.now)
    # Not tried before this moment: the creation, or the backoff after a failure.
    due_at = models.DateTimeField(default=timezone.now)
    # Attempts begun (counted when claimed, so that a mail that crashes the sender ends too).
    attempts = models.PositiveSmallIntegerField(default=0)
    # A sender holds the mail until then; after a crash the lease runs out and another
    # sender takes it. CLAIMED_BY tells the holder that the mail is still hers.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=32, blank=True)
    sent_at = models.DateTimeField(_("versandt am"), null=True, blank=True)
    given_up_at = models.DateTimeField(_("aufgegeben am"), null=True, blank=True)

    class Meta:
        verbose_name = _("ausgehende E-Mail")
        verbose_name_plural = _("ausgehende E-Mails")
        indexes = [
            # The senders' question: which open mails are due, oldest first.
            models.Index(
                fields=["due_at", "created_at"],
                condition=models.Q(sent_at__isnull=True, given_up_at__isnull=True),
                name="outbox_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"

    def encryption_key(self) -> DataKey | None:
        user: User = self.user
        return user.data_key
