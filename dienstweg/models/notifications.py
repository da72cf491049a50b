"""In-app notifications of staff, and the outbox of their e-mails.

A notification names its family only by the pseudonymous reference: its e-mail leaves the
platform, and the list is shown without an access check on the family."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg.models.accounts import User


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
    emailed_at = models.DateTimeField(_("per E-Mail gesandt am"), null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("Benachrichtigung")
        verbose_name_plural = _("Benachrichtigungen")
        indexes = [
            # The user's list, newest first (id breaks ties of the same instant).
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_idx"),
            # The outbox: only rows whose e-mail is still pending, in order.
            models.Index(
                fields=["id"],
                condition=models.Q(emailed_at__isnull=True),
                name="notification_outbox_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.family_ref}".strip()

    @property
    def is_unread(self) -> bool:
        return self.read_at is None
