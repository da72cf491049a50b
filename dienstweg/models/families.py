"""Families (the data subjects) with their household members, and their consents.

Everything that names or locates a person is encrypted with the family's data key; the
pseudonymous reference is what the family is called outside its own record."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.db import models
from django.db.models import F, Func, IntegerField, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg.models.accounts import User
from dienstweg.models.agencies import Agency
from dienstweg.models.keys import DataKey
from dienstweg.vault import Encrypted


class DataCategory(models.TextChoices):
    """One enumeration for consent, referrals and audit (DESIGN.md, "Data categories")."""

    IDENTITY = "identity", _("Identität und Kontakt")
    HOUSEHOLD = "household", _("Haushalt und Einkommen")
    EMPLOYMENT = "employment", _("Beschäftigung und Qualifikation")
    CHILDREN = "children", _("Kinder, Betreuung und Schule")
    HOUSING = "housing", _("Wohnen")
    DEBTS = "debts", _("Schulden")
    HEALTH = "health", _("Gesundheit und Behinderung (Art. 9 DSGVO)")
    ADDICTION = "addiction", _("Sucht (Art. 9 DSGVO)")
    MIGRATION = "migration", _("Aufenthalt und Migration")


def category_bit(category: str) -> int:
    """The category's bit in a CategoryMask: its place in DataCategory. A new category goes
    at the end (and the masks' generated columns are migrated), so stored masks keep their
    meaning."""
    return 1 << DataCategory.values.index(category)


class CategoryMask(Func):
    """A JSON list of categories as one integer (category_bit of each), computed by the
    database: a report then combines integers instead of testing the JSON per category."""

    output_field = IntegerField()

    def __init__(self, column: str) -> None:
        super().__init__(F(column))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # type: ignore[override]
        column, column_params = compiler.compile(self.source_expressions[0])
        parts, params = [], []
        for category in DataCategory.values:
            if connection.vendor == "postgresql":
                parts.append(f"CASE WHEN {column} ? %s THEN {category_bit(category)} ELSE 0 END")
                params += [*column_params, category]
            else:  # SQLite keeps the list as its JSON text
                test = f"instr({column}, %s) > 0"
                parts.append(f"CASE WHEN {test} THEN {category_bit(category)} ELSE 0 END")
                params += [*column_params, f'"{category}"']
        return "(" + " + ".join(parts) + ")", params


class Purpose(models.TextChoices):
    REFERRAL = "referral", _("Vermittlung (Fallübergabe)")
    CASE_COORDINATION = "case_coordination", _("Fallabstimmung")
    APPLICATION_SUPPORT = "application_support", _("Unterstützung bei Anträgen")


class Family(Encrypted, models.Model):
    """A family registered by a project; its owner agency's members work with it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(_("Kennung"), max_length=20, unique=True)
    owner = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="families")
    # NULL once the family has been erased: its encrypted data can no longer be read.
    data_key = models.ForeignKey(
        DataKey, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    address_enc = models.BinaryField(default=b"", editable=False)
    phone_enc = models.BinaryField(default=b"", editable=False)
    notes_enc = models.BinaryField(default=b"", editable=False)
    registered_at = models.DateTimeField(default=timezone.now)
    registered_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    # Restriction of processing (GDPR Art. 18, SGB X § 84), set and lifted by the DPO: while
    # set, nothing of the family is shared with or shown to anyone beyond the owning project.
    restricted_at = models.DateTimeField(null=True, blank=True, editable=False)
    restricted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    restriction_reason_enc = models.BinaryField(default=b"", editable=False)
    # Erasure (GDPR Art. 17): the row stays as a tombstone (reference, owner, dates) so that
    # the trail's events still name a family and the reference is never given out again.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("Familie")
        verbose_name_plural = _("Familien")
        # The family list: a project's families, newest first.
        indexes = [
            models.Index(fields=["owner", "-registered_at", "-id"]),
            # A project's families as ids alone, from the index (the consents ending on the
            # start page, dienstweg/queue_sources.py): reading the rows for their erasure
            # cost the coach's page 1.8 ms of 4 at the bench's biggest project.
            models.Index(
                fields=["owner", "id"],
                condition=models.Q(erased_at__isnull=True),
                name="family_owner_live",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def encryption_key(self) -> DataKey | None:
        return self.data_key

    @property
    def is_restricted(self) -> bool:
        return self.restricted_at is not None

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class HouseholdMember(Encrypted, models.Model):
    class Kind(models.TextChoices):
        ADULT = "adult", _("Erwachsene/r")
        CHILD = "child", _("Kind")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="members")
    kind = models.CharField(_("Art"), max_length=10, choices=Kind.choices)
    position = models.PositiveSmallIntegerField(default=0)
    first_name_enc = models.BinaryField(default=b"", editable=False)
    last_name_enc = models.BinaryField(default=b"", editable=False)
    birth_date_enc = models.BinaryField(default=b"", editable=False)
    # Blind index of name + birth date: finds the same person without plaintext in the DB.
    identity_index = models.CharField(max_length=64, db_index=True, editable=False)

    class Meta:
        verbose_name = _("Haushaltsmitglied")
        verbose_name_plural = _("Haushaltsmitglieder")
        ordering = ["position"]
        indexes = [
            # Whether a family has children (the Strukturkonferenz report's reach), from the
            # index alone.
            models.Index(fields=["family"], condition=Q(kind="child"), name="member_child"),
        ]

    def __str__(self) -> str:
        return f"{self.family.reference} #{self.position + 1}"

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key

    @property
    def display_name(self) -> str:
        return f"{self.decrypt_field('first_name')} {self.decrypt_field('last_name')}".strip()

    @property
    def birth_date(self) -> date:
        return date.fromisoformat(self.decrypt_field("birth_date"))

    def age_on(self, day: date) -> int:
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class FamilySearchToken(models.Model):
    """A keyed hash under which a family is found by part of a name or a birth date
    (dienstweg/family_search.py): the table holds no plaintext. Rebuilt from the household
    by dienstweg.actions.reindex_family whenever its members change."""

    id = models.BigAutoField(primary_key=True)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="search_tokens")
    token = models.CharField(max_length=32)

    class Meta:
        constraints = [
            # Token first: a search is an index-only scan from token to family.
            models.UniqueConstraint(fields=["token", "family"], name="family_search_token")
        ]

    def __str__(self) -> str:
        return f"{self.family_id}: {self.token}"


class Evidence(Encrypted, models.Model):
    """A scan of a signed consent form (PDF or image), encrypted like the family's data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="evidence")
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    content_enc = models.BinaryField(editable=False)
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.family.reference}: {self.content_type}"

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key


class Consent(Encrypted, models.Model):
    """A family's written or recorded consent. Never edited: a change is a new consent;
    revocation sets revoked_* once (GDPR Art. 7(3))."""

    class Capacity(models.TextChoices):
        ADULT_SELF = "adult_self", _("Erwachsene/r für sich selbst")
        PARENT_FOR_CHILD = "parent_for_child", _("Elternteil für ein Kind")
        YOUNG_PERSON_SELF = "young_person_self", _("Jugendliche/r ab 15 für sich selbst")

    class Method(models.TextChoices):
        SIGNED_FORM = "signed_form", _("unterschriebenes Formular")
        ORAL_RECORDED = "oral_recorded", _("mündlich, mit Zeugenvermerk")

    class State(models.TextChoices):
        PENDING = "pending", _("noch nicht gültig")
        ACTIVE = "active", _("aktiv")
        EXPIRED = "expired", _("abgelaufen")
        REVOKED = "revoked", _("widerrufen")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.ForeignKey(Family, on_delete=models.CASCADE, related_name="consents")
    recipients = models.ManyToManyField(Agency, related_name="consents_received")
    # The recipients' ids as granted, sealed with the row: the database lets no other
    # agency be added to the recipients later (migration 0010).
    recipient_ids = models.JSONField(default=list, editable=False)
    categories = models.JSONField(default=list)
    purposes = models.JSONField(default=list)
    valid_from = models.DateField(_("gültig ab"))
    valid_until = models.DateField(_("gültig bis"))
    given_by = models.ForeignKey(HouseholdMember, on_delete=models.PROTECT, related_name="+")
    on_behalf_of = models.ForeignKey(
        HouseholdMember, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    capacity = models.CharField(max_length=20, choices=Capacity.choices)
    method = models.CharField(max_length=20, choices=Method.choices)
    witness_note_enc = models.BinaryField(default=b"", editable=False)
    text_version = models.CharField(_("Version des Einwilligungstexts"), max_length=40)
    evidence = models.OneToOneField(
        Evidence, null=True, blank=True, on_delete=models.PROTECT, related_name="consent"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revocation_note_enc = models.BinaryField(default=b"", editable=False)

    class Meta:
        verbose_name = _("Einwilligung")
        verbose_name_plural = _("Einwilligungen")
        indexes = [
            models.Index(fields=["family", "valid_until"]),
            # Consents ending soon (the start page, dienstweg/queue_sources.py): the days
            # ahead, not every consent of the network.
            models.Index(
                fields=["valid_until", "id"],
                condition=models.Q(revoked_at__isnull=True),
                name="consent_in_force_until",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")),
                name="consent_until_not_before_from",
            )
        ]

    def __str__(self) -> str:
        return f"{self.family.reference}: {self.valid_from}–{self.valid_until}"

    def encryption_key(self) -> DataKey | None:
        return self.family.data_key

    def state_on(self, day: date) -> Consent.State:
        if self.revoked_at is not None:
            return Consent.State.REVOKED
        if day > self.valid_until:
            return Consent.State.EXPIRED
        if day < self.valid_from:
            return Consent.State.PENDING
        return Consent.State.ACTIVE

    @property
    def state(self) -> Consent.State:
        return self.state_on(timezone.localdate())

    def category_labels(self) -> list[str]:
        return [str(DataCategory(value).label) for value in self.categories]

    def purpose_labels(self) -> list[str]:
        return [str(Purpose(value).label) for value in self.purposes]
