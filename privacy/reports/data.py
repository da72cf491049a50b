"""The access report a family may demand under GDPR Art. 15: which data categories the
platform holds about it, which agencies received what and when on which consent, and when
and for what purpose which agency consulted its data.

Built from metadata only (plain columns and the trail), never from an encrypted field: no
name, address, summary, snapshot, file number or message body can reach the report, and the
report of an erased family is built the same way from its tombstone, the trail and what was
kept. Staff names appear only when the DPO asks for them (CJEU C-579/21). A fixed number of
queries however long the trail: consultations are grouped in the database.

The JSON form (`as_json`, format "dienstweg.access_report.v1") is stable:

    format            "dienstweg.access_report.v1"
    generated_at      ISO 8601 with offset
    family            {reference, owner, owner_kind, registered_on, restricted_since,
                       erased_on}   (dates ISO 8601 or null)
    staff_names       true if consultations name the staff member
    categories        [{code, label, special_category, sources[]}]  sources: "household",
                      "consent", "referral"
    household         [{kind, label, count}]          members by kind, no names
    consents          [{id, valid_from, valid_until, state, revoked_on, recipients[],
                       categories[], purposes[]}]
    recipients        {referrals: [{id, from_agency, to_agency, to_agency_kind, sent_at,
                                    state, basis, basis_label, categories[],
                                    consents: [{id, valid_from, valid_until, purposes[]}]}],
                       application_tags: [{processing_agency, processing_agency_kind, kind,
                                           kind_label, submitted_on, state}],
                       conferences: [{starts_at, state, agencies[], categories[],
                                      agreements: [{number, responsible, due_on, state,
                                                    gap_reason}]}],
                       anonymous_consultations: [{asked_on, agencies[], named_to[]}]}
    communication     [{kind, label, threads, messages}]   counts only, never contents
    consultations     [{day, agency, agency_kind, action, action_label, purpose, count,
                        staff?}]   "staff" only when staff_names is true; the DPO's own
                      steps with agency_kind "dpo" and the agency "Datenschutzbeauftragte/r"
    controller        {name, address[], email, phone}   the owning project (Art. 15(1), 13)
    data_protection_officer  {name, email, phone, address}   from the directory
    retention         [{code, label, period}]   as the record of processing activities
    supervisory_authority    the authority to complain to (Art. 77), one line
    rights            [{article, title, text}]   Art. 16-18, 21 and 77, as the family reads them
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Prefetch
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.models import ApplicationTag
from audit import registry
from audit.models import AuditEvent
from conferences.models import (
    Agreement,
    Conference,
    ConsultationRecipient,
    Invitation,
)
from conferences.models import Consultation as CaseConsultation
from dienstweg.audit_actions import (
    FAMILY_KEY_DESTROYED,
    FAMILY_PROCESSING_RESTRICTED,
    FAMILY_RESTRICTION_LIFTED,
)
from dienstweg.models import Agency, Consent, DataCategory, Family, HouseholdMember, Purpose, User
from messaging.models import Thread
from privacy.audit_actions import FAMILY_ERASED
from privacy.processing_record import retention_periods
from referrals.models import Referral

FORMAT = "dienstweg.access_report.v1"
SPECIAL_CATEGORIES = frozenset({DataCategory.HEALTH, DataCategory.ADDICTION})  # Art. 9 DSGVO

SOURCE_LABELS: dict[str, Promise] = {
    "household": gettext_lazy("Haushaltsangaben"),
    "consent": gettext_lazy("Einwilligung"),
    "referral": gettext_lazy("Vermittlung"),
}


# What the data-protection officer herself does about a family: checks, reports, exports,
# restriction and erasure. The report names her role for these, not her home agency: a
# family must not read that the youth office searched for it when its DPO did.
DPO_STEPS = frozenset(
    {FAMILY_ERASED, FAMILY_KEY_DESTROYED, FAMILY_PROCESSING_RESTRICTED, FAMILY_RESTRICTION_LIFTED}
)


def is_dpo_step(action: str) -> bool:
    return action.startswith("console.") or action in DPO_STEPS


def action_label(action: str) -> str:
    """What the action means, for the family reading the report (audit.registry); an action
    no longer declared (an old event) in words too, never its code."""
    if registry.is_declared(action):
        return registry.label(action)
    return _("Sonstiger protokollierter Vorgang")


# The rights a family reads about (Art. 15(1)(e) and (f) GDPR), in plain words.
RIGHTS: tuple[tuple[str, Promise, Promise], ...] = (
    (
        "Art. 16 DSGVO",
        gettext_lazy("Berichtigung"),
        gettext_lazy(
            "Sind Angaben falsch oder unvollständig, können Sie verlangen, dass sie "
            "berichtigt oder ergänzt werden."
        ),
    ),
    (
        "Art. 17 DSGVO",
        gettext_lazy("Löschung"),
        gettext_lazy(
            "Sie können verlangen, dass Ihre Daten gelöscht werden, etwa wenn Sie Ihre "
            "Einwilligung widerrufen und keine andere Rechtsgrundlage besteht."
        ),
    ),
    (
        "Art. 18 DSGVO",
        gettext_lazy("Einschränkung der Verarbeitung"),
        gettext_lazy(
            "Sie können verlangen, dass Ihre Daten nur noch gespeichert, aber nicht "
            "weitergegeben oder sonst verwendet werden, etwa solange die Richtigkeit geprüft wird."
        ),
    ),
    (
        "Art. 21 DSGVO",
        gettext_lazy("Widerspruch"),
        gettext_lazy(
            "Sie können der Verarbeitung aus Gründen, die sich aus Ihrer besonderen Situation "
            "ergeben, widersprechen. Eine Einwilligung können Sie jederzeit für die Zukunft "
            "widerrufen (Art. 7 Abs. 3 DSGVO)."
        ),
    ),
    (
        "Art. 77 DSGVO",
        gettext_lazy("Beschwerde bei der Aufsichtsbehörde"),
        gettext_lazy(
            "Sie können sich bei einer Datenschutz-Aufsichtsbehörde beschweren, wenn Sie "
            "meinen, dass die Verarbeitung Ihrer Daten gegen das Datenschutzrecht verstößt."
        ),
    ),
)


@dataclass(frozen=True)
class Right:
    article: str
    title: str
    text: str


@dataclass(frozen=True)
class ControllerContact:
    """The owning project as controller, with its data-protection officer (directory)."""

    name: str
    address: tuple[str, ...]
    email: str
    phone: str
    dpo_name: str
    dpo_email: str
    dpo_phone: str
    dpo_address: str


@dataclass(frozen=True)
class RetentionLine:
    code: str
    label: str
    period: str


def purpose_label(purpose: str) -> str:
    """The purpose as the trail stores it; the platform's own purpose codes as their label."""
    if purpose in Purpose.values:
        return str(Purpose(purpose).label)
    return purpose


