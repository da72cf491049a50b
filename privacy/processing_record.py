"""The record of processing activities (GDPR Art. 30), generated from what the platform
itself knows: its agencies (the controllers), purposes and their legal bases, the data
categories, the categories of data subjects, the recipients, the retention periods from the
settings and the technical and organisational measures (Art. 32) the code carries out.

Counts come from aggregate queries: the record costs the same few queries however many
families, referrals and consents there are. No family is named in it.

The JSON form (`as_json`, format "dienstweg.processing_record.v1"):

    format, generated_at
    controllers       [{kind, label, agencies: [{name, rechtskreis, rechtskreis_label,
                        address[], email, phone, dpo: {name, email, phone, address}}]}]
    purposes          [{code, label, legal_bases[]}]
    data_categories   [{code, label, special_category}]
    data_subjects     [{code, label, count}]
    recipients        [{kind, label, agencies: [{name, referrals, application_tags,
                        consents}]}]
    retention         [{code, label, period, value, unit}]
    measures          [{code, text}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from applications.models import ApplicationTag
from audit import retention
from dienstweg.models import (
    Agency,
    Consent,
    DataCategory,
    Family,
    HouseholdMember,
    Location,
    Purpose,
    User,
)
from referrals.models import Referral

FORMAT = "dienstweg.processing_record.v1"
SPECIAL_CATEGORIES = frozenset({DataCategory.HEALTH, DataCategory.ADDICTION})


@dataclass(frozen=True)
class Controller:
    name: str
    rechtskreis: str
    rechtskreis_label: str
    # Art. 30(1)(a): the controller's contact and its DPO's, from the directory.
    address: tuple[str, ...] = ()
    email: str = ""
    phone: str = ""
    dpo_name: str = ""
    dpo_email: str = ""
    dpo_phone: str = ""
    dpo_address: str = ""


@dataclass(frozen=True)
class ControllerGroup:
    kind: str
    label: str
    agencies: list[Controller]


@dataclass(frozen=True)
class PurposeEntry:
    code: str
    label: str
    legal_bases: list[str]


@dataclass(frozen=True)
class CategoryEntry:
    code: str
    label: str
    special: bool


@dataclass(frozen=True)
class SubjectEntry:
    code: str
    label: str
    count: int


@dataclass(frozen=True)
class Recipient:
    name: str
    referrals: int
    application_tags: int
    consents: int


@dataclass(frozen=True)
class RecipientGroup:
    kind: str
    label: str
    agencies: list[Recipient]


@dataclass(frozen=True)
class RetentionEntry:
    code: str
    label: str
    period: str
    value: int | None
    unit: str


@dataclass(frozen=True)
class Measure:
    code: str
    text: str


@dataclass(frozen=True)
class ProcessingRecord:
    generated_at: datetime
    controllers: list[ControllerGroup] = field(default_factory=list)
    purposes: list[PurposeEntry] = field(default_factory=list)
    categories: list[CategoryEntry] = field(default_factory=list)
    subjects: list[SubjectEntry] = field(default_factory=list)
    recipients: list[RecipientGroup] = field(default_factory=list)
    retention: list[RetentionEntry] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The documented JSON structure (module docstring)."""
        return {
            "format": FORMAT,
            "generated_at": self.generated_at.isoformat(),
            "controllers": [
                {
                    "kind": group.kind,
                    "label": group.label,
                    "agencies": [
                        {
                            "name": a.name,
                            "rechtskreis": a.rechtskreis,
                            "rechtskreis_label": a.rechtskreis_label,
                            "address": list(a.address),
                            "email": a.email,
                            "phone": a.phone,
                            "dpo": {
                                "name": a.dpo_name,
                                "email": a.dpo_email,
                                "phone": a.dpo_phone,
                                "address": a.dpo_address,
                            },
                        }
                        for a in group.agencies
                    ],
                }
                for group in self.controllers
            ],
            "purposes": [
                {"code": p.code, "label": p.label, "legal_bases": p.legal_bases}
                for p in self.purposes
            ],
            "data_categories": [
                {"code": c.code, "label": c.label, "special_category": c.special}
                for c in self.categories
            ],
            "data_subjects": [
                {"code": s.code, "label": s.label, "count": s.count} for s in self.subjects
            ],
            "recipients": [
                {
                    "kind": group.kind,
                    "label": group.label,
                    "agencies": [
                        {
                            "name": r.name,
                            "referrals": r.referrals,
                            "application_tags": r.application_tags,
                            "consents": r.consents,
                        }
                        for r in group.agencies
                    ],
                }
                for group in self.recipients
            ],
            "retention": [
                {
                    "code": r.code,
                    "label": r.label,
                    "period": r.period,
                    "value": r.value,
                    "unit": r.unit,
                }
                for r in self.retention
            ],
            "measures": [{"code": m.code, "text": m.text} for m in self.measures],
        }


