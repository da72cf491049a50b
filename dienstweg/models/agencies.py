"""Agencies with their memberships, and the network directory (after Open Referral HSDS)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg.models.accounts import User


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
    # The agency as controller (GDPR Art. 13(1)(b), 15, 30(1)(a)): whom a family writes to
    # about its data. Named in the Art. 15 report and the record of processing activities.
    dpo_name = models.CharField(_("Datenschutzbeauftragte/r"), max_length=150, blank=True)
    dpo_email = models.EmailField(_("E-Mail der/des Datenschutzbeauftragten"), blank=True)
    dpo_phone = models.CharField(
        _("Telefon der/des Datenschutzbeauftragten"), max_length=40, blank=True
    )
    dpo_address = models.CharField(
        _("Anschrift der/des Datenschutzbeauftragten"),
        max_length=200,
        blank=True,
        help_text=_("Nur wenn sie nicht die Anschrift der Einrichtung ist."),
    )

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


# Social benefit agencies and authorities: the only recipients of a transmission under
# § 69 SGB X, and the offices that process the applications a project tags.
PUBLIC_KINDS = frozenset(
    {
        Agency.Kind.JOBCENTER,
        Agency.Kind.JUGENDAMT,
        Agency.Kind.SOZIALAMT,
        Agency.Kind.FAMILIENKASSE,
        Agency.Kind.BUT_OFFICE,
    }
)


class Membership(models.Model):
    """A user's place in an agency, with her role there."""

    class Role(models.TextChoices):
        COACH = "coach", _("Coach")
        CASEWORKER = "caseworker", _("Fallbearbeitung")
        LEAD = "lead", _("Leitung")
        DPO = "dpo", _("Datenschutzbeauftragte/r")
        NETWORK_DPO = "network_dpo", _("Datenschutzbeauftragte/r des Verbunds")
        # The network's steering group: the Strukturkonferenz report, anonymised, of the
        # whole network; no family, no case (conferences/report.py).
        STEERING = "steering", _("Steuerungsgruppe")
        ADMIN = "admin", _("Administration")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("Rolle"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The confirmed proposal behind the role, if any: a case or dpo role without one was made
    # by the platform itself (demo data, a command) or past the actions (the console shows it).
    granted_through = models.ForeignKey(
        "MembershipProposal",
        verbose_name=_("bestätigt durch Vorschlag"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("Mitgliedschaft")
        verbose_name_plural = _("Mitgliedschaften")
        constraints = [
            models.UniqueConstraint(fields=["user", "agency"], name="membership_once_per_agency")
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.agency} ({self.get_role_display()})"


class MembershipProposal(models.Model):
    """A membership with a case or dpo role that an admin proposed and a second person must
    confirm (four-eyes principle). It grants nothing while pending: no membership row, no
    agency group, so every access rule that reads memberships stays closed."""

    class State(models.TextChoices):
        PENDING = "pending", _("offen")
        CONFIRMED = "confirmed", _("bestätigt")
        REFUSED = "refused", _("abgelehnt")
        WITHDRAWN = "withdrawn", _("zurückgezogen")
        EXPIRED = "expired", _("abgelaufen")

    user = models.ForeignKey(
        User,
        verbose_name=_("Person"),
        on_delete=models.CASCADE,
        related_name="membership_proposals",
    )
    agency = models.ForeignKey(
        Agency,
        verbose_name=_("Einrichtung"),
        on_delete=models.CASCADE,
        related_name="membership_proposals",
    )
    role = models.CharField(_("Rolle"), max_length=20, choices=Membership.Role.choices)
    proposed_by = models.ForeignKey(
        User,
        verbose_name=_("vorgeschlagen von"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    proposed_at = models.DateTimeField(_("vorgeschlagen am"), default=timezone.now)
    state = models.CharField(
        _("Stand"), max_length=20, choices=State.choices, default=State.PENDING
    )
    decided_by = models.ForeignKey(
        User,
        verbose_name=_("entschieden von"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("entschieden am"), null=True, blank=True)

    class Meta:
        verbose_name = _("Rollenvorschlag")
        verbose_name_plural = _("Rollenvorschläge")
        constraints = [
            # One open question per person and agency: a second proposal waits for the first.
            models.UniqueConstraint(
                fields=["user", "agency"],
                condition=models.Q(state="pending"),
                name="one_pending_proposal_per_membership",
            )
        ]
        indexes = [
            # A lead's start page: the pending proposals of her agencies.
            models.Index(fields=["agency", "state"], name="proposal_agency_state"),
            # The console's list of grants: confirmed ones, newest decision first.
            models.Index(fields=["state", "-decided_at", "-id"], name="proposal_decided"),
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.agency} ({self.get_role_display()})"

    @property
    def is_pending(self) -> bool:
        return self.state == self.State.PENDING


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
