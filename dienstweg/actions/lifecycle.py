"""The account lifecycle. Nobody sets or sees another person's password: an account starts
with a single-use link to the person's own address, where she chooses her password and sets
up her second factor; a lost second factor is reset by a second person (her agency's lead or
another admin) and she sets up a new one through a new link; renewing her backup codes or her
second factor herself needs a fresh login and tells her."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.trail import record
from dienstweg import notifications, outbox
from dienstweg.access import is_operator, may_reset_second_factor
from dienstweg.actions.accounts import (
    THROTTLED_MESSAGE,
    end_all_sessions,
    end_other_sessions,
    issue_backup_codes,
)
from dienstweg.actions.errors import ActionError, NotAllowed
from dienstweg.audit_actions import (
    ACCOUNT_CREATED,
    ACCOUNT_ENROLLED,
    ACCOUNT_ENROLMENT_LINK_SENT,
    ACCOUNT_PASSWORD_CHANGED,
    ACCOUNT_PASSWORD_SET,
    ACCOUNT_SECOND_FACTOR_RENEWED,
    ACCOUNT_SECOND_FACTOR_RESET,
    AUTH_REAUTHENTICATED,
    AUTH_REAUTHENTICATION_FAILED,
)
from dienstweg.models import (
    AuthenticatorDevice,
    BackupCodeDevice,
    EnrolmentLink,
    User,
    hash_link_token,
    normalize_email,
)

# Enrolment links

INVALID_LINK = gettext_lazy(
    "Dieser Link gilt nicht (mehr). Ein Einrichtungslink gilt nur einmal und nur eine "
    "begrenzte Zeit. Bitte fragen Sie Ihre Leitung oder die Administration nach einem neuen Link."
)
# The outbox's label of the e-mails that carry a link.
LINK_MAIL = "account.enrolment_link"
# A link whose password is typed wrong this often is voided: her password cannot be guessed
# through a link that reached someone else.
LINK_PASSWORD_ATTEMPTS = 5


class InvalidLink(ActionError):
    """The link is unknown, used, replaced or expired: one answer for all of them."""

    def __init__(self) -> None:
        super().__init__(str(INVALID_LINK))


class EnrolmentRefused(ActionError):
    """A step of the enrolment page was wrong; FIELD names the field the message belongs to."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class FreshLoginRequired(NotAllowed):
    """The action needs a login confirmed with password and code within the last minutes."""

    def __init__(self) -> None:
        super().__init__(
            _("Bitte bestätigen Sie zuerst Ihre Anmeldung mit Passwort und aktuellem Code.")
        )


@dataclass(frozen=True)
class IssuedLink:
    link: EnrolmentLink
    # The address with the raw token, as e-mailed to the person; it is never stored.
    url: str


def has_second_factor(user: User) -> bool:
    return AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()


def _check_operator(by: User | None) -> None:
    """Refuse anyone but an admin. None is the platform itself (a management command)."""
    if by is not None and not is_operator(by):
        raise NotAllowed(_("Das dürfen nur Administratorinnen und Administratoren."))


def _issue_link(user: User, *, purpose: str, by: User | None, now: datetime) -> IssuedLink:
    """Void the account's open links, store a new one (its token's hash only), and e-mail it
    to the account's own address once the caller's transaction has committed."""
    EnrolmentLink.objects.filter(user=user, used_at=None, voided_at=None).update(voided_at=now)
    token = secrets.token_urlsafe(32)
    link = EnrolmentLink.objects.create(
        user=user,
        token_hash=hash_link_token(token),
        purpose=purpose,
        issued_by=by,
        created_at=now,
        expires_at=now + timedelta(hours=settings.ENROLMENT_LINK_HOURS),
    )
    url = settings.DIENSTWEG_BASE_URL + reverse("enrolment_link", args=[token])
    record(by, ACCOUNT_ENROLMENT_LINK_SENT, target=user, details={"link": link.pk})
    # The voided links' e-mails need not go out any more; this one goes in their place.
    outbox.withdraw(user, kind=LINK_MAIL, now=now)
    _queue_link_mail(user, url=url, link=link)
    return IssuedLink(link=link, url=url)


def _purpose_of_next_link(user: User, *, had_factor: bool, reset_password: bool) -> str:
    """Whether her next link asks for the password she has (REPLACE_FACTOR) or lets her
    choose one (ENROL). She keeps a password she has used with her own second factor; a
    password from before she ever enrolled may be one someone else chose (an account from
    before links), so it is made unusable, as it is when RESET_PASSWORD."""
    replace = EnrolmentLink.Purpose.REPLACE_FACTOR
    latest = user.enrolment_links.order_by("-created_at", "-pk").first()
    keeps = (
        user.has_usable_password()
        and not reset_password
        and (had_factor or (latest is not None and latest.purpose == replace))
    )
    if not keeps and user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return replace if keeps else EnrolmentLink.Purpose.ENROL


