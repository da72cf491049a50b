"""Staff accounts, their sessions and their second factor."""

from __future__ import annotations

import hashlib
import hmac
from base64 import b32encode
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from dienstweg import clock, vault
from dienstweg.models.keys import DataKey


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively; we store them in lower case."""
    return email.strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=normalize_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A member of staff of one or more agencies. Logs in with email and password."""

    email = models.EmailField(_("E-Mail"), unique=True)
    full_name = models.CharField(_("Name"), max_length=150)
    is_staff = models.BooleanField(
        _("Zugang zur Verwaltung"),
        default=False,
        help_text=_("Darf die Verwaltungsoberfläche (Django-Admin) öffnen."),
    )
    is_active = models.BooleanField(_("aktiv"), default=True)
    date_joined = models.DateTimeField(_("angelegt am"), default=timezone.now)
    # Encrypts the account's second-factor secret (dienstweg/vault.py).
    data_key = models.ForeignKey(
        DataKey, null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="+"
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        verbose_name = _("Mitarbeiterin/Mitarbeiter")
        verbose_name_plural = _("Mitarbeitende")
        ordering = ["full_name"]

    def __str__(self) -> str:
        return self.full_name or self.email


class StaffSession(AbstractBaseSession):
    """A login session, kept in the database so that a user can see and end hers."""

    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("Sitzung")
        verbose_name_plural = _("Sitzungen")
        indexes = [models.Index(fields=["user", "expire_date"])]

    @classmethod
    def get_session_store_class(cls) -> type:
        from dienstweg.sessions import SessionStore

        return SessionStore


def hash_backup_code(code: str) -> str:
    """Keyed hash of a backup code, after removing the spaces and dashes people type."""
    normalized = "".join(ch for ch in code.upper() if ch.isalnum())
    key = settings.BACKUP_CODE_KEY.encode()
    return hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP authenticator app. As django-otp's TOTPDevice, but the secret is stored
    encrypted with the account's data key (django-otp keeps it in plain text)."""

    key_encrypted = models.BinaryField(editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    # The time step of the last accepted code: only later steps are accepted (no replay).
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = _("Authenticator-App")
        verbose_name_plural = _("Authenticator-Apps")

    @classmethod
    def create_for(cls, user: User, *, name: str, confirmed: bool) -> AuthenticatorDevice:
        """A new device with a fresh random secret, encrypted before it is stored."""
        if user.data_key is None:
            user.data_key = vault.create_data_key()
            user.save(update_fields=["data_key"])
        with transaction.atomic():
            # Saved first: the row id is bound into the ciphertext (django-otp needs int ids).
            device = cls.objects.create(user=user, name=name, confirmed=confirmed)
            device.key = random_hex(20)
            device.save(update_fields=["key_encrypted"])
        return device

    def _encryption_args(self) -> dict[str, Any]:
        return {"table": self._meta.db_table, "row": self.pk, "field": "key"}

    @property
    def key(self) -> str:
        """The secret as hex, decrypted on use."""
        user: Any = self.user
        return vault.decrypt(user.data_key, self.key_encrypted, **self._encryption_args())

    @key.setter
    def key(self, hex_key: str) -> None:
        user: Any = self.user
        self.key_encrypted = vault.encrypt(user.data_key, hex_key, **self._encryption_args())

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(self.key)

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1))

    def totp(self) -> TOTP:
        return TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)

    def verify_token(self, token: str) -> bool:
        # As django-otp's TOTPDevice.verify_token.
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            number = int(token)
        except (TypeError, ValueError):
            verified = False
        else:
            totp = self.totp()
            totp.time = clock.now()
            verified = totp.verify(number, self.tolerance, self.last_t + 1)
            if verified:
                self.last_t = totp.t()
                self.drift = totp.drift
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    @property
    def config_url(self) -> str:
        """The otpauth:// address an authenticator app reads from the QR code."""
        issuer = str(getattr(settings, "OTP_TOTP_ISSUER", "Dienstweg")).replace(":", "")
        label = f"{issuer}:{self.user.get_username()}"
        params = urlencode(
            {
                "secret": b32encode(self.bin_key).decode(),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        return f"otpauth://totp/{quote(label)}?{params}&issuer={quote(issuer)}"

    @property
    def secret_base32(self) -> str:
        return b32encode(self.bin_key).decode()


class BackupCodeDevice(ThrottlingMixin, Device):
    """One-time backup codes, stored only as keyed hashes (django-otp's are plain text)."""

    class Meta(Device.Meta):
        verbose_name = _("Backup-Codes")
        verbose_name_plural = _("Backup-Codes")

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1))

    def verify_token(self, token: str) -> bool:
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        with transaction.atomic():
            # Deleting is the claim: of two requests with the same code only one deletes it.
            used, _deleted = BackupCode.objects.filter(
                device=self, code_hash=hash_backup_code(token)
            ).delete()
        if used:
            self.throttle_reset()
            return True
        self.throttle_increment()
        return False


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="backup_code_unique")
        ]

    def __str__(self) -> str:
        return "••••"  # nothing to show: only the hash is stored


def hash_link_token(token: str) -> str:
    """The stored form of an enrolment link's token. The token holds 256 random bits, so a
    plain SHA-256 cannot be guessed back from a stolen database."""
    return hashlib.sha256(token.encode()).hexdigest()


class EnrolmentLink(models.Model):
    """A single-use link, sent to the person's own address, where she sets up her access:
    her password and her second factor. Only the hash of its token is stored."""

    class Purpose(models.TextChoices):
        # A new account, or a reset of password and second factor: she chooses a password.
        ENROL = "enrol", _("Passwort festlegen und zweiten Faktor einrichten")
        # A lost second factor: she confirms the password she has and sets up a new factor.
        REPLACE_FACTOR = "replace_factor", _("Mit Passwort einen neuen zweiten Faktor einrichten")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrolment_links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    purpose = models.CharField(_("Zweck"), max_length=20, choices=Purpose.choices)
    # None: issued by the platform itself (a management command, the demo).
    issued_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("ausgestellt am"), default=timezone.now)
    expires_at = models.DateTimeField(_("gültig bis"))
    used_at = models.DateTimeField(_("verwendet am"), null=True, blank=True)
    # A newer link for the same account voids this one, and so do too many wrong passwords.
    voided_at = models.DateTimeField(_("ungültig gemacht am"), null=True, blank=True)
    password_failures = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("Einrichtungslink")
        verbose_name_plural = _("Einrichtungslinks")
        indexes = [models.Index(fields=["user", "-created_at"], name="enrolment_link_user_idx")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} {self.pk}"

    def is_open(self, now: datetime) -> bool:
        """Neither used, nor replaced by a newer link, nor expired at NOW."""
        return self.used_at is None and self.voided_at is None and now < self.expires_at
