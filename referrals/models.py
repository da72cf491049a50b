"""Referrals between agencies.

Everything that describes the family (need, summary, the shared snapshot, reasons,
outcomes, attachments) is encrypted with the family's data key, so erasing the family's key
erases every referral about it too."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from dienstweg.models import Agency, CategoryMask, Consent, DataCategory, DataKey, Family, User
from dienstweg.vault import Encrypted


class NeedKind(models.TextChoices):
    """What a referral is about, in one word the receiving agency's inbox shows and sorts by.
    Plain text like the shared data categories, so it holds no special category (Art. 9):
    a need of health or addiction is "Beratung" or "Sonstiges", its words stay in the
    encrypted need."""

    WORK = "work", _("Arbeit und Ausbildung")
    CHILDCARE = "childcare", _("Kinderbetreuung und Schule")
    HOUSING = "housing", _("Wohnen")
    DEBTS = "debts", _("Schulden")
    BENEFITS = "benefits", _("Leistungen und Anträge")
    COUNSELLING = "counselling", _("Beratung und Begleitung")
    OTHER = "other", _("Sonstiges")


def awaiting_answer() -> Case:
    """0 for a referral that waits for the receiving agency's answer, 1 for the rest: the
    inbox's due-date order puts those first (the same expression as its index)."""
    return Case(When(state="sent", then=Value(0)), default=Value(1))


def answer_due_order() -> Case:
    """Within the waiting referrals, the oldest (the earliest due) first."""
    return Case(When(state="sent", then=F("sent_at")), default=None)