def _queue_link_mail(user: User, *, url: str, link: EnrolmentLink) -> None:
    # Into the outbox, in the action's transaction: a rolled-back action sends no link to a
    # token that was never stored. The e-mail holds the link and its validity, no name; the
    # outbox keeps it encrypted, since the link alone opens the account.
    until = timezone.localtime(link.expires_at).strftime("%d.%m.%Y, %H:%M")
    with translation.override("de"):
        if link.purpose == EnrolmentLink.Purpose.REPLACE_FACTOR:
            subject = _("Dienstweg: neuen zweiten Faktor einrichten")
            intro = _(
                "Ihr zweiter Faktor für Dienstweg wurde zurückgesetzt. Über diesen Link "
                "richten Sie mit Ihrem bisherigen Passwort eine Authenticator-App neu ein:"
            )
        else:
            subject = _("Dienstweg: Zugang einrichten")
            intro = _(
                "Über diesen Link richten Sie Ihren Zugang zu Dienstweg ein: Sie legen Ihr "
                "Passwort selbst fest und richten Ihren zweiten Faktor (eine Authenticator-App) "
                "ein."
            )
        body = "\n".join(
            [
                intro,
                "",
                url,
                "",
                _("Der Link gilt einmal und bis %(until)s Uhr.") % {"until": until},
                _(
                    "Ist er abgelaufen, bitten Sie Ihre Leitung oder die Administration um einen "
                    "neuen Link."
                ),
                "",
                _(
                    "Geben Sie den Link nicht weiter: Wer ihn hat, kann den Zugang einrichten. "
                    "Haben Sie ihn nicht erwartet, melden Sie sich bitte bei der Administration."
                ),
            ]
        )
    outbox.queue_mail([user], kind=LINK_MAIL, subject=subject, body=body)


@transaction.atomic
def create_account(
    email: str,
    *,
    full_name: str,
    by: User | None,
    admin_rights: bool = False,
    now: datetime | None = None,
) -> IssuedLink:
    """Create a staff account without a usable password and send the person her enrolment
    link. Admins only (or the platform); memberships are added separately. ADMIN_RIGHTS
    makes an operator account (the Django admin): how the first admin is made, from the
    server's shell (manage.py create_account)."""
    _check_operator(by)
    email, full_name = normalize_email(email), full_name.strip()
    if not email or not full_name:
        raise ActionError(_("Bitte geben Sie Name und E-Mail-Adresse an."))
    if User.objects.filter(email=email).exists():
        raise ActionError(_("Ein Konto mit dieser E-Mail-Adresse gibt es schon."))
    user = User.objects.create_user(  # no usable password
        email, None, full_name=full_name, is_staff=admin_rights, is_superuser=admin_rights
    )
    record(by, ACCOUNT_CREATED, target=user, details={"admin_rights": admin_rights})
    return _issue_link(user, purpose=EnrolmentLink.Purpose.ENROL, by=by, now=now or timezone.now())


@transaction.atomic
def send_enrolment_link(user: User, *, by: User | None, now: datetime | None = None) -> IssuedLink:
    """Send a fresh link to an account that has not set up its second factor yet; older links
    stop working. Admins only (or the platform)."""
    _check_operator(by)
    if not user.is_active:
        raise ActionError(_("Das Konto ist deaktiviert."))
    if has_second_factor(user):
        raise ActionError(
            _(
                "Dieser Zugang ist schon eingerichtet. Bei verlorenem Handy: "
                "„Zweiten Faktor zurücksetzen“."
            )
        )
    purpose = _purpose_of_next_link(user, had_factor=False, reset_password=False)
    return _issue_link(user, purpose=purpose, by=by, now=now or timezone.now())


@transaction.atomic
def reset_second_factor(
    user: User, *, by: User, reset_password: bool = False, now: datetime | None = None
) -> IssuedLink:
    """Remove the user's authenticator and backup codes (lost phone), end every session of
    hers and send her a link to set up a new factor. Only a second person may: a lead of one
    of her agencies, or an admin; never she herself, and an admin account only by an admin.

    She keeps her password (the link asks for it, so the link alone is not enough) unless
    RESET_PASSWORD: then she chooses a new one through the link (a forgotten password)."""
    if by.pk == user.pk:
        raise NotAllowed(
            _(
                "Den eigenen zweiten Faktor setzt eine zweite Person zurück: Ihre Leitung oder "
                "die Administration."
            )
        )
    if not may_reset_second_factor(by, user):
        raise NotAllowed(
            _(
                "Den zweiten Faktor setzen nur die Leitung ihrer Einrichtung oder die "
                "Administration zurück."
            )
        )
    if not user.is_active:
        raise ActionError(_("Das Konto ist deaktiviert."))
    had_factor = has_second_factor(user)
    AuthenticatorDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    purpose = _purpose_of_next_link(user, had_factor=had_factor, reset_password=reset_password)
    end_all_sessions(user, by=by)
    issued = _issue_link(user, purpose=purpose, by=by, now=now or timezone.now())
    record(
        by,
        ACCOUNT_SECOND_FACTOR_RESET,
        target=user,
        details={"link": issued.link.pk, "password_reset": reset_password},
    )
    return issued


