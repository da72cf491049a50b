"""Consent: its evidence, recording a new consent and revoking one (Art. 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.trail import record
from dienstweg import hooks
from dienstweg.access import may_work_on
from dienstweg.actions.errors import ActionError, case_write_refused
from dienstweg.audit_actions import CONSENT_GRANTED, CONSENT_REVOKED
from dienstweg.consent import lock_consent
from dienstweg.locks import lock_family_row
from dienstweg.models import (
    Agency,
    Consent,
    DataCategory,
    Evidence,
    Family,
    HouseholdMember,
    Purpose,
    User,
)

# Consent

EVIDENCE_TYPES = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}


def evidence_type(content: bytes) -> str | None:
    """The evidence's type by its first bytes (the uploaded name and header can lie)."""
    for magic, content_type in EVIDENCE_TYPES.items():
        if content.startswith(magic):
            return content_type
    return None


@dataclass(frozen=True)
class ConsentData:
    recipients: list[Agency]
    categories: list[str]
    purposes: list[str]
    valid_from: date
    valid_until: date
    given_by: HouseholdMember
    capacity: str
    method: str
    text_version: str
    on_behalf_of: HouseholdMember | None = None
    witness_note: str = ""
    evidence: bytes | None = None


def check_consent_data(family: Family, data: ConsentData) -> list[str]:
    """The reasons this consent cannot be recorded (empty if it can)."""
    problems = []
    Capacity = Consent.Capacity
    if data.valid_until < data.valid_from:
        problems.append(_("„Gültig bis“ liegt vor „gültig ab“."))
    if not data.recipients or not data.categories or not data.purposes:
        problems.append(_("Empfänger, Datenkategorien und Zwecke sind anzugeben."))
    if any(agency.pk == family.owner_id for agency in data.recipients):
        problems.append(_("Die eigene Einrichtung ist kein Empfänger."))
    if not set(data.categories) <= set(DataCategory.values):
        problems.append(_("Unbekannte Datenkategorie."))
    if not set(data.purposes) <= set(Purpose.values):
        problems.append(_("Unbekannter Zweck."))
    members = {data.given_by.family_id} | (
        {data.on_behalf_of.family_id} if data.on_behalf_of else set()
    )
    if members != {family.pk}:
        problems.append(_("Die Person gehört nicht zu dieser Familie."))
    adult = HouseholdMember.Kind.ADULT
    if data.capacity == Capacity.ADULT_SELF and data.given_by.kind != adult:
        problems.append(_("Für sich selbst willigt hier eine erwachsene Person ein."))
    if data.capacity == Capacity.PARENT_FOR_CHILD and (
        data.given_by.kind != adult
        or data.on_behalf_of is None
        or data.on_behalf_of.kind != HouseholdMember.Kind.CHILD
    ):
        problems.append(_("Ein Elternteil willigt für ein Kind ein: bitte das Kind wählen."))
    if data.capacity == Capacity.YOUNG_PERSON_SELF and data.given_by.age_on(data.valid_from) < 15:
        problems.append(_("Jugendliche willigen ab 15 Jahren selbst ein."))
    if data.method == Consent.Method.ORAL_RECORDED and not data.witness_note.strip():
        problems.append(_("Bei mündlicher Einwilligung ist ein Zeugenvermerk nötig."))
    if data.method == Consent.Method.SIGNED_FORM and not data.evidence:
        problems.append(_("Bitte den Scan des unterschriebenen Formulars hochladen."))
    if data.evidence is not None:
        if len(data.evidence) > settings.EVIDENCE_MAX_BYTES:
            problems.append(_("Der Nachweis ist zu groß."))
        elif evidence_type(data.evidence) is None:
            problems.append(_("Der Nachweis muss ein PDF, JPEG oder PNG sein."))
    return problems


def grant_consent(family: Family, *, data: ConsentData, by: User) -> Consent:
    """Record a new consent of the family (never an edit of an old one). NotAllowed, and
    audited, unless BY holds a case role in the owning project."""
    # Checked before the transaction: the refusal's audit event must outlive the rollback.
    if not may_work_on(by, family):
        raise case_write_refused(by, family)
    with transaction.atomic():
        return _grant_consent(family, data, by)


def _grant_consent(family: Family, data: ConsentData, by: User) -> Consent:
    problems = check_consent_data(family, data)
    if problems:
        raise ActionError(" ".join(str(problem) for problem in problems))
    evidence = None
    if data.evidence is not None:
        content_type = evidence_type(data.evidence) or ""
        evidence = Evidence(family=family, content_type=content_type, size=len(data.evidence))
        evidence.encrypt_field("content", data.evidence)
        evidence.save(force_insert=True)
    consent = Consent(
        family=family,
        categories=sorted(set(data.categories)),
        purposes=sorted(set(data.purposes)),
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        given_by=data.given_by,
        on_behalf_of=data.on_behalf_of,
        capacity=data.capacity,
        method=data.method,
        text_version=data.text_version,
        evidence=evidence,
        recorded_by=by,
    )
    consent.encrypt_field("witness_note", data.witness_note)
    consent.save(force_insert=True)
    consent.recipients.set(data.recipients)
    record(
        by,
        CONSENT_GRANTED,
        target=consent,
        family=family,
        purpose="Art. 6 Abs. 1 lit. a DSGVO",
        # Only the owning project records consents: it acts here (its DPO's console).
        agency_id=family.owner_id,
        details={
            "recipients": ".".join(str(agency.pk) for agency in data.recipients)[:64],
            "valid_until": data.valid_until.isoformat(),
        },
    )
    return consent


def revoke_consent(consent: Consent, *, note: str, by: User) -> Consent:
    """Revoke a consent at once (GDPR Art. 7(3)). Waits for a transmission that relies on
    it to commit; later transmissions are refused. NotAllowed, and audited, unless BY holds
    a case role in the owning project."""
    if not may_work_on(by, consent.family):
        raise case_write_refused(by, consent.family)
    with transaction.atomic():
        return _revoke_consent(consent, note, by)


def _revoke_consent(consent: Consent, note: str, by: User) -> Consent:
    # The family row first (dienstweg.locks): the handlers lock its referrals after this.
    lock_family_row(consent.family_id)
    locked = lock_consent(consent)
    if locked.revoked_at is not None:
        raise ActionError(_("Diese Einwilligung ist bereits widerrufen."))
    locked.revoked_at = timezone.now()
    locked.revoked_by = by
    locked.encrypt_field("revocation_note", note)
    locked.save(update_fields=["revoked_at", "revoked_by", "revocation_note_enc"])
    record(
        by,
        CONSENT_REVOKED,
        target=locked,
        family=locked.family,
        purpose="Art. 7 Abs. 3 DSGVO",
        agency_id=locked.family.owner_id,
    )
    hooks.revoked(locked, by=by)
    return locked