@dataclass(frozen=True)
class HeldCategory:
    code: str
    label: str
    special: bool
    sources: tuple[str, ...]

    @property
    def source_labels(self) -> list[str]:
        return [str(SOURCE_LABELS[source]) for source in self.sources]


@dataclass(frozen=True)
class MemberCount:
    kind: str
    label: str
    count: int


@dataclass(frozen=True)
class ConsentEntry:
    id: str
    valid_from: date
    valid_until: date
    state: str
    state_label: str
    revoked_on: date | None
    recipients: tuple[str, ...]
    categories: tuple[str, ...]
    category_labels: tuple[str, ...]
    purposes: tuple[str, ...]
    purpose_labels: tuple[str, ...]


@dataclass(frozen=True)
class ConsentRef:
    """A consent a transmission relied on."""

    id: str
    valid_from: date
    valid_until: date
    purposes: tuple[str, ...]
    purpose_labels: tuple[str, ...]


@dataclass(frozen=True)
class ReferralEntry:
    id: str
    from_agency: str
    to_agency: str
    to_agency_kind: str
    sent_at: datetime
    state: str
    state_label: str
    basis: str
    basis_label: str
    categories: tuple[str, ...]
    category_labels: tuple[str, ...]
    consents: tuple[ConsentRef, ...]


@dataclass(frozen=True)
class TagEntry:
    processing_agency: str
    processing_agency_kind: str
    kind: str
    kind_label: str
    submitted_on: date
    state: str
    state_label: str


@dataclass(frozen=True)
class AgreementEntry:
    number: int
    responsible: str  # an agency's name, or "die Familie selbst"
    due_on: date
    state: str
    state_label: str
    gap_label: str


@dataclass(frozen=True)
class ConferenceEntry:
    """A Familienkonferenz: when, which agencies were invited (their people's names stay
    out, as for referrals), what was shared, and the agreements."""

    starts_at: datetime
    state_label: str
    agencies: tuple[str, ...]
    category_labels: tuple[str, ...]
    agreements: tuple[AgreementEntry, ...]


