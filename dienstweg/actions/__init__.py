"""Every write of the platform core: accounts, second factor, sessions, agencies,
memberships, families and consent.

Views, the admin and management commands call these; none writes these tables itself."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.models import Device

from audit.trail import record
from dienstweg import events, vault
from dienstweg.access import is_dpo, may_register_for, may_work_on, record_refusal
from dienstweg.consent import consent_revoked, lock_consent, lock_family, processing_restricted
from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    Consent,
    DataCategory,
    DataKey,
    Evidence,
    Family,
    HouseholdMember,
    Membership,
    Notification,
    Purpose,
    StaffSession,
    User,
    hash_backup_code,
    normalize_email,
)

# Crockford-style alphabet: no 0/O, 1/I/L confusion when reading codes off paper.
BACKUP_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


THROTTLED_MESSAGE = gettext_lazy(
    "Zu viele falsche Codes. Bitte warten Sie einen Moment und versuchen Sie es dann erneut."
)


class ActionError(Exception):
    """A rule of the domain refused the action; the message is for the user."""


class NotAllowed(ActionError):
    """The actor may not take this action (her role); nothing was written."""


def _refuse_case_write(by: User, family: Family) -> NotAllowed:
    """Audit a refused write to the family's record as a refused access to it (as
    access_family_by_id does), in its own transaction, and return the error to raise."""
    record_refusal(by, "family.access_denied", family)
    return NotAllowed(_("Das dürfen nur Coaches, Fallbearbeitung und Leitungen des Projekts."))


def _require_dpo(by: User | str | None, *, agency_id: int | None = None) -> None:
    """Refuse a person who is not data-protection officer (of AGENCY_ID, if given). A name
    or None stands for the platform itself (a management command), which may act."""
    if isinstance(by, User) and not is_dpo(by, agency=agency_id):
        raise NotAllowed(_("Das dürfen nur Datenschutzbeauftragte."))


# Accounts


@transaction.atomic
def record_login(user: User) -> None:
    """The password step succeeded (the second factor is still to come)."""
    record(user, "auth.login")


@transaction.atomic
def record_failed_login(login_name: str) -> None:
    """A wrong password or an unknown account. The trail names the account by id when it
    exists, never by the typed name (which may be someone's mistyped address)."""
    user_id = User.objects.filter(email=normalize_email(login_name)).values_list("pk", flat=True)
    target = ("user", user_id[0]) if user_id else None
    record(None, "auth.login_failed", target=target)


@transaction.atomic
def record_lockout() -> None:
    record(None, "auth.locked_out")


@transaction.atomic
def record_second_factor_failed(user: User, *, throttled: bool) -> None:
    record(user, "auth.second_factor_failed", details={"throttled": throttled})


@transaction.atomic
def record_second_factor_passed(user: User, *, device: Device) -> None:
    record(user, "auth.second_factor_passed", details={"device": type(device).__name__})


@transaction.atomic
def record_logout(user: User, *, session_key: str | None = None) -> None:
    record(user, "auth.logout")
    if session_key:
        events.session_ended(user.pk, session_key)


def create_staff(email: str, *, full_name: str, password: str | None) -> User:
    """Create a staff account (no memberships yet)."""
    return User.objects.create_user(email, password, full_name=full_name)


@transaction.atomic
def deactivate_staff(user: User, *, by: User | None) -> None:
    """Deactivate an account and end all its sessions at once."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    end_all_sessions(user, by=by)
    record(by, "account.deactivated", target=user)


# Second factor


@transaction.atomic
def reset_second_factor(user: User, *, by: User | None) -> None:
    """Remove the user's authenticator and backup codes (lost phone): she enrols anew
    at her next login. Her sessions end, so no verified session outlives the reset."""
    AuthenticatorDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    end_all_sessions(user, by=by)
    record(by, "account.second_factor_reset", target=user)


def start_totp_enrolment(user: User) -> AuthenticatorDevice:
    """The unconfirmed authenticator device to show as QR code; reused on reload."""
    if AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists():
        raise ActionError(_("Für dieses Konto ist bereits ein zweiter Faktor eingerichtet."))
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = AuthenticatorDevice.create_for(user, name=_("Authenticator-App"), confirmed=False)
    return device


def confirm_totp_enrolment(device: AuthenticatorDevice, *, token: str) -> list[str]:
    """Confirm the authenticator with a first code; return the backup codes, shown once."""
    if device.confirmed:
        raise ActionError(_("Dieser zweite Faktor ist bereits bestätigt."))
    allowed, _details = device.verify_is_allowed()
    if not allowed:
        raise ActionError(THROTTLED_MESSAGE)
    # Outside a transaction on purpose: a wrong code's throttling must be kept, not rolled
    # back with the error.
    if not device.verify_token(token):
        raise ActionError(_("Der Code stimmt nicht. Bitte geben Sie den aktuellen Code ein."))
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return issue_backup_codes(device.user)


@transaction.atomic
def issue_backup_codes(user: User) -> list[str]:
    """Replace the user's backup codes with new ones. Only their hashes are stored."""
    device, _created = BackupCodeDevice.objects.get_or_create(
        user=user, defaults={"name": _("Backup-Codes"), "confirmed": True}
    )
    device.codes.all().delete()
    codes = []
    for _index in range(settings.BACKUP_CODE_COUNT):
        raw = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _char in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    BackupCode.objects.bulk_create(
        BackupCode(device=device, code_hash=hash_backup_code(code)) for code in codes
    )
    record(user, "account.backup_codes_issued", target=user)
    return codes


@dataclass(frozen=True)
class Verification:
    device: Device | None
    throttled: bool = False


def verify_second_factor(user: User, *, token: str) -> Verification:
    """Check a TOTP code or a backup code. A used backup code and a used TOTP step
    cannot be used again; wrong codes slow further tries down (django-otp throttling)."""
    token = "".join(token.split())
    # Six digits are an authenticator code, anything else a backup code: a backup code
    # must not count as a wrong authenticator code and slow the next one down.
    model: Any = AuthenticatorDevice if token.isdigit() and len(token) == 6 else BackupCodeDevice
    devices = list(model.objects.filter(user=user, confirmed=True))
    throttled = False
    for device in devices:
        with transaction.atomic():
            # Lock the device row: two parallel requests cannot both use one TOTP step.
            locked = type(device).objects.select_for_update().get(pk=device.pk)
            allowed, _details = locked.verify_is_allowed()
            if not allowed:
                throttled = True
                continue
            if locked.verify_token(token):
                return Verification(device=locked)
    return Verification(device=None, throttled=throttled)


# Sessions


@transaction.atomic
def end_session(user: User, *, session_key: str) -> bool:
    """End one of the user's own sessions."""
    deleted, _details = StaffSession.objects.filter(user=user, session_key=session_key).delete()
    if deleted:
        record(user, "session.ended", target=user, details={"count": 1})
        events.session_ended(user.pk, session_key)
    return deleted > 0


@transaction.atomic
def end_other_sessions(user: User, *, current_session_key: str) -> int:
    """End every session of the user except the one she is using."""
    others = StaffSession.objects.filter(user=user).exclude(session_key=current_session_key)
    keys = list(others.values_list("session_key", flat=True))
    deleted, _details = others.delete()
    record(user, "session.ended", target=user, details={"count": deleted})
    for key in keys:
        events.session_ended(user.pk, key)
    return deleted


@transaction.atomic
def end_all_sessions(user: User, *, by: User | None) -> int:
    """End every session of the user (admin action, deactivation)."""
    deleted, _details = StaffSession.objects.filter(user=user).delete()
    record(by, "session.ended", target=user, details={"count": deleted})
    events.session_ended(user.pk)
    return deleted


# Agencies and memberships


@transaction.atomic
def create_agency(*, name: str, kind: str, rechtskreis: str, **fields: Any) -> Agency:
    """Create an agency with the auth group its members are put into."""
    agency = Agency(name=name, kind=kind, rechtskreis=rechtskreis, **fields)
    attach_agency_group(agency)
    agency.save()
    return agency


def attach_agency_group(agency: Agency) -> None:
    """Give a new agency its own auth group (permissions are granted to groups later)."""
    if agency.group_id is None:
        agency.group = Group.objects.create(name=f"agency:{secrets.token_hex(8)}")


@transaction.atomic
def add_membership(user: User, *, agency: Agency, role: str, by: User | None) -> Membership:
    """Put a user into an agency with a role (and into the agency's group)."""
    if role not in Membership.Role.values:
        raise ActionError(_("Unbekannte Rolle."))
    membership, created = Membership.objects.get_or_create(
        user=user, agency=agency, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    user.groups.add(agency.group)
    record(
        by,
        "membership.granted",
        target=membership,
        agency_id=agency.pk,
        details={"user": user.pk, "role": role},
    )
    return membership


@transaction.atomic
def remove_membership(membership: Membership, *, by: User | None) -> None:
    """Take a user out of an agency (and out of its group)."""
    membership.user.groups.remove(membership.agency.group)
    record(
        by,
        "membership.removed",
        target=membership,
        agency_id=membership.agency_id,
        details={"user": membership.user_id, "role": membership.role},
    )
    membership.delete()
    events.access_revoked([membership.user_id])


# Families


@dataclass(frozen=True)
class MemberData:
    kind: str
    first_name: str
    last_name: str
    birth_date: date


def identity_index(first_name: str, last_name: str, birth_date: date) -> str:
    return vault.blind_index(first_name, last_name, birth_date.isoformat())


def _next_reference(year: int) -> str:
    prefix = f"F-{year}-"
    # Longest first, then by text: "F-2026-10000" comes after "F-2026-9999".
    last = (
        Family.objects.filter(reference__startswith=prefix)
        .order_by(Length("reference").desc(), "-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.removeprefix(prefix)) + 1 if last else 1
    return f"{prefix}{number:04d}"


def register_family(
    *,
    owner: Agency,
    members: list[MemberData],
    address: str,
    phone: str,
    notes: str,
    by: User,
) -> Family:
    """Register a family of the owner project, its data sealed under a new data key.
    NotAllowed unless BY is a coach or lead of that project."""
    # Not audited: no family exists yet to name, and the view refuses the page before.
    if not may_register_for(by, owner):
        raise NotAllowed(_("Familien legen Coaches und Leitungen eines Projekts an."))
    if not members:
        raise ActionError(_("Bitte mindestens ein Haushaltsmitglied angeben."))
    if not any(member.kind == HouseholdMember.Kind.ADULT for member in members):
        raise ActionError(_("Zum Haushalt gehört mindestens eine erwachsene Person."))
    for attempt in range(5):
        try:
            with transaction.atomic():
                return _register_family(owner, members, address, phone, notes, by)
        except IntegrityError:
            # Two registrations took the same reference at once: take the next one.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _register_family(
    owner: Agency, members: list[MemberData], address: str, phone: str, notes: str, by: User
) -> Family:
    family = Family(
        reference=_next_reference(timezone.localdate().year),
        owner=owner,
        data_key=vault.create_data_key(),
        registered_by=by,
    )
    family.seal("address", address)
    family.seal("phone", phone)
    family.seal("notes", notes)
    family.save(force_insert=True)
    for position, data in enumerate(members):
        member = HouseholdMember(
            family=family,
            kind=data.kind,
            position=position,
            identity_index=identity_index(data.first_name, data.last_name, data.birth_date),
        )
        member.seal("first_name", data.first_name)
        member.seal("last_name", data.last_name)
        member.seal("birth_date", data.birth_date.isoformat())
        member.save(force_insert=True)
    record(
        by,
        "family.registered",
        target=family,
        family=family,
        agency_id=owner.pk,
        details={"members": len(members)},
    )
    return family


@transaction.atomic
def record_family_read(
    family: Family, *, by: User, action: str, details: dict[str, Any] | None = None
) -> None:
    """Record that a member of the owning project read the family's data."""
    record(
        by,
        action,
        target=family,
        family=family,
        purpose="Fallarbeit im eigenen Projekt",
        agency_id=family.owner_id,
        details=details,
    )


@transaction.atomic
def erase_family_key(family: Family, *, by: User | str | None, reason: str) -> None:
    """Destroy the family's data key (crypto-shredding): every copy of its sealed data,
    backups included, becomes unreadable. The records themselves go in a later step.
    A person erasing must be a DPO (NotAllowed); a command names itself in BY."""
    _require_dpo(by)
    if family.data_key_id is None:
        raise ActionError(_("Die Daten dieser Familie sind bereits gelöscht."))
    DataKey.objects.filter(pk=family.data_key_id).delete()
    family.data_key = None
    transaction.on_commit(vault.forget_unwrapped_keys)
    record(by, "family.key_destroyed", target=family, family=family, purpose=reason[:200])


@dataclass(frozen=True)
class RecordErasure:
    """What erase_family_record removed (counts) and kept (consents, as metadata)."""

    members: int
    evidence: int
    consents_kept: int
    notifications: int


@transaction.atomic
def erase_family_record(family: Family, *, by: User | str | None, reason: str) -> RecordErasure:
    """Erase the family record (GDPR Art. 17): blank its sealed fields, delete the consent
    scans and the notifications naming it, anonymise the household members. The row stays
    as a tombstone (its reference); the consents stay as metadata without their notes,
    as proof that the processing was lawful (Art. 7 Abs. 1 DSGVO). The key goes separately
    (erase_family_key). A person erasing must be a DPO (NotAllowed)."""
    _require_dpo(by)
    locked = Family.objects.select_for_update().get(pk=family.pk)
    if locked.erased_at is not None:
        raise ActionError(_("Die Daten dieser Familie sind bereits gelöscht."))
    Family.objects.filter(pk=family.pk).update(
        erased_at=timezone.now(),
        address_enc=b"",
        phone_enc=b"",
        notes_enc=b"",
        restriction_reason_enc=b"",
    )
    # Consent.evidence and Consent.given_by PROTECT their rows: unlink the scans first, and
    # keep the members, anonymised (no names, no birth date, no blind index to find them).
    consents = Consent.objects.filter(family=family)
    consents_kept = consents.update(evidence=None, witness_note_enc=b"", revocation_note_enc=b"")
    evidence, _details = Evidence.objects.filter(family=family).delete()
    members = HouseholdMember.objects.filter(family=family).update(
        first_name_enc=b"", last_name_enc=b"", birth_date_enc=b"", identity_index=""
    )
    notifications, _details = Notification.objects.filter(family_ref=family.reference).delete()
    family.refresh_from_db()
    erased = RecordErasure(members, evidence, consents_kept, notifications)
    record(
        by,
        "family.record_erased",
        target=family,
        family=family,
        purpose=reason[:200],
        details={
            "members": members,
            "evidence": evidence,
            "consents_kept": consents_kept,
            "notifications": notifications,
        },
    )
    return erased


# Restriction of processing (GDPR Art. 18)

RESTRICTION_PURPOSE = "Art. 18 DSGVO"
RESTRICTION_TEXT_MAX = 2000


def restrict_processing(
    family: Family, *, reason: str, by: User, agency_id: int | None = None
) -> Family:
    """Restrict the processing of the family's data (GDPR Art. 18, SGB X § 84), recorded by
    the DPO of AGENCY_ID: the data stays, but nothing of it is shared with or shown to
    anyone beyond the owning project until lifted. The reason is sealed in the family row,
    never written to the trail. Waits for a transmission in flight to commit; the apps
    above tell the sockets of those who lose sight of the family (processing_restricted).
    NotAllowed unless BY is a DPO (of AGENCY_ID, if given)."""
    _require_dpo(by, agency_id=agency_id)
    reason = reason.strip()
    if not reason:
        raise ActionError(_("Bitte geben Sie den Grund der Einschränkung an."))
    if len(reason) > RESTRICTION_TEXT_MAX:
        raise ActionError(
            _("Der Grund ist zu lang (höchstens %(n)d Zeichen).") % {"n": RESTRICTION_TEXT_MAX}
        )
    with transaction.atomic():
        locked = lock_family(family)
        if locked.is_erased:
            raise ActionError(_("Die Daten dieser Familie sind gelöscht: nichts einzuschränken."))
        if locked.is_restricted:
            raise ActionError(_("Die Verarbeitung dieser Familie ist bereits eingeschränkt."))
        locked.restricted_at = timezone.now()
        locked.restricted_by = by
        locked.seal("restriction_reason", reason)
        locked.save(update_fields=["restricted_at", "restricted_by", "restriction_reason_enc"])
        record(
            by,
            "family.processing_restricted",
            target=locked,
            family=locked,
            purpose=RESTRICTION_PURPOSE,
            agency_id=agency_id,
        )
        processing_restricted.send(sender=Family, family=locked, by=by)
        return locked


def lift_restriction(
    family: Family, *, note: str = "", by: User, agency_id: int | None = None
) -> Family:
    """Lift the restriction (the DPO of AGENCY_ID): the family's objects are shared and
    shown again as its consents allow. The sealed reason stays as the record of the last
    restriction, with NOTE (e.g. when the family was told, Art. 18(3)) added to it.
    NotAllowed unless BY is a DPO (of AGENCY_ID, if given)."""
    _require_dpo(by, agency_id=agency_id)
    note = note.strip()
    if len(note) > RESTRICTION_TEXT_MAX:
        raise ActionError(
            _("Der Vermerk ist zu lang (höchstens %(n)d Zeichen).") % {"n": RESTRICTION_TEXT_MAX}
        )
    with transaction.atomic():
        locked = lock_family(family)
        if locked.is_erased:
            raise ActionError(_("Die Daten dieser Familie sind gelöscht: nichts freizugeben."))
        if not locked.is_restricted:
            raise ActionError(_("Die Verarbeitung dieser Familie ist nicht eingeschränkt."))
        since = timezone.localdate(locked.restricted_at)
        locked.restricted_at = None
        locked.restricted_by = None
        if note:
            reason = locked.unseal("restriction_reason")
            lifted = _("Aufgehoben: %(note)s") % {"note": note}
            locked.seal("restriction_reason", f"{reason}\n\n{lifted}" if reason else lifted)
        locked.save(update_fields=["restricted_at", "restricted_by", "restriction_reason_enc"])
        record(
            by,
            "family.restriction_lifted",
            target=locked,
            family=locked,
            purpose=RESTRICTION_PURPOSE,
            agency_id=agency_id,
            details={"restricted_since": since.isoformat(), "with_note": bool(note)},
        )
        return locked


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
        raise _refuse_case_write(by, family)
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
        evidence.seal("content", data.evidence)
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
    consent.seal("witness_note", data.witness_note)
    consent.save(force_insert=True)
    consent.recipients.set(data.recipients)
    record(
        by,
        "consent.granted",
        target=consent,
        family=family,
        purpose="Art. 6 Abs. 1 lit. a DSGVO",
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
        raise _refuse_case_write(by, consent.family)
    with transaction.atomic():
        return _revoke_consent(consent, note, by)


def _revoke_consent(consent: Consent, note: str, by: User) -> Consent:
    locked = lock_consent(consent)
    if locked.revoked_at is not None:
        raise ActionError(_("Diese Einwilligung ist bereits widerrufen."))
    locked.revoked_at = timezone.now()
    locked.revoked_by = by
    locked.seal("revocation_note", note)
    locked.save(update_fields=["revoked_at", "revoked_by", "revocation_note_enc"])
    record(
        by, "consent.revoked", target=locked, family=locked.family, purpose="Art. 7 Abs. 3 DSGVO"
    )
    consent_revoked.send(sender=Consent, consent=locked, by=by)
    return locked