def pending_authenticator(user: User, *, device_id: int | None) -> AuthenticatorDevice:
    """The unconfirmed authenticator this browser is setting up (DEVICE_ID, kept in its
    session), or a new one. Another browser gets its own, so nobody else ever sees the
    secret of the device she confirms; older unconfirmed ones are removed."""
    pending = AuthenticatorDevice.objects.filter(user=user, confirmed=False)
    if device_id is not None:
        device = pending.filter(pk=device_id).first()
        if device is not None:
            return device
    with transaction.atomic():
        pending.delete()
        return AuthenticatorDevice.create_for(user, name=_("Authenticator-App"), confirmed=False)


def enrol_by_link(
    link: EnrolmentLink,
    *,
    device: AuthenticatorDevice,
    password: str,
    token: str,
    now: datetime | None = None,
) -> list[str]:
    """Set up the account's access through its link, all or nothing: for an ENROL link
    PASSWORD is the one she chooses, for REPLACE_FACTOR the one she has; TOKEN is the first
    code of her new authenticator. The link is used up; returns the backup codes, shown once.

    Raises InvalidLink for a link that is not open, EnrolmentRefused for a wrong password or
    code (nothing else changes; a wrong code slows the next try down, and the fifth wrong
    password voids the link)."""
    now = now or timezone.now()
    refused: EnrolmentRefused | None = None
    with transaction.atomic():
        # The link's row lock makes it single use, also for two requests at once.
        locked = EnrolmentLink.objects.select_for_update().filter(pk=link.pk).first()
        if locked is None or not locked.is_open(now):
            raise InvalidLink
        user = User.objects.get(pk=locked.user_id)
        if not user.is_active:
            raise InvalidLink
        pending = AuthenticatorDevice.objects.select_for_update().filter(
            pk=device.pk, user=user, confirmed=False
        )
        current = pending.first()
        if current is None:
            raise EnrolmentRefused(
                _("Bitte laden Sie die Seite neu und scannen Sie den neuen QR-Code."),
                field="token",
            )
        allowed, _details = current.verify_is_allowed()
        if not allowed:
            refused = EnrolmentRefused(str(THROTTLED_MESSAGE), field="token")
        elif locked.purpose == EnrolmentLink.Purpose.REPLACE_FACTOR and not user.check_password(
            password
        ):
            # Counted on the device too, so guesses slow down before the link is voided.
            current.throttle_increment()
            locked.password_failures += 1
            if locked.password_failures >= LINK_PASSWORD_ATTEMPTS:
                locked.voided_at = now
            locked.save(update_fields=["password_failures", "voided_at"])
            refused = EnrolmentRefused(_("Das Passwort stimmt nicht."), field="password")
        elif not current.verify_token(token):  # a wrong code is counted (throttling)
            refused = EnrolmentRefused(
                _("Der Code stimmt nicht. Bitte geben Sie den aktuellen Code ein."), field="token"
            )
        else:
            if locked.purpose == EnrolmentLink.Purpose.ENROL:
                try:
                    password_validation.validate_password(password, user=user)
                except ValidationError as error:
                    raise EnrolmentRefused(" ".join(error.messages), field="password") from None
                user.set_password(password)
                user.save(update_fields=["password"])
                record(user, ACCOUNT_PASSWORD_SET, target=user, details={"link": locked.pk})
            locked.used_at = now
            locked.save(update_fields=["used_at"])
            AuthenticatorDevice.objects.filter(user=user).exclude(pk=current.pk).delete()
            current.confirmed = True
            current.save(update_fields=["confirmed"])
            codes = issue_backup_codes(user)
            record(user, ACCOUNT_ENROLLED, target=user, details={"link": locked.pk})
            return codes
    # Outside the transaction's rollback on purpose: the counted failure is kept.
    raise refused


# Renewal by the person herself: only after a fresh login (password and code again), and
# she is told, so that a stolen session cannot silently replace her second factor.


def check_fresh_login(reauthenticated_at: datetime | None, *, now: datetime | None = None) -> None:
    """Raise FreshLoginRequired unless the login was confirmed within the last minutes."""
    now = now or timezone.now()
    window = timedelta(minutes=settings.REAUTHENTICATION_MINUTES)
    # The time comes from the session, which only the server writes.
    if reauthenticated_at is None or reauthenticated_at < now - window:
        raise FreshLoginRequired


