"""Application tags ("auf kurzem Dienstweg"): a benefit application a coach helped with,
and the processing office's steps on it.

The file number, the missing documents and the office's notes are encrypted with the family's
data key, so erasing the family's key erases every tag about it too."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg.models import Agency, Contact, DataKey, Family, User
from dienstweg.vault import Encrypted


class ApplicationTag(Encrypted, models.Model):
    """A benefit application a coach helped with, so the processing office knows whom to
    ask ("auf kurzem Dienstweg")."""

    class Kind(models.TextChoices):
        EDUCATION = "but", _("Bildung und Teilhabe")
        CHILD_SUPPLEMENT = "kinderzuschlag", _("Kinderzuschlag")
        HOUSING_BENEFIT = "wohngeld", _("Wohngeld")
        CITIZENS_BENEFIT = "buergergeld", _("Bürgergeld")
        CHILDCARE = "kita", _("Kita-Platz")
        OTHER = "other", _("Sonstiger Antrag")

    class State(models.TextChoices):
        SUBMITTED = "submitted", _("eingereicht")
        RECEIVED = "received", _("eingegangen")
        DOCUMENTS_REQUESTED = "documents_requested", _("Unterlagen nachgefordert")
        DECIDED = "decided", _("entschieden")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=20, unique=True, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="application_tags")
    project = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    processing_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("Antrag"), max_length=20, choices=Kind.choices)
    submitted_on = models.DateField(_("eingereicht am"))
    file_number_enc = models.BinaryField(default=b"", editable=False)
    coach = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.SUBMITTED)
    # 0: documents requested (the coach's list shows these first), 1: open, 2: decided.
    priority = models.PositiveSmallIntegerField(default=1)
    missing_documents_enc = models.BinaryField(default=b"", editable=False)
    decided_on = models.DateField(null=True, blank=True)
    days_to_decision = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    # The type its audit events name (audit.trail): the model began in the referrals app,
    # and the trail, which cannot be rewritten, keeps one name per object.
    audit_target_type = "referrals.applicationtag"

    class Meta:
        # Moved from the referrals app without renaming its table (migrations 0001).
        db_table = "referrals_applicationtag"
        verbose_name = _("Antragsmarker")
        verbose_name_plural = _("Antragsmarker")
        indexes = [
            models.Index(
                fields=["project", "priority", "-submitted_on", "-id"], name="tag_project_list"
            ),
            models.Index(fields=["project", "kind", "days_to_decision"], name="tag_project_kind"),
            models.Index(fields=["family", "-submitted_on"], name="tag_family"),
            # The start page's sections on requested documents, for the project and for the
            # office (applications/queue.py): a few hundred of 100,000 tags, in their order.
            models.Index(
                fields=["project", "updated_at", "id"],
                condition=models.Q(state="documents_requested"),
                name="tag_project_requested",
            ),
            models.Index(
                fields=["processing_agency", "updated_at", "id"],
                condition=models.Q(state="documents_requested"),
                name="tag_office_requested",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key

    def coach_direct_phone(self) -> str:
        """The coach's direct number from the directory: her contact entry at the project
        (matched by e-mail address), or "" when the directory lists none."""
        if self.coach is None:
            return ""
        contact = (
            Contact.objects.filter(agency_id=self.project_id, email__iexact=self.coach.email)
            .exclude(direct_phone="")
            .values_list("direct_phone", flat=True)
            .first()
        )
        return contact or ""


class TagStatusChange(Encrypted, models.Model):
    """The processing office's steps on a tagged application, shown to the coach."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tag = models.ForeignKey(ApplicationTag, on_delete=models.CASCADE, related_name="changes")
    state = models.CharField(max_length=20, choices=ApplicationTag.State.choices)
    note_enc = models.BinaryField(default=b"", editable=False)
    decided_on = models.DateField(null=True, blank=True)
    by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "referrals_tagstatuschange"
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.tag_id}: {self.state}"

    def encryption_key(self) -> DataKey | None:
        return self.tag.family.data_key