@dataclass(frozen=True)
class CaseConsultationEntry:
    """An anonymous case consultation: the agencies asked (without the family's name) and
    those to whom the family was later named, with consent."""

    asked_on: date
    agencies: tuple[str, ...]
    named_to: tuple[str, ...]


@dataclass(frozen=True)
class CommunicationCount:
    kind: str
    label: str
    threads: int
    messages: int


@dataclass(frozen=True)
class Consultation:
    """Events of one agency, one action and one purpose on one local day."""

    day: date
    agency: str
    agency_kind: str
    action: str
    action_label: str
    purpose: str
    purpose_label: str
    count: int
    staff: str | None = None


@dataclass(frozen=True)
class AccessReport:
    generated_at: datetime
    reference: str
    owner: str
    owner_kind: str
    registered_at: datetime
    restricted_at: datetime | None
    erased_at: datetime | None
    staff_names: bool
    categories: list[HeldCategory] = field(default_factory=list)
    household: list[MemberCount] = field(default_factory=list)
    consents: list[ConsentEntry] = field(default_factory=list)
    referrals: list[ReferralEntry] = field(default_factory=list)
    tags: list[TagEntry] = field(default_factory=list)
    conferences: list[ConferenceEntry] = field(default_factory=list)
    case_consultations: list[CaseConsultationEntry] = field(default_factory=list)
    communication: list[CommunicationCount] = field(default_factory=list)
    consultations: list[Consultation] = field(default_factory=list)
    controller: ControllerContact | None = None
    retention: list[RetentionLine] = field(default_factory=list)
    supervisory_authority: str = ""
    rights: list[Right] = field(default_factory=list)

    @property
    def consultation_count(self) -> int:
        return sum(row.count for row in self.consultations)

    def as_json(self) -> dict[str, Any]:
        """The documented JSON structure (module docstring)."""
        return {
            "format": FORMAT,
            "generated_at": self.generated_at.isoformat(),
            "family": {
                "reference": self.reference,
                "owner": self.owner,
                "owner_kind": self.owner_kind,
                "registered_on": _iso_day(self.registered_at),
                "restricted_since": _iso_day(self.restricted_at),
                "erased_on": _iso_day(self.erased_at),
            },
            "staff_names": self.staff_names,
            "categories": [
                {
                    "code": c.code,
                    "label": c.label,
                    "special_category": c.special,
                    "sources": list(c.sources),
                }
                for c in self.categories
            ],
            "household": [
                {"kind": m.kind, "label": m.label, "count": m.count} for m in self.household
            ],
            "consents": [
                {
                    "id": c.id,
                    "valid_from": c.valid_from.isoformat(),
                    "valid_until": c.valid_until.isoformat(),
                    "state": c.state,
                    "revoked_on": c.revoked_on.isoformat() if c.revoked_on else None,
                    "recipients": list(c.recipients),
                    "categories": list(c.categories),
                    "purposes": list(c.purposes),
                }
                for c in self.consents
            ],
            "recipients": {
                "referrals": [
                    {
                        "id": r.id,
                        "from_agency": r.from_agency,
                        "to_agency": r.to_agency,
                        "to_agency_kind": r.to_agency_kind,
                        "sent_at": timezone.localtime(r.sent_at).isoformat(),
                        "state": r.state,
                        "basis": r.basis,
                        "basis_label": r.basis_label,
                        "categories": list(r.categories),
                        "consents": [
                            {
                                "id": c.id,
                                "valid_from": c.valid_from.isoformat(),
                                "valid_until": c.valid_until.isoformat(),
                                "purposes": list(c.purposes),
                            }
                            for c in r.consents
                        ],
                    }
                    for r in self.referrals
                ],
                "application_tags": [
                    {
                        "processing_agency": t.processing_agency,
                        "processing_agency_kind": t.processing_agency_kind,
                        "kind": t.kind,
                        "kind_label": t.kind_label,
                        "submitted_on": t.submitted_on.isoformat(),
                        "state": t.state,
                    }
                    for t in self.tags
                ],
                "conferences": [
                    {
                        "starts_at": timezone.localtime(c.starts_at).isoformat(),
                        "state": c.state_label,
                        "agencies": list(c.agencies),
                        "categories": list(c.category_labels),
                        "agreements": [
                            {
                                "number": a.number,
                                "responsible": a.responsible,
                                "due_on": a.due_on.isoformat(),
                                "state": a.state,
                                "gap_reason": a.gap_label or None,
                            }
                            for a in c.agreements
                        ],
                    }
                    for c in self.conferences
                ],
                "anonymous_consultations": [
                    {
                        "asked_on": c.asked_on.isoformat(),
                        "agencies": list(c.agencies),
                        "named_to": list(c.named_to),
                    }
                    for c in self.case_consultations
                ],
            },
            "communication": [
                {"kind": c.kind, "label": c.label, "threads": c.threads, "messages": c.messages}
                for c in self.communication
            ],
            "consultations": [_consultation_json(c, self.staff_names) for c in self.consultations],
            "controller": _controller_json(self.controller),
            "data_protection_officer": _dpo_json(self.controller),
            "retention": [
                {"code": r.code, "label": r.label, "period": r.period} for r in self.retention
            ],
            "supervisory_authority": self.supervisory_authority,
            "rights": [
                {"article": r.article, "title": r.title, "text": r.text} for r in self.rights
            ],
        }