def build_processing_record(*, now: datetime | None = None) -> ProcessingRecord:
    """The Art. 30 record as the platform stands now (a fixed number of queries)."""
    agencies = list(
        Agency.objects.order_by("kind", "name").values(
            "pk",
            "name",
            "kind",
            "rechtskreis",
            "email",
            "public_phone",
            "dpo_name",
            "dpo_email",
            "dpo_phone",
            "dpo_address",
        )
    )
    addresses: dict[int, tuple[str, ...]] = {}
    for agency_id, street, postal_code, city in Location.objects.order_by(
        "agency_id", "id"
    ).values_list("agency_id", "street", "postal_code", "city"):
        addresses.setdefault(agency_id, (street, f"{postal_code} {city}".strip()))
    return ProcessingRecord(
        generated_at=timezone.localtime(now),
        controllers=_controllers(agencies, addresses),
        purposes=purposes(),
        categories=[
            CategoryEntry(code, str(label), code in SPECIAL_CATEGORIES)
            for code, label in DataCategory.choices
        ],
        subjects=_subjects(),
        recipients=_recipients(agencies),
        retention=retention_periods(),
        measures=measures(),
    )


def _controllers(
    agencies: Sequence[Mapping[str, Any]], addresses: Mapping[int, tuple[str, ...]]
) -> list[ControllerGroup]:
    groups = []
    for kind, label in Agency.Kind.choices:
        members = [
            Controller(
                a["name"],
                a["rechtskreis"],
                str(Agency.Rechtskreis(a["rechtskreis"]).label)
                if a["rechtskreis"] in Agency.Rechtskreis.values
                else a["rechtskreis"],
                address=tuple(line for line in addresses.get(a["pk"], ()) if line),
                email=a["email"],
                phone=a["public_phone"],
                dpo_name=a["dpo_name"],
                dpo_email=a["dpo_email"],
                dpo_phone=a["dpo_phone"],
                dpo_address=a["dpo_address"],
            )
            for a in agencies
            if a["kind"] == kind
        ]
        if members:
            groups.append(ControllerGroup(kind, str(label), members))
    return groups


def purposes() -> list[PurposeEntry]:
    """Each purpose with its legal bases; a referral may also rest on the legal bases of
    referrals.models.Referral.Basis (child protection, statutory transmission)."""
    consent = _("Einwilligung: Art. 6 Abs. 1 lit. a und Art. 9 Abs. 2 lit. a DSGVO, § 67b SGB X")
    entries = []
    for code, label in Purpose.choices:
        bases = [consent]
        if code == Purpose.REFERRAL:
            bases += [
                str(basis.label) for basis in Referral.Basis if basis != Referral.Basis.CONSENT
            ]
        entries.append(PurposeEntry(code, str(label), bases))
    entries.append(
        PurposeEntry(
            "audit",
            _("Protokollierung der Zugriffe und Datensicherheit"),
            [_("Art. 5 Abs. 2, Art. 6 Abs. 1 lit. c und Art. 32 DSGVO, § 78a SGB X")],
        )
    )
    return entries