@transaction.atomic
def record_reauthenticated(user: User) -> None:
    record(user, AUTH_REAUTHENTICATED, target=user)


@transaction.atomic
def record_reauthentication_failed(user: User, *, step: str, throttled: bool = False) -> None:
    details = {"step": step, "throttled": throttled}
    record(user, AUTH_REAUTHENTICATION_FAILED, target=user, details=details)


def _check_self(user: User, by: User) -> None:
    if by.pk != user.pk:
        raise NotAllowed(
            _("Passwort, Backup-Codes und zweiten Faktor ändert nur die Person selbst.")
        )


@transaction.atomic
def change_password(
    user: User,
    *,
    password: str,
    by: User,
    reauthenticated_at: datetime | None,
    current_session_key: str,
    now: datetime | None = None,
) -> None:
    """Set the user's own new password, after a fresh login: her other sessions end and
    she is told (also the way to replace a password an admin chose before links)."""
    _check_self(user, by)
    check_fresh_login(reauthenticated_at, now=now)
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as error:
        raise ActionError(" ".join(error.messages)) from None
    user.set_password(password)
    user.save(update_fields=["password"])
    end_other_sessions(user, current_session_key=current_session_key)
    record(user, ACCOUNT_PASSWORD_CHANGED, target=user)
    notifications.notify(
        [user],
        kind="account.password_changed",
        title=gettext_lazy(
            "Das Passwort Ihres Kontos wurde geändert. Waren Sie das nicht, melden Sie sich "
            "sofort bei Ihrer Leitung oder der Administration."
        ),
        url=reverse("account"),
    )


@transaction.atomic
def renew_backup_codes(
    user: User, *, by: User, reauthenticated_at: datetime | None, now: datetime | None = None
) -> list[str]:
    """Replace the user's backup codes with new ones, after a fresh login, and tell her."""
    _check_self(user, by)
    check_fresh_login(reauthenticated_at, now=now)
    codes = issue_backup_codes(user)
    notifications.notify(
        [user],
        kind="account.backup_codes_renewed",
        title=gettext_lazy(
            "Für Ihr Konto wurden neue Backup-Codes erzeugt. Waren Sie das nicht, melden Sie "
            "sich sofort bei Ihrer Leitung oder der Administration."
        ),
        url=reverse("account"),
    )
    return codes


def start_second_factor_renewal(
    user: User,
    *,
    by: User,
    reauthenticated_at: datetime | None,
    device_id: int | None,
    now: datetime | None = None,
) -> AuthenticatorDevice:
    """The new authenticator to show as QR code (the current one keeps working until the
    new one is confirmed), after a fresh login."""
    _check_self(user, by)
    check_fresh_login(reauthenticated_at, now=now)
    return pending_authenticator(user, device_id=device_id)


def renew_second_factor(
    device: AuthenticatorDevice,
    *,
    token: str,
    by: User,
    reauthenticated_at: datetime | None,
    current_session_key: str,
    now: datetime | None = None,
) -> list[str]:
    """Confirm the new authenticator with its first code, after a fresh login: it replaces
    the old one, the backup codes are renewed, her other sessions end and she is told."""
    user: Any = device.user
    _check_self(user, by)
    check_fresh_login(reauthenticated_at, now=now)
    refused = False
    with transaction.atomic():
        locked = (
            AuthenticatorDevice.objects.select_for_update()
            .filter(pk=device.pk, user=user, confirmed=False)
            .first()
        )
        if locked is None:
            raise ActionError(_("Bitte laden Sie die Seite neu und scannen Sie den neuen QR-Code."))
        allowed, _details = locked.verify_is_allowed()
        if allowed and locked.verify_token(token):
            AuthenticatorDevice.objects.filter(user=user).exclude(pk=locked.pk).delete()
            locked.confirmed = True
            locked.save(update_fields=["confirmed"])
            codes = issue_backup_codes(user)
            end_other_sessions(user, current_session_key=current_session_key)
            record(user, ACCOUNT_SECOND_FACTOR_RENEWED, target=user)
            notifications.notify(
                [user],
                kind="account.second_factor_renewed",
                title=gettext_lazy(
                    "Für Ihr Konto wurde eine neue Authenticator-App eingerichtet. Waren Sie das "
                    "nicht, melden Sie sich sofort bei Ihrer Leitung oder der Administration."
                ),
                url=reverse("account"),
            )
            return codes
        refused = not allowed
    if refused:
        raise ActionError(str(THROTTLED_MESSAGE))
    raise ActionError(_("Der Code stimmt nicht. Bitte geben Sie den aktuellen Code ein."))