def _controller_json(controller: ControllerContact | None) -> dict[str, Any] | None:
    if controller is None:
        return None
    return {
        "name": controller.name,
        "address": list(controller.address),
        "email": controller.email,
        "phone": controller.phone,
    }


def _dpo_json(controller: ControllerContact | None) -> dict[str, Any] | None:
    if controller is None:
        return None
    return {
        "name": controller.dpo_name,
        "email": controller.dpo_email,
        "phone": controller.dpo_phone,
        "address": controller.dpo_address,
    }


def _consultation_json(row: Consultation, staff_names: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "day": row.day.isoformat(),
        "agency": row.agency or None,
        "agency_kind": row.agency_kind or None,
        "action": row.action,
        "action_label": row.action_label,
        "purpose": row.purpose,
        "count": row.count,
    }
    if staff_names:
        data["staff"] = row.staff
    return data


def _iso_day(moment: datetime | None) -> str | None:
    return timezone.localdate(moment).isoformat() if moment else None


def build_access_report(
    family: Family, *, staff_names: bool = False, now: datetime | None = None
) -> AccessReport:
    """The Art. 15 report of FAMILY (with `owner` selected), from metadata and the trail.
    Staff names only with `staff_names` (the DPO decides, CJEU C-579/21)."""
    household = _household(family)
    consents = list(
        Consent.objects.filter(family=family)
        .order_by("valid_from", "recorded_at", "id")
        .prefetch_related(Prefetch("recipients", queryset=Agency.objects.order_by("name")))
    )
    # Every referral holds data (a draft too); only those sent reached another agency.
    referrals = list(
        Referral.objects.filter(family=family)
        .select_related("from_agency", "to_agency")
        .prefetch_related(
            Prefetch("consents", queryset=Consent.objects.order_by("valid_from", "id"))
        )
        .order_by("sent_at", "created_at", "id")
    )
    tags = list(
        ApplicationTag.objects.filter(family=family)
        .select_related("processing_agency")
        .order_by("submitted_on", "created_at", "id")
    )
    today = timezone.localdate(now)
    return AccessReport(
        generated_at=timezone.localtime(now),
        reference=family.reference,
        owner=family.owner.name,
        owner_kind=family.owner.kind,
        registered_at=family.registered_at,
        restricted_at=family.restricted_at,
        erased_at=family.erased_at,
        staff_names=staff_names,
        categories=_categories(household, consents, referrals, erased=family.is_erased),
        household=household,
        consents=[_consent_entry(c, today) for c in consents],
        referrals=[_referral_entry(r, r.sent_at) for r in referrals if r.sent_at is not None],
        tags=[_tag_entry(t) for t in tags],
        conferences=_conferences(family),
        case_consultations=_case_consultations(family),
        communication=_communication(family),
        consultations=consultations(family, staff_names=staff_names),
        controller=controller_contact(family.owner),
        retention=[RetentionLine(r.code, r.label, r.period) for r in retention_periods()],
        supervisory_authority=settings.DIENSTWEG_SUPERVISORY_AUTHORITY,
        rights=[Right(article, str(title), str(text)) for article, title, text in RIGHTS],
    )


