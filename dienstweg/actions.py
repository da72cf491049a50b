"""Every write of the platform core: accounts, second factor, sessions, agencies, memberships.

Views, the admin and management commands call these; none writes these tables itself."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django_otp.models import Device

from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    Membership,
    StaffSession,
    User,
    hash_backup_code,
)

# Crockford-style alphabet: no 0/O, 1/I/L confusion when reading codes off paper.
BACKUP_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


THROTTLED_MESSAGE = _lazy(
    "Zu viele falsche Codes. Bitte warten Sie einen Moment und versuchen Sie es dann erneut."
)


class ActionError(Exception):
    """A rule of the domain refused the action; the message is for the user."""


# Accounts


def create_staff(email: str, *, full_name: str, password: str | None) -> User:
    """Create a staff account (no memberships yet)."""
    return User.objects.create_user(email, password, full_name=full_name)


@transaction.atomic
def deactivate_staff(user: User, *, by: User | None) -> None:
    """Deactivate an account and end all its sessions at once."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    end_all_sessions(user, by=by)


# Second factor


@transaction.atomic
def reset_second_factor(user: User, *, by: User | None) -> None:
    """Remove the user's authenticator and backup codes (lost phone): she enrols anew
    at her next login. Her sessions end, so no verified session outlives the reset."""
    AuthenticatorDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    end_all_sessions(user, by=by)


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


def end_session(user: User, *, session_key: str) -> bool:
    """End one of the user's own sessions."""
    deleted, _details = StaffSession.objects.filter(user=user, session_key=session_key).delete()
    return deleted > 0


def end_other_sessions(user: User, *, current_session_key: str) -> int:
    """End every session of the user except the one she is using."""
    deleted, _details = (
        StaffSession.objects.filter(user=user).exclude(session_key=current_session_key).delete()
    )
    return deleted


def end_all_sessions(user: User, *, by: User | None) -> int:
    """End every session of the user (admin action, deactivation)."""
    deleted, _details = StaffSession.objects.filter(user=user).delete()
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
    return membership


@transaction.atomic
def remove_membership(membership: Membership, *, by: User | None) -> None:
    """Take a user out of an agency (and out of its group)."""
    membership.user.groups.remove(membership.agency.group)
    membership.delete()
