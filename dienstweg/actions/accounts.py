"""Accounts: logins and their audit, staff accounts, the second factor (TOTP and backup
codes) and sessions. How accounts begin, and how a second factor is reset or renewed, is in
lifecycle.py."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.models import Device

from audit.trail import record
from dienstweg import events
from dienstweg.actions.errors import ActionError
from dienstweg.audit_actions import (
    ACCOUNT_BACKUP_CODES_ISSUED,
    ACCOUNT_DEACTIVATED,
    AUTH_LOCKED_OUT,
    AUTH_LOGIN,
    AUTH_LOGIN_FAILED,
    AUTH_LOGIN_NOT_ENROLLED,
    AUTH_LOGOUT,
    AUTH_SECOND_FACTOR_FAILED,
    AUTH_SECOND_FACTOR_PASSED,
    SESSION_ENDED,
)
from dienstweg.models import (
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
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


# Accounts


@transaction.atomic
def record_login(user: User) -> None:
    """The password step succeeded (the second factor is still to come)."""
    record(user, AUTH_LOGIN)


@transaction.atomic
def record_failed_login(login_name: str) -> None:
    """A wrong password or an unknown account. The trail names the account by id when it
    exists, never by the typed name (which may be someone's mistyped address)."""
    user_id = User.objects.filter(email=normalize_email(login_name)).values_list("pk", flat=True)
    target = ("user", user_id[0]) if user_id else None
    record(None, AUTH_LOGIN_FAILED, target=target)


@transaction.atomic
def record_lockout() -> None:
    record(None, AUTH_LOCKED_OUT)


@transaction.atomic
def record_second_factor_failed(user: User, *, throttled: bool) -> None:
    record(user, AUTH_SECOND_FACTOR_FAILED, details={"throttled": throttled})


@transaction.atomic
def record_second_factor_passed(user: User, *, device: Device) -> None:
    record(user, AUTH_SECOND_FACTOR_PASSED, details={"device": type(device).__name__})


@transaction.atomic
def record_logout(user: User, *, session_key: str | None = None) -> None:
    record(user, AUTH_LOGOUT)
    if session_key:
        events.session_ended(user.pk, session_key)


@transaction.atomic
def record_login_not_enrolled(user: User) -> None:
    """The right password for an account without a second factor: no session, a hint to
    use the enrolment link (the login never enrols)."""
    record(None, AUTH_LOGIN_NOT_ENROLLED, target=user)


def create_staff(email: str, *, full_name: str, password: str | None) -> User:
    """Create a staff account with a known password (no memberships yet): for the demo and
    the tests only. People get their accounts through create_account, with a link."""
    return User.objects.create_user(email, password, full_name=full_name)


@transaction.atomic
def deactivate_staff(user: User, *, by: User | None) -> None:
    """Deactivate an account and end all its sessions at once."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    end_all_sessions(user, by=by)
    record(by, ACCOUNT_DEACTIVATED, target=user)


# Second factor


def start_totp_enrolment(user: User) -> AuthenticatorDevice:
    """The unconfirmed authenticator device to show as QR code; reused on reload. (People
    set up their factor through their enrolment link, lifecycle.enrol_by_link; this and
    confirm_totp_enrolment give the test personas theirs.)"""
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
    record(user, ACCOUNT_BACKUP_CODES_ISSUED, target=user)
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
        record(user, SESSION_ENDED, target=user, details={"count": 1})
        events.session_ended(user.pk, session_key)
    return deleted > 0


@transaction.atomic
def end_other_sessions(user: User, *, current_session_key: str) -> int:
    """End every session of the user except the one she is using."""
    others = StaffSession.objects.filter(user=user).exclude(session_key=current_session_key)
    keys = list(others.values_list("session_key", flat=True))
    deleted, _details = others.delete()
    record(user, SESSION_ENDED, target=user, details={"count": deleted})
    for key in keys:
        events.session_ended(user.pk, key)
    return deleted


@transaction.atomic
def end_all_sessions(user: User, *, by: User | None) -> int:
    """End every session of the user (admin action, deactivation)."""
    deleted, _details = StaffSession.objects.filter(user=user).delete()
    record(by, SESSION_ENDED, target=user, details={"count": deleted})
    events.session_ended(user.pk)
    return deleted
