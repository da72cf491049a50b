"""Tables of the platform core: staff accounts and their sessions and second factor,
agencies with their memberships, and the network directory (after Open Referral HSDS)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, Group, PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin


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


class Checked(models.Model):
    """When a directory entry was last confirmed to be right, and by whom (HSDS assured_date)."""

    checked_on = models.DateField(_("zuletzt geprüft am"), null=True, blank=True)
    checked_by = models.ForeignKey(
        User,
        verbose_name=_("geprüft von"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        abstract = True


class Agency(Checked):
    """An organisation in the network (HSDS organization): authority, project or partner."""

    class Kind(models.TextChoices):
        JOBCENTER = "jobcenter", _("Jobcenter")
        JUGENDAMT = "jugendamt", _("Jugendamt")
        SOZIALAMT = "sozialamt", _("Sozialamt")
        FAMILIENKASSE = "familienkasse", _("Familienkasse")
        BUT_OFFICE = "but_office", _("BuT-Stelle")
        PROJECT = "project", _("Projekt")
        PARTNER = "partner", _("Partnerorganisation")

    class Rechtskreis(models.TextChoices):
        SGB_II = "sgb_ii", "SGB II"
        SGB_III = "sgb_iii", "SGB III"
        SGB_VIII = "sgb_viii", "SGB VIII"
        SGB_IX = "sgb_ix", "SGB IX"
        SGB_XII = "sgb_xii", "SGB XII"
        OTHER = "other", _("anderer")

    name = models.CharField(_("Name"), max_length=200, unique=True)
    kind = models.CharField(_("Art"), max_length=20, choices=Kind.choices)
    rechtskreis = models.CharField(_("Rechtskreis"), max_length=10, choices=Rechtskreis.choices)
    description = models.TextField(_("Beschreibung"), blank=True)
    email = models.EmailField(_("E-Mail"), blank=True)
    website = models.URLField(_("Website"), blank=True)
    public_phone = models.CharField(_("Telefon (öffentlich)"), max_length=40, blank=True)
    golden_phone = models.CharField(
        _("Goldene Telefonnummer"),
        max_length=40,
        blank=True,
        help_text=_("Netzwerkinterne Durchwahl; nur für Mitglieder des Netzwerks sichtbar."),
    )
    group = models.OneToOneField(Group, on_delete=models.PROTECT, editable=False)

    class Meta:
        verbose_name = _("Einrichtung")
        verbose_name_plural = _("Einrichtungen")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def main_location(self) -> Location | None:
        locations = list(self.locations.all())  # prefetched on list pages
        return locations[0] if locations else None


class Membership(models.Model):
    """A user's place in an agency, with her role there."""

    class Role(models.TextChoices):
        COACH = "coach", _("Coach")
        CASEWORKER = "caseworker", _("Fallbearbeitung")
        LEAD = "lead", _("Leitung")
        DPO = "dpo", _("Datenschutzbeauftragte/r")
        ADMIN = "admin", _("Administration")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("Rolle"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("Mitgliedschaft")
        verbose_name_plural = _("Mitgliedschaften")
        constraints = [
            models.UniqueConstraint(fields=["user", "agency"], name="membership_once_per_agency")
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.agency} ({self.get_role_display()})"


class Location(models.Model):
    """Where an agency receives people (HSDS location with its physical address)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(_("Bezeichnung"), max_length=200, blank=True)
    street = models.CharField(_("Straße und Hausnummer"), max_length=200)
    postal_code = models.CharField(_("PLZ"), max_length=10)
    city = models.CharField(_("Ort"), max_length=100)
    accessibility = models.CharField(_("Barrierefreiheit"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("Standort")
        verbose_name_plural = _("Standorte")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.street}, {self.postal_code} {self.city}"


class Service(Checked):
    """What an agency offers, for whom and when (HSDS service with its schedule)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="services")
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="services"
    )
    name = models.CharField(_("Angebot"), max_length=200)
    description = models.TextField(_("Beschreibung"), blank=True)
    audience = models.CharField(_("Für wen"), max_length=300, blank=True)
    rechtskreis = models.CharField(
        _("Rechtskreis"), max_length=10, choices=Agency.Rechtskreis.choices, blank=True
    )
    opening_hours = models.CharField(_("Öffnungszeiten"), max_length=300, blank=True)
    languages = models.CharField(
        _("Sprachen"), max_length=200, blank=True, help_text=_("Durch Kommas getrennt")
    )
    accepts_new_families = models.BooleanField(_("nimmt neue Familien auf"), default=True)

    class Meta:
        verbose_name = _("Angebot")
        verbose_name_plural = _("Angebote")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def language_list(self) -> list[str]:
        return [lang.strip() for lang in self.languages.split(",") if lang.strip()]


class Contact(Checked):
    """A contact person at an agency (HSDS contact) with her network-internal direct number."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="contacts")
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    name = models.CharField(_("Name"), max_length=150)
    title = models.CharField(_("Funktion"), max_length=150, blank=True)
    department = models.CharField(_("Abteilung"), max_length=150, blank=True)
    email = models.EmailField(_("E-Mail"), blank=True)
    direct_phone = models.CharField(_("Durchwahl (goldene Nummer)"), max_length=40, blank=True)
    hours = models.CharField(_("Erreichbarkeit"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("Ansprechperson")
        verbose_name_plural = _("Ansprechpersonen")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