def _subjects() -> list[SubjectEntry]:
    members = dict(
        HouseholdMember.objects.filter(family__erased_at__isnull=True)
        .order_by()
        .values("kind")
        .annotate(count=Count("id"))
        .values_list("kind", "count")
    )
    families = Family.objects.aggregate(
        held=Count("id", filter=Q(erased_at__isnull=True)),
    )["held"]
    subjects = [SubjectEntry("families", _("Familien (Haushalte)"), families)]
    subjects += [
        SubjectEntry(kind, str(label), members.get(kind, 0))
        for kind, label in HouseholdMember.Kind.choices
    ]
    subjects.append(
        SubjectEntry(
            "staff",
            _("Beschäftigte der Einrichtungen (Konten)"),
            User.objects.filter(is_active=True).count(),
        )
    )
    return subjects


def _recipients(agencies: Sequence[Mapping[str, Any]]) -> list[RecipientGroup]:
    """Agencies that received referrals or application tags, or are named in consents."""
    referrals = dict(
        Referral.objects.filter(sent_at__isnull=False)
        .order_by()
        .values("to_agency_id")
        .annotate(count=Count("id"))
        .values_list("to_agency_id", "count")
    )
    tags = dict(
        ApplicationTag.objects.order_by()
        .values("processing_agency_id")
        .annotate(count=Count("id"))
        .values_list("processing_agency_id", "count")
    )
    named = dict(
        Consent.objects.filter(recipients__isnull=False)
        .order_by()
        .values("recipients")
        .annotate(count=Count("id"))
        .values_list("recipients", "count")
    )
    groups = []
    for kind, label in Agency.Kind.choices:
        members = [
            Recipient(
                a["name"],
                referrals.get(a["pk"], 0),
                tags.get(a["pk"], 0),
                named.get(a["pk"], 0),
            )
            for a in agencies
            if a["kind"] == kind and (a["pk"] in referrals or a["pk"] in tags or a["pk"] in named)
        ]
        if members:
            groups.append(RecipientGroup(kind, str(label), members))
    return groups


def retention_periods() -> list[RetentionEntry]:
    """The retention periods as configured (config/settings.py, DIENSTWEG_* variables);
    the trail's as audit/retention.py words and applies them."""
    closed = settings.RETENTION_CLOSED_CASE_DAYS
    family = settings.RETENTION_FAMILY_DAYS
    trail = [
        ("audit_security", retention.security_days(), "days"),
        ("audit_access", retention.access_years(), "calendar_years"),
        ("audit_seals", None, ""),
    ]
    return [
        *(
            RetentionEntry(code, label, period, value, unit)
            for (code, value, unit), (label, period) in zip(
                trail, retention.describe(), strict=True
            )
        ),
        RetentionEntry(
            "closed_cases",
            _(
                "Abgeschlossene Vermittlungen, entschiedene Anträge und ihre Unterhaltungen; "
                "ruhende Direktnachrichten"
            ),
            ngettext("%(n)d Tag nach dem Abschluss", "%(n)d Tage nach dem Abschluss", closed)
            % {"n": closed},
            closed,
            "days",
        ),
        RetentionEntry(
            "families",
            _("Familien ohne offenen Vorgang und ohne gültige Einwilligung"),
            ngettext(
                "%(n)d Tag nach der letzten Aktivität, dann Löschung wie auf Antrag",
                "%(n)d Tage nach der letzten Aktivität, dann Löschung wie auf Antrag",
                family,
            )
            % {"n": family},
            family,
            "days",
        ),
    ]


