"""Familienkonferenzen and their invitations.

What describes the family (place, agenda, the shared snapshot) is encrypted with the
family's data key, so erasing the family's key erases every conference about it too."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase

from dienstweg.models import Agency, Consent, DataCategory, DataKey, Family, User
from dienstweg.vault import Encrypted


class Conference(Encrypted, models.Model):
    """A Familienkonferenz: the family, its coach and the people of the Rechtskreise
    involved decide together what support the family needs."""

    class State(models.TextChoices):
        PLANNED = "planned", _("geplant")
        CANCELLED = "cancelled", _("abgesagt")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="conferences")
    # The owning project at convening (the family's owner): its coaches and leads run it.
    project = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    convened_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PLANNED)
    starts_at = models.DateTimeField(_("Beginn"))
    duration_minutes = models.PositiveSmallIntegerField(_("Dauer (Minuten)"), default=90)
    # The categories shared with every invitee; each invited agency's consent covers them all.
    categories = models.JSONField(default=list)
    place_enc = models.BinaryField(default=b"", editable=False)
    video_link_enc = models.BinaryField(default=b"", editable=False)
    agenda_enc = models.BinaryField(default=b"", editable=False)
    snapshot_enc = models.BinaryField(default=b"", editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The family's previous conference, if any: a follow-up starts from its open agreements.
    follows = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("Familienkonferenz")
        verbose_name_plural = _("Familienkonferenzen")
        indexes = [
            models.Index(fields=["family", "-starts_at"], name="conference_family"),
            models.Index(fields=["project", "-starts_at"], name="conference_project"),
            # The Strukturkonferenz report's period, read from the index alone.
            models.Index(
                fields=["starts_at"],
                include=["state", "family", "project"],
                name="conference_report",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family.reference} {self.starts_at:%Y-%m-%d}"

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    def category_labels(self) -> list[str]:
        return [str(DataCategory(value).label) for value in self.categories]


class Invitation(models.Model):
    """One person invited to a conference, as a member of her agency. Her access rests on
    the consents that covered her agency when she was invited: it ends with the first of
    them (access_until), or at once when one is revoked (access_ended_at)."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    consents = models.ManyToManyField(Consent, related_name="+")
    access_until = models.DateField()
    access_ended_at = models.DateTimeField(null=True, blank=True)
    invited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conference", "user"], name="invitation_once")
        ]
        indexes = [
            # "Meine Konferenzen": an invitee's open invitations.
            models.Index(
                fields=["user", "conference"],
                condition=Q(access_ended_at__isnull=True),
                name="invitation_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conference_id}: {self.user_id}"


# The invitee's object permission (django-guardian, direct foreign key): granted on
# invitation, withdrawn when the consent behind it ends.
class ConferenceUserPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Conference, on_delete=models.CASCADE)


class GapReason(models.TextChoices):
    """Why an agreement could not be kept: each names a gap in what the town provides, which
    the Strukturkonferenz counts (a fixed list, so that it can be counted)."""

    NO_PLACE = "no_place", _("kein Platz frei")
    WAITING_TIME = "waiting_time", _("Wartezeit zu lang")
    OFFER_MISSING = "offer_missing", _("Angebot fehlt in der Stadt")
    HURDLE_LANGUAGE = "hurdle_language", _("Zugangshürde: Sprache")
    HURDLE_MOBILITY = "hurdle_mobility", _("Zugangshürde: Mobilität")
    HURDLE_CHILDCARE = "hurdle_childcare", _("Zugangshürde: Kinderbetreuung")
    HURDLE_HOURS = "hurdle_hours", _("Zugangshürde: Öffnungszeiten")
    RESPONSIBILITY_UNCLEAR = "responsibility_unclear", _("Zuständigkeit unklar")
    FAMILY_DECLINED = "family_declined", _("Familie hat abgelehnt")


class Agreement(Encrypted, models.Model):
    """A Vereinbarung of a conference: what, who is responsible (an agency and perhaps one
    of its people, or the family itself), by when. The responsible agency confirms it;
    the confirmation is signed by the platform (conferences/receipts.py)."""

    class State(models.TextChoices):
        OPEN = "open", _("offen")
        CONFIRMED = "confirmed", _("bestätigt")
        DONE = "done", _("erledigt")
        NOT_POSSIBLE = "not_possible", _("nicht möglich")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="agreements")
    number = models.PositiveSmallIntegerField()  # 1, 2, 3 … within the conference
    what_enc = models.BinaryField(default=b"", editable=False)
    # None: the family itself is responsible.
    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    person = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_on = models.DateField(_("bis"))
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    gap_reason = models.CharField(max_length=30, choices=GapReason.choices, blank=True)
    outcome_note_enc = models.BinaryField(default=b"", editable=False)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The signed confirmation (conferences/receipts.py): its compact JSON and signature.
    receipt = models.TextField(blank=True, editable=False)
    signature = models.CharField(max_length=128, blank=True, editable=False)  # hex
    closed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the person responsible, then her lead, was reminded of it being overdue.
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conference", "number"]
        constraints = [
            models.UniqueConstraint(fields=["conference", "number"], name="agreement_number_once")
        ]
        indexes = [
            # A person's open agreements on her start page, by due date.
            models.Index(
                fields=["person", "due_on"],
                condition=Q(state__in=["open", "confirmed"]),
                name="agreement_open_person",
            ),
            # The reminders' walk over open agreements past due.
            models.Index(
                fields=["due_on"],
                condition=Q(state__in=["open", "confirmed"]),
                name="agreement_open_due",
            ),
            # The Strukturkonferenz report: every agreement of the period's conferences, read
            # from this index instead of the table with its encrypted texts.
            models.Index(
                fields=["conference"],
                include=["agency", "state", "gap_reason"],
                name="agreement_report",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conference_id} #{self.number}"

    def encryption_key(self) -> DataKey | None:
        return self.conference.family.data_key

    @property
    def is_open(self) -> bool:
        return self.state in {self.State.OPEN, self.State.CONFIRMED}

    @property
    def by_family(self) -> bool:
        return self.agency_id is None


class Consultation(Encrypted, models.Model):
    """An anonymous case consultation ("anonyme Fallberatung"): a coach asks agencies that
    the family has not consented to for advice, under a case alias and with only the text
    she writes (checked against the family's record before it leaves, identifying.py). The
    recipients never learn the family; the trail records it as the family's (Art. 15)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="consultations")
    project = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    # "Fallberatung K7Q2MX": random, so that nothing of the family's reference shows.
    alias = models.CharField(max_length=30, unique=True)
    question_enc = models.BinaryField(default=b"", editable=False)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["family", "-created_at"], name="consultation_family")]

    def __str__(self) -> str:
        return self.alias

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key


class ConsultationRecipient(models.Model):
    """An agency asked in a consultation. Re-identified: the family's consent now covers the
    agency for case coordination and the project has named the family to it (until the
    consent ends)."""

    consultation = models.ForeignKey(
        Consultation, on_delete=models.CASCADE, related_name="recipients"
    )
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    reidentified_at = models.DateTimeField(null=True, blank=True)
    reidentified_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consents = models.ManyToManyField(Consent, related_name="+")
    # The reference is shown until then (the consents' first end) or until revocation.
    reidentified_until = models.DateField(null=True, blank=True)
    reidentification_ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consultation", "agency"], name="consultation_recipient_once"
            )
        ]
        indexes = [models.Index(fields=["agency", "consultation"], name="consultation_inbox")]

    def __str__(self) -> str:
        return f"{self.consultation_id} → {self.agency_id}"

    @property
    def names_family(self) -> bool:
        return (
            self.reidentified_at is not None
            and self.reidentification_ended_at is None
            and self.reidentified_until is not None
            and self.reidentified_until >= timezone.localdate()
        )


class ConsultationAnswer(Encrypted, models.Model):
    """An answer of a recipient agency (or a note of the project) in a consultation."""

    # A UUID set at creation: the ciphertext is bound to the row before it is saved.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="answers")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    text_enc = models.BinaryField(default=b"", editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.consultation_id}: {self.agency_id}"

    def encryption_key(self) -> DataKey | None:
        return self.consultation.family.data_key