def controller_contact(agency: Agency) -> ControllerContact:
    """AGENCY as controller with its first location and its DPO, from the directory (one
    query for the location)."""
    location = agency.locations.order_by("id").first()
    address = (location.street, f"{location.postal_code} {location.city}") if location else ()
    return ControllerContact(
        name=agency.name,
        address=tuple(line for line in address if line.strip()),
        email=agency.email,
        phone=agency.public_phone,
        dpo_name=agency.dpo_name,
        dpo_email=agency.dpo_email,
        dpo_phone=agency.dpo_phone,
        dpo_address=agency.dpo_address,
    )


def _household(family: Family) -> list[MemberCount]:
    counts = dict(
        HouseholdMember.objects.filter(family=family)
        .order_by()
        .values("kind")
        .annotate(count=Count("id"))
        .values_list("kind", "count")
    )
    return [
        MemberCount(kind, str(label), counts[kind])
        for kind, label in HouseholdMember.Kind.choices
        if counts.get(kind)
    ]


def _categories(
    household: list[MemberCount],
    consents: list[Consent],
    referrals: list[Referral],
    *,
    erased: bool,
) -> list[HeldCategory]:
    """The categories the records name; once erased, those of the metadata kept (an erased
    household's entries are anonymous)."""
    sources: dict[str, list[str]] = {}

    def add(codes: Iterable[str], source: str) -> None:
        for code in codes:
            if code in DataCategory.values and source not in sources.setdefault(code, []):
                sources[code].append(source)

    if household and not erased:  # names, birth dates, address and phone of the household
        add([DataCategory.IDENTITY], "household")
    for consent in consents:
        add(consent.categories, "consent")
    for referral in referrals:
        add(referral.categories, "referral")
    return [
        HeldCategory(code, str(label), code in SPECIAL_CATEGORIES, tuple(sources[code]))
        for code, label in DataCategory.choices
        if code in sources
    ]


def _consent_entry(consent: Consent, today: date) -> ConsentEntry:
    return ConsentEntry(
        id=str(consent.pk),
        valid_from=consent.valid_from,
        valid_until=consent.valid_until,
        state=consent.state_on(today),
        state_label=str(consent.state_on(today).label),
        revoked_on=timezone.localdate(consent.revoked_at) if consent.revoked_at else None,
        recipients=tuple(agency.name for agency in consent.recipients.all()),
        categories=_ordered(consent.categories),
        category_labels=tuple(_labels(DataCategory, _ordered(consent.categories))),
        purposes=tuple(consent.purposes),
        purpose_labels=tuple(_labels(Purpose, consent.purposes)),
    )


def _ordered(codes: Iterable[str]) -> tuple[str, ...]:
    """Data categories in the enumeration's order (rows store them sorted by code)."""
    order = {code: index for index, code in enumerate(DataCategory.values)}
    return tuple(sorted(codes, key=lambda code: (order.get(code, len(order)), code)))


def _labels(choices: type[DataCategory] | type[Purpose], codes: Iterable[str]) -> list[str]:
    return [str(choices(code).label) if code in choices.values else code for code in codes]


def _conferences(family: Family) -> list[ConferenceEntry]:
    """The family's conferences with their invited agencies and agreements (three
    queries whatever their number)."""
    conferences = list(
        Conference.objects.filter(family=family)
        .prefetch_related(
            Prefetch("invitations", queryset=Invitation.objects.select_related("agency")),
            Prefetch("agreements", queryset=Agreement.objects.select_related("agency")),
        )
        .order_by("starts_at", "pk")
    )
    return [
        ConferenceEntry(
            starts_at=conference.starts_at,
            state_label=str(conference.get_state_display()),
            agencies=tuple(sorted({i.agency.name for i in conference.invitations.all()})),
            category_labels=tuple(conference.category_labels()),
            agreements=tuple(
                AgreementEntry(
                    number=agreement.number,
                    responsible=agreement.agency.name
                    if agreement.agency is not None
                    else str(_("die Familie selbst")),
                    due_on=agreement.due_on,
                    state=agreement.state,
                    state_label=str(agreement.get_state_display()),
                    gap_label=str(agreement.get_gap_reason_display())
                    if agreement.gap_reason
                    else "",
                )
                for agreement in conference.agreements.all()
            ),
        )
        for conference in conferences
    ]