def measures() -> list[Measure]:
    """Technical and organisational measures (Art. 32 DSGVO), as the code carries them out."""
    idle = int(settings.SESSION_IDLE_TIMEOUT.total_seconds() // 60)
    lifetime = int(settings.SESSION_MAX_LIFETIME.total_seconds() // 3600)
    return [
        Measure(
            "second_factor",
            _(
                "Jedes Konto muss einen zweiten Faktor einrichten (TOTP-App mit "
                "Einmal-Sicherungscodes), bevor es irgendetwas sieht; das gilt auch für "
                "WebSocket-Verbindungen."
            ),
        ),
        Measure(
            "lockout",
            _(
                "Nach %(failures)d fehlgeschlagenen Anmeldungen wird das Konto von dieser "
                "Absenderadresse aus vorübergehend gesperrt, nach jedem weiteren Fehlversuch "
                "länger (bis zu %(longest)d Minuten); Passwörter werden mit Argon2 "
                "gespeichert."
            )
            % {
                "failures": settings.LOGIN_LOCKOUT_FAILURES,
                "longest": int(settings.LOGIN_LOCKOUT_MAX_DELAY.total_seconds() // 60),
            },
        ),
        Measure(
            "sessions",
            _(
                "Sitzungen enden nach %(idle)d Minuten ohne Aktivität und spätestens nach "
                "%(lifetime)d Stunden."
            )
            % {"idle": idle, "lifetime": lifetime},
        ),
        Measure(
            "object_permissions",
            _(
                "Zugriffsrechte werden je Objekt vergeben (Vermittlung, Antrag, Unterhaltung): "
                "eine Stelle sieht nur, was ihr übermittelt oder zugewiesen wurde."
            ),
        ),
        Measure(
            "consent_gate",
            _(
                "Vor jeder Übermittlung und jedem Zugriff einer anderen Stelle prüft die "
                "Plattform, ob die Einwilligung der Familie Empfänger, Datenkategorien und Zweck "
                "an diesem Tag abdeckt; Widerruf und Ablauf entziehen den Zugriff sofort."
            ),
        ),
        Measure(
            "encryption",
            _(
                "Personenbezogene Daten werden mit AES-256-GCM verschlüsselt gespeichert "
                "(Umschlagverschlüsselung mit einem Datenschlüssel je Familie, an Tabelle, Zeile "
                "und Feld gebunden); die Hauptschlüssel sind versioniert und können rotiert "
                "werden."
            ),
        ),
        Measure(
            "crypto_shredding",
            _(
                "Beim Löschen einer Familie wird ihr Datenschlüssel vernichtet: jede Kopie "
                "ihrer Daten wird unlesbar. Sicherungen der Datenbank enthalten keine "
                "Datenschlüssel; diese werden getrennt gesichert und nach einer kurzen Frist "
                "entfernt, danach ist die Familie in keiner Sicherung mehr lesbar. Wird vorher "
                "eine ältere Sicherung zurückgespielt, löscht die Plattform die Familie nach "
                "dem Löschregister, das außerhalb der Datenbank geführt wird, erneut, bevor "
                "sie startet."
            ),
        ),
        Measure(
            "blind_index",
            _(
                "Die Dublettenprüfung (Name und Geburtsdatum) nutzt einen Blindindex (HMAC mit "
                "eigenem Schlüssel); Klartext gelangt nicht in die Datenbank."
            ),
        ),
        Measure(
            "audit_trail",
            _(
                "Jeder Zugriff und jede Übermittlung wird im selben Datenbankvorgang "
                "protokolliert; das Protokoll ist durch die Datenbank gegen Ändern und Löschen "
                "gesperrt, wird in Blöcken mit Ed25519 signiert versiegelt und lässt sich "
                "jederzeit prüfen."
            ),
        ),
        Measure(
            "channel_layer",
            _(
                "Nachrichten werden verschlüsselt in der Datenbank gespeichert, bevor sie in "
                "Echtzeit zugestellt werden; im Betrieb mit Redis läuft die Zustellung nur "
                "verschlüsselt über Redis."
            ),
        ),
        Measure(
            "headers",
            _(
                "Jede Seite wird mit strenger Content-Security-Policy, ohne Zwischenspeicherung "
                "und im Betrieb nur über HTTPS mit HSTS ausgeliefert."
            ),
        ),
        Measure(
            "dpo_metadata",
            _(
                "Die Datenschutzbeauftragte sieht nur Metadaten des Protokolls, keine "
                "Falldaten; ihre eigenen Zugriffe werden ebenfalls protokolliert."
            ),
        ),
    ]
