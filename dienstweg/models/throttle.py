"""Wrong passwords per pair of login name and client address (dienstweg/security.py).

A row names its pair only by a keyed hash: a mistyped e-mail address is someone's personal
data, and the table must not become a list of who tried to log in from where."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class LoginThrottle(models.Model):
    """The attempts of one pair that no correct password has forgiven yet."""

    id = models.BigAutoField(primary_key=True)
    # HMAC-SHA256 (hex) of the normalized login name and the client's network.
    key = models.CharField(max_length=64, unique=True)
    # Attempts counted since the last success or since the pair was last quiet long enough.
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()
    # While in the future, the pair's passwords are not even checked.
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Anmeldesperre")
        verbose_name_plural = _("Anmeldesperren")
        indexes = [
            # Forgetting quiet pairs: the oldest first.
            models.Index(fields=["last_failure_at"], name="login_throttle_quiet_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key[:12]}… ({self.failures})"