def _case_consultations(family: Family) -> list[CaseConsultationEntry]:
    """The family's anonymous case consultations: whom it asked, to whom it was named."""
    rows = CaseConsultation.objects.filter(family=family).prefetch_related(
        Prefetch("recipients", queryset=ConsultationRecipient.objects.select_related("agency"))
    )
    return [
        CaseConsultationEntry(
            asked_on=timezone.localdate(row.created_at),
            agencies=tuple(sorted(r.agency.name for r in row.recipients.all())),
            named_to=tuple(
                sorted(r.agency.name for r in row.recipients.all() if r.reidentified_at)
            ),
        )
        for row in rows.order_by("created_at", "pk")
    ]


def _referral_entry(referral: Referral, sent_at: datetime) -> ReferralEntry:
    return ReferralEntry(
        id=str(referral.pk),
        from_agency=referral.from_agency.name,
        to_agency=referral.to_agency.name,
        to_agency_kind=referral.to_agency.kind,
        sent_at=sent_at,
        state=referral.state,
        state_label=str(Referral.State(referral.state).label),
        basis=referral.basis,
        basis_label=str(Referral.Basis(referral.basis).label),
        categories=_ordered(referral.categories),
        category_labels=tuple(_labels(DataCategory, _ordered(referral.categories))),
        consents=tuple(
            ConsentRef(
                id=str(c.pk),
                valid_from=c.valid_from,
                valid_until=c.valid_until,
                purposes=tuple(c.purposes),
                purpose_labels=tuple(_labels(Purpose, c.purposes)),
            )
            for c in referral.consents.all()
        ),
    )


def _tag_entry(tag: ApplicationTag) -> TagEntry:
    return TagEntry(
        processing_agency=tag.processing_agency.name,
        processing_agency_kind=tag.processing_agency.kind,
        kind=tag.kind,
        kind_label=str(ApplicationTag.Kind(tag.kind).label),
        submitted_on=tag.submitted_on,
        state=tag.state,
        state_label=str(ApplicationTag.State(tag.state).label),
    )


def _communication(family: Family) -> list[CommunicationCount]:
    """Threads about the family and their messages, counted by the database: no message
    row, let alone a body, is read."""
    rows = (
        Thread.objects.filter(family=family)
        .order_by()
        .values("kind")
        .annotate(thread_count=Count("id", distinct=True), message_count=Count("messages"))
    )
    counts = {row["kind"]: row for row in rows}
    return [
        CommunicationCount(
            kind, str(label), counts[kind]["thread_count"], counts[kind]["message_count"]
        )
        for kind, label in Thread.Kind.choices
        if kind in counts
    ]


def consultations(family: Family, *, staff_names: bool = False) -> list[Consultation]:
    """The family's trail grouped by local day, agency, action and purpose (and staff
    member, when asked for), counted in the database; names in one query each."""
    keys = ["day", "agency_id", "action", "purpose"]
    if staff_names:
        keys += ["actor_id", "actor_label"]
    rows = list(
        AuditEvent.objects.filter(family_id=str(family.pk))
        .annotate(day=TruncDate("occurred_at", tzinfo=ZoneInfo(settings.TIME_ZONE)))
        .order_by()
        .values(*keys)
        .annotate(count=Count("id"))
        .order_by(*keys)
    )
    agencies = {
        pk: (name, kind)
        for pk, name, kind in Agency.objects.filter(
            pk__in={row["agency_id"] for row in rows if row["agency_id"] is not None}
        ).values_list("pk", "name", "kind")
    }
    names: dict[int, str] = {}
    if staff_names:
        names = dict(
            User.objects.filter(
                pk__in={row["actor_id"] for row in rows if row["actor_id"] is not None}
            ).values_list("pk", "full_name")
        )
    result = []
    for row in rows:
        agency_name, agency_kind = agencies.get(row["agency_id"], ("", ""))
        if is_dpo_step(row["action"]):
            agency_name, agency_kind = str(DPO_AGENCY), "dpo"
        staff = None
        if staff_names:
            staff = names.get(row["actor_id"]) or _actor(row["actor_label"])
        result.append(
            Consultation(
                day=row["day"],
                agency=agency_name,
                agency_kind=agency_kind,
                action=row["action"],
                action_label=action_label(row["action"]),
                purpose=row["purpose"],
                purpose_label=purpose_label(row["purpose"]),
                count=row["count"],
                staff=staff,
            )
        )
    return result


DPO_AGENCY = gettext_lazy("Datenschutzbeauftragte/r")


def _actor(label: str) -> str:
    if label == "system" or label.startswith("system:"):
        return _("Plattform (automatisch)")
    return label  # an account since removed: its id is all the trail keeps
