"""Flags of unusual access that the DPO reviews (privacy/flags.py finds them)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg.models import User


class AccessFlag(models.Model):
    """One user's unusual access on one (local) day, of one kind, with the events behind it.

    The events themselves stay in the trail; a flag names them by actor, day and the range of
    event ids, so the console links to exactly those. Found again on a later run, the same
    flag is updated, never doubled (unique kind, actor, day)."""

    class Kind(models.TextChoices):
        MANY_FAMILIES = "many_families", _("viele Familien außerhalb der eigenen Fälle")
        BULK_EXPORT = "bulk_export", _("umfangreicher Export")
        OUTSIDE_HOURS = "outside_hours", _("Zugriff außerhalb der Arbeitszeit")
        MANY_GRANTS = "many_grants", _("viele Rollenvergaben an einem Tag")
        GRANT_OUTSIDE_HOURS = "grant_outside_hours", _("Rolle außerhalb der Arbeitszeit bestätigt")

    kind = models.CharField(_("Art"), max_length=20, choices=Kind.choices)
    # The trail's ids, not foreign keys: a flag outlives the account it names.
    actor_id = models.BigIntegerField(_("Akteur-ID"))
    agency_id = models.BigIntegerField(_("Stelle-ID"), null=True, blank=True)
    day = models.DateField(_("Tag"))
    event_count = models.PositiveIntegerField(_("Ereignisse"))
    family_count = models.PositiveIntegerField(_("Familien"), default=0)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    flagged_at = models.DateTimeField(_("erkannt am"), default=timezone.now)
    reviewed_at = models.DateTimeField(_("geprüft am"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_note = models.TextField(_("Prüfvermerk"), blank=True, default="")

    class Meta:
        verbose_name = _("Auffälligkeit")
        verbose_name_plural = _("Auffälligkeiten")
        constraints = [
            models.UniqueConstraint(fields=["kind", "actor_id", "day"], name="flag_once_a_day"),
        ]
        # The console's list: open flags first, newest day first.
        indexes = [models.Index(fields=["reviewed_at", "-day", "-id"], name="flag_review_list")]

    def __str__(self) -> str:
        return f"{self.kind} user:{self.actor_id} {self.day}"

    @property
    def is_reviewed(self) -> bool:
        return self.reviewed_at is not None