class Referral(Encrypted, models.Model):
    """One family referred by a project (or agency) to another agency."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Entwurf")
        PENDING_APPROVAL = "pending_approval", _("wartet auf Freigabe")
        SENT = "sent", _("gesendet")
        ACCEPTED = "accepted", _("angenommen")
        DECLINED = "declined", _("abgelehnt")
        COMPLETED = "completed", _("abgeschlossen")
        WITHDRAWN = "withdrawn", _("zurückgezogen")
        REFUSED = "refused", _("Freigabe verweigert")

    class Basis(models.TextChoices):
        CONSENT = "consent", _("Einwilligung der Familie (Art. 6 Abs. 1 lit. a DSGVO, § 67b SGB X)")
        CHILD_PROTECTION = (
            "child_protection",
            _("Verdacht auf Kindeswohlgefährdung (§ 8a SGB VIII, § 4 KKG)"),
        )
        STATUTORY = "statutory", _("Gesetzliche Übermittlungsbefugnis (§ 69 SGB X)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="referrals")
    from_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    to_agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    basis = models.CharField(max_length=20, choices=Basis.choices, default=Basis.CONSENT)
    categories = models.JSONField(default=list)
    # The same as bits, kept by the database: what the Strukturkonferenz report reads.
    category_mask = models.GeneratedField(
        expression=CategoryMask("categories"), output_field=models.IntegerField(), db_persist=True
    )
    need_kind = models.CharField(
        _("Bereich"), max_length=20, choices=NeedKind.choices, default=NeedKind.OTHER
    )
    need_enc = models.BinaryField(default=b"", editable=False)
    summary_enc = models.BinaryField(default=b"", editable=False)
    # What the coach writes per shared category, while a draft; the snapshot at sending.
    category_notes_enc = models.BinaryField(default=b"", editable=False)
    snapshot_enc = models.BinaryField(default=b"", editable=False)
    basis_reason_enc = models.BinaryField(default=b"", editable=False)
    decision_note_enc = models.BinaryField(default=b"", editable=False)  # decline/refusal
    outcome_enc = models.BinaryField(default=b"", editable=False)
    # The consents the sending relied on (locked by require_consent when it was sent).
    consents = models.ManyToManyField(Consent, blank=True, related_name="+")
    # The receiving agency's access ends with the first of those consents (expiry);
    # NULL for referrals on a legal basis and before sending.
    access_until = models.DateField(null=True, blank=True)
    access_ended_at = models.DateTimeField(null=True, blank=True)
    dpo_review = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # When someone of the receiving agency first opened it: until then it is new in the inbox.
    receiver_opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Vermittlung")
        verbose_name_plural = _("Vermittlungen")
        indexes = [
            # Inbox: an agency's referrals, newest first, by state, overdue (state, sent_at).
            models.Index(fields=["to_agency", "-sent_at", "-id"], name="referral_inbox"),
            models.Index(fields=["to_agency", "state", "sent_at"], name="referral_inbox_state"),
            models.Index(fields=["to_agency", "assignee", "-sent_at"], name="referral_assignee"),
            # The start page's unassigned and overdue referrals (referrals/queue.py): walked
            # oldest first with the visibility rule's columns at hand, so that the referrals a
            # consent no longer covers are passed over in the index, not read from the table.
            models.Index(
                fields=["to_agency", "sent_at", "id"],
                include=["assignee", "access_until", "from_agency", "family"],
                condition=Q(state="sent"),
                name="referral_waiting",
            ),
            # The same by id, for the sections' capped counts: PostgreSQL merges them with the
            # agency's permission rows (by referral id too) and stops at the hundredth match,
            # instead of hashing every waiting referral of a busy agency first (the lead's
            # unassigned 2.2 -> 1.5 ms executing, overdue 3.5 -> 1.6, EXPLAIN ANALYZE).
            models.Index(
                fields=["to_agency", "id"],
                include=["sent_at", "assignee", "access_until", "from_agency", "family"],
                condition=Q(state="sent"),
                name="referral_waiting_by_id",
            ),
            # The inbox's sort orders (referrals.views.INBOX_ORDERS): due date, need.
            models.Index(
                F("to_agency"),
                awaiting_answer(),
                answer_due_order(),
                F("sent_at").desc(),
                F("id").desc(),
                name="referral_inbox_due",
            ),
            models.Index(
                fields=["to_agency", "need_kind", "-sent_at", "-id"], name="referral_inbox_need"
            ),
            # Outbox: a project's referrals, newest first.
            models.Index(fields=["from_agency", "-created_at", "-id"], name="referral_outbox"),
            models.Index(fields=["from_agency", "state", "sent_at"], name="referral_outbox_state"),
            models.Index(fields=["family", "-created_at"], name="referral_family"),
            # The Strukturkonferenz report (conferences/report.py) reads a period's referrals
            # network-wide: from this index alone, not from the table, whose encrypted
            # columns make each row wide (60 MB instead of 560 MB at 500,000 referrals).
            models.Index(
                fields=["sent_at"],
                include=[
                    "to_agency",
                    "from_agency",
                    "family",
                    "state",
                    "answered_at",
                    "category_mask",
                ],
                name="referral_report",
            ),
            # A coach's answers of the last days on her start page (referrals/queue.py): her
            # own referrals, newest answer first, not every referral of her project.
            models.Index(
                fields=["created_by", "-answered_at", "-id"],
                condition=Q(answered_at__isnull=False),
                name="referral_answers",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family.reference} → {self.to_agency_id}"

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key

    @property
    def is_open(self) -> bool:
        return self.state in {self.State.SENT, self.State.ACCEPTED}

    def category_labels(self) -> list[str]:
        return [str(DataCategory(value).label) for value in self.categories]


class ReferralEvent(models.Model):
    """One step of a referral's timeline, shown to sender and receiver alike."""

    class Verb(models.TextChoices):
        DRAFTED = "drafted", _("angelegt")
        SUBMITTED = "submitted", _("zur Freigabe vorgelegt")
        APPROVED = "approved", _("freigegeben und gesendet")
        REFUSED = "refused", _("Freigabe verweigert")
        SENT = "sent", _("gesendet")
        ASSIGNED = "assigned", _("zugewiesen")
        ACCEPTED = "accepted", _("angenommen")
        DECLINED = "declined", _("abgelehnt")
        COMPLETED = "completed", _("abgeschlossen")
        WITHDRAWN = "withdrawn", _("zurückgezogen")
        ACCESS_ENDED = "access_ended", _("Einwilligung beendet, Zugriff der Stelle entzogen")

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    verb = models.CharField(max_length=20, choices=Verb.choices)
    state = models.CharField(max_length=20, choices=Referral.State.choices)
    by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.referral_id}: {self.verb}"


class ReferralAttachment(Encrypted, models.Model):
    """A file sent with a referral: PDF or image, encrypted with the family's key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="attachments")
    name_enc = models.BinaryField(editable=False)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    content_enc = models.BinaryField(editable=False)
    uploaded_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return f"{self.referral_id}: {self.content_type}"

    def encryption_key(self) -> DataKey | None:
        return self.referral.family.data_key


# Object permissions (django-guardian) with direct foreign keys: "which referrals may this
# user see" is one indexed query instead of a join over generic object ids.
class ReferralUserPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Referral, on_delete=models.CASCADE)


class ReferralGroupPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Referral, on_delete=models.CASCADE)
