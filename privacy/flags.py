"""Flags of unusual access, found in the trail alone: a user reading many families outside
her own cases, bulk exports, reads of family data outside working hours, and grants of case
and dpo roles (many in a day by one person, confirmed outside working hours). `find_flags`
runs hourly (manage.py flag_unusual_access); the DPO reviews each flag on the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.audit_actions import (
    TAG_ACCESS_DENIED,
    TAG_CONSENT_MISSING,
    TAG_STAMP_PRINTED,
    TAG_VIEWED,
)
from audit.models import AuditEvent
from audit.trail import record
from dienstweg.access import DpoScope, dpo_scope_of
from dienstweg.actions import ActionError
from dienstweg.audit_actions import (
    CONSENT_EVIDENCE_VIEWED,
    FAMILY_ACCESS_DENIED,
    FAMILY_HISTORY_VIEWED,
    FAMILY_VIEWED,
    MEMBERSHIP_PROPOSAL_CONFIRMED,
    MEMBERSHIP_PROPOSED,
)
from dienstweg.models import Membership, User
from messaging.audit_actions import (
    MESSAGE_ATTACHMENT_DOWNLOADED,
    MESSAGE_READ,
    THREAD_ACCESS_DENIED,
    THREAD_OPENED,
)
from privacy.audit_actions import (
    CONSOLE_ACCESS_FLAGGED,
    CONSOLE_ACCESS_REPORT,
    CONSOLE_EXPORTED,
    CONSOLE_FLAG_REVIEWED,
)
from privacy.models import AccessFlag
from referrals.audit_actions import (
    REFERRAL_ACCESS_DENIED,
    REFERRAL_ATTACHMENT_DOWNLOADED,
    REFERRAL_VIEWED,
)

# Reads of family data: a page, a file, a message opened, a stamp printed. Refusals count
# too: trying families one may not open is exactly what the DPO should see. Every other
# action a user records about a family (registered, drafted, delivered, accepted, posted,
# created, status_changed, granted, ...) is work on it and makes the family her own case.
# The DPO's console.* actions are neither: she reads the trail, not the family's data.
READ_ACTIONS: tuple[str, ...] = (
    FAMILY_VIEWED,
    FAMILY_HISTORY_VIEWED,
    FAMILY_ACCESS_DENIED,
    CONSENT_EVIDENCE_VIEWED,
    REFERRAL_VIEWED,
    REFERRAL_ATTACHMENT_DOWNLOADED,
    REFERRAL_ACCESS_DENIED,
    TAG_VIEWED,
    TAG_STAMP_PRINTED,
    TAG_ACCESS_DENIED,
    TAG_CONSENT_MISSING,
    THREAD_OPENED,
    THREAD_ACCESS_DENIED,
    MESSAGE_READ,
    MESSAGE_ATTACHMENT_DOWNLOADED,
)
CONSOLE_PREFIX = "console."
# What leaves the console as a file: the trail's export ({"rows": N, "format": ...}) and a
# family's access report ({"format": ...}, no rows: it counts as one export).
EXPORT_ACTIONS: tuple[str, ...] = (CONSOLE_EXPORTED, CONSOLE_ACCESS_REPORT)
MAX_EXPORTS_PER_DAY = 20
# The steps of granting a case or dpo role that one person takes: proposing (an admin) and
# confirming (a lead, or a second admin). Counted together per person and day.
GRANT_STEPS: tuple[str, ...] = (MEMBERSHIP_PROPOSED, MEMBERSHIP_PROPOSAL_CONFIRMED)
# A family is one's own case after working on it in this many days before the read.
OWN_CASE_DAYS = 90
FLAGGER = "system:flags"
MAX_NOTE = 2000


@dataclass(frozen=True)
class Finding:
    """One actor's events of one kind on the day, before it is stored as a flag."""

    kind: str
    actor_id: int
    event_count: int
    family_count: int
    first_event_id: int
    last_event_id: int


def local_midnight(day: date) -> datetime:
    """The start of DAY in the platform's time zone (Europe/Berlin), as an aware moment."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def _at_hour(day: date, hour: int) -> datetime:
    if hour <= 0:
        return local_midnight(day)
    if hour >= 24:
        return local_midnight(day + timedelta(days=1))
    return timezone.make_aware(datetime.combine(day, time(hour)), timezone.get_default_timezone())


def _reads(start: datetime, end: datetime) -> QuerySet[AuditEvent]:
    # The time range first: the (occurred_at, id) index bounds every query to one day.
    return AuditEvent.objects.filter(
        occurred_at__gte=start,
        occurred_at__lt=end,
        actor_id__isnull=False,
        family_id__isnull=False,
        action__in=READ_ACTIONS,
    ).order_by()


def _findings(
    events: QuerySet[AuditEvent], *, families_above: int = 0
) -> QuerySet[AuditEvent, dict[str, int]]:
    return (
        events.values("actor_id")
        .annotate(
            events=Count("id"),
            families=Count("family_id", distinct=True),
            first=Min("id"),
            last=Max("id"),
        )
        .filter(families__gt=families_above)
        .order_by("actor_id")
    )


def _as_finding(kind: str, row: dict[str, int]) -> Finding:
    return Finding(kind, row["actor_id"], row["events"], row["families"], row["first"], row["last"])


def many_families(day: date) -> list[Finding]:
    """Users who read more than FLAG_FAMILIES_PER_DAY families on DAY that were not their
    own cases (no work of theirs on the family in the OWN_CASE_DAYS before, or that day)."""
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    limit = settings.FLAG_FAMILIES_PER_DAY
    reads = _reads(start, end)
    # Cheap first pass: only users above the limit counting every family can be above it
    # counting the others; on most days there are none and the anti-join never runs.
    candidates = list(
        reads.values("actor_id")
        .annotate(families=Count("family_id", distinct=True))
        .filter(families__gt=limit)
        .values_list("actor_id", flat=True)
    )
    if not candidates:
        return []
    own_work = (
        AuditEvent.objects.filter(
            actor_id=OuterRef("actor_id"),
            family_id=OuterRef("family_id"),
            occurred_at__gte=local_midnight(day - timedelta(days=OWN_CASE_DAYS)),
            occurred_at__lt=end,
        )
        .exclude(action__in=READ_ACTIONS)
        .exclude(action__startswith=CONSOLE_PREFIX)
    )
    kind = AccessFlag.Kind.MANY_FAMILIES
    rows = _findings(
        reads.filter(actor_id__in=candidates).filter(~Exists(own_work)), families_above=limit
    )
    return [_as_finding(kind, row) for row in rows]


def outside_hours(day: date) -> list[Finding]:
    """Users who read family data on DAY before WORKING_HOURS_START, at or after
    WORKING_HOURS_END, or at all on a Saturday or Sunday (local time). Public holidays are
    working days here: the platform keeps no calendar of them."""
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    reads = _outside_working_hours(_reads(start, end), day)
    kind = AccessFlag.Kind.OUTSIDE_HOURS
    return [_as_finding(kind, row) for row in _findings(reads)]


def is_outside_working_hours(moment: datetime) -> bool:
    """Whether MOMENT (local time) lies before WORKING_HOURS_START, at or after
    WORKING_HOURS_END, or on a Saturday or Sunday: the rule of outside_hours, for one
    moment (the console marks each grant with it)."""
    local = timezone.localtime(moment)
    if local.weekday() >= 5:
        return True
    day = local.date()
    return not (
        _at_hour(day, settings.WORKING_HOURS_START)
        <= local
        < _at_hour(day, settings.WORKING_HOURS_END)
    )


def _outside_working_hours(events: QuerySet[AuditEvent], day: date) -> QuerySet[AuditEvent]:
    if day.weekday() >= 5:
        return events
    return events.filter(
        Q(occurred_at__lt=_at_hour(day, settings.WORKING_HOURS_START))
        | Q(occurred_at__gte=_at_hour(day, settings.WORKING_HOURS_END))
    )


def _grant_steps(day: date, actions: tuple[str, ...]) -> QuerySet[AuditEvent]:
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    return AuditEvent.objects.filter(
        occurred_at__gte=start, occurred_at__lt=end, actor_id__isnull=False, action__in=actions
    ).order_by()


def _per_actor(
    events: QuerySet[AuditEvent], *, above: int = 0
) -> QuerySet[AuditEvent, dict[str, int]]:
    """Each actor's events: how many, the first and last id; only actors with more than
    ABOVE of them."""
    return (
        events.values("actor_id")
        .annotate(events=Count("id"), first=Min("id"), last=Max("id"))
        .filter(events__gt=above)
        .order_by("actor_id")
    )


def many_grants(day: date) -> list[Finding]:
    """People who on DAY proposed and confirmed case or dpo roles more than
    FLAG_GRANTS_PER_DAY times in all (an admin proposing a whole team, a lead confirming
    one): each is an occasion to look, not a finding."""
    kind = AccessFlag.Kind.MANY_GRANTS
    rows = _per_actor(_grant_steps(day, GRANT_STEPS), above=settings.FLAG_GRANTS_PER_DAY)
    return [
        Finding(kind, row["actor_id"], row["events"], 0, row["first"], row["last"]) for row in rows
    ]


def grants_outside_hours(day: date) -> list[Finding]:
    """People who confirmed a case or dpo role on DAY outside the working hours (or at a
    weekend), as outside_hours counts reads."""
    kind = AccessFlag.Kind.GRANT_OUTSIDE_HOURS
    events = _outside_working_hours(_grant_steps(day, (MEMBERSHIP_PROPOSAL_CONFIRMED,)), day)
    return [
        Finding(kind, row["actor_id"], row["events"], 0, row["first"], row["last"])
        for row in _per_actor(events)
    ]


def bulk_exports(day: date) -> list[Finding]:
    """Users whose exports on DAY held more than FLAG_EXPORT_EVENTS rows in all, or who
    exported more than MAX_EXPORTS_PER_DAY times."""
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    exports = (
        AuditEvent.objects.filter(
            occurred_at__gte=start,
            occurred_at__lt=end,
            actor_id__isnull=False,
            action__in=EXPORT_ACTIONS,
        )
        .order_by("id")
        .values_list("id", "actor_id", "family_id", "details")
    )
    # Summed here rather than by a cast in SQL: "rows" is a JSON value, and one that is no
    # number would stop PostgreSQL's cast. A day holds few exports (each is a person's
    # click), and the (action, occurred_at) index finds them.
    totals: dict[int, dict[str, int]] = {}
    families: dict[int, set[str]] = {}
    for event_id, actor_id, family_id, details in exports.iterator(chunk_size=2000):
        if actor_id is None:  # excluded by the filter; for the type checker
            continue
        total = totals.setdefault(
            actor_id, {"events": 0, "rows": 0, "first": event_id, "last": event_id}
        )
        total["events"] += 1
        total["last"] = event_id
        rows = details.get("rows") if isinstance(details, dict) else None
        if isinstance(rows, int) and not isinstance(rows, bool):
            total["rows"] += max(rows, 0)
        if family_id:
            families.setdefault(actor_id, set()).add(family_id)
    kind = AccessFlag.Kind.BULK_EXPORT
    return [
        Finding(
            kind,
            actor_id,
            total["events"],
            len(families.get(actor_id, ())),
            total["first"],
            total["last"],
        )
        for actor_id, total in sorted(totals.items())
        if total["rows"] > settings.FLAG_EXPORT_EVENTS or total["events"] > MAX_EXPORTS_PER_DAY
    ]


def find_flags(day: date) -> list[AccessFlag]:
    """Find and store the flags of DAY (a local calendar day). Run again, it updates the
    counts of the day's open flags and adds new ones; it never doubles a flag and never
    touches one the DPO has reviewed. Each new flag is recorded as console.access_flagged."""
    findings = [
        *many_families(day),
        *bulk_exports(day),
        *outside_hours(day),
        *many_grants(day),
        *grants_outside_hours(day),
    ]
    # The actor's agency: the one she acted for in the last event behind the flag.
    agencies = dict(
        AuditEvent.objects.filter(pk__in={f.last_event_id for f in findings}).values_list(
            "id", "agency_id"
        )
    )
    sole = _sole_agencies({f.actor_id for f in findings if not agencies.get(f.last_event_id)})
    return [
        _store(f, day=day, agency_id=agencies.get(f.last_event_id) or sole.get(f.actor_id))
        for f in findings
    ]


def _sole_agencies(actor_ids: set[int]) -> dict[int, int]:
    """For actors whose last event names no agency (a message read, say), the one agency
    they are members of, if there is exactly one: so that the flag still reaches that
    agency's DPO (a flag of no agency only the network's DPO sees). One query."""
    if not actor_ids:
        return {}
    seen: dict[int, set[int]] = {}
    rows = Membership.objects.filter(user_id__in=actor_ids).values_list("user_id", "agency_id")
    for user_id, agency_id in rows:
        seen.setdefault(user_id, set()).add(agency_id)
    return {user: next(iter(ids)) for user, ids in seen.items() if len(ids) == 1}


def _store(finding: Finding, *, day: date, agency_id: int | None) -> AccessFlag:
    counts = {
        "agency_id": agency_id,
        "event_count": finding.event_count,
        "family_count": finding.family_count,
        "first_event_id": finding.first_event_id,
        "last_event_id": finding.last_event_id,
    }
    with transaction.atomic():
        # Locked, so that a review saved meanwhile is never overwritten by old counts; two
        # runs at once meet at the unique constraint, and get_or_create reads the winner's.
        flag, created = AccessFlag.objects.select_for_update().get_or_create(
            kind=finding.kind, actor_id=finding.actor_id, day=day, defaults=counts
        )
        if created:
            record(
                FLAGGER,
                CONSOLE_ACCESS_FLAGGED,
                target=flag,
                details={"kind": flag.kind, "actor_id": flag.actor_id, "day": day.isoformat()},
            )
        elif not flag.is_reviewed and any(getattr(flag, k) != v for k, v in counts.items()):
            for name, value in counts.items():
                setattr(flag, name, value)
            flag.save(update_fields=list(counts))
    return flag


def flags_in(scope: DpoScope) -> QuerySet[AccessFlag]:
    """The flags a DPO sees: those of people acting for one of her agencies (the flag's
    agency: the one of its last event); every flag for the network's DPO."""
    if scope.network_wide:
        return AccessFlag.objects.all()
    return AccessFlag.objects.filter(agency_id__in=sorted(scope.agency_ids))


def open_flag_count(scope: DpoScope) -> int:
    """How many flags in the DPO's scope wait for her review."""
    return flags_in(scope).filter(reviewed_at__isnull=True).count()


def review_flag(flag: AccessFlag, *, by: User, note: str) -> AccessFlag:
    """Mark the flag reviewed by the DPO BY with her note (what she checked, what she
    found). The record names the flag and its kind, never the note. ActionError for an
    empty or too long note, a reviewer who is no DPO or whose scope does not cover the
    flag's agency, or a flag already reviewed."""
    note = note.strip()
    if not note:
        raise ActionError(_("Bitte schreiben Sie einen Prüfvermerk."))
    if len(note) > MAX_NOTE:
        raise ActionError(
            _("Der Prüfvermerk darf höchstens %(limit)d Zeichen lang sein.") % {"limit": MAX_NOTE}
        )
    scope = dpo_scope_of(by)
    if scope is None:
        raise ActionError(_("Nur Datenschutzbeauftragte können Auffälligkeiten prüfen."))
    if not scope.covers_agency(flag.agency_id):
        raise ActionError(
            _("Diese Auffälligkeit betrifft eine Stelle, für die Sie nicht zuständig sind.")
        )
    # Recorded under the flag's agency when she is its DPO, as a step on a family is.
    agency_id = flag.agency_id if flag.agency_id in scope.agency_ids else scope.acting_agency_id
    with transaction.atomic():
        locked = AccessFlag.objects.select_for_update().get(pk=flag.pk)
        if locked.is_reviewed:
            raise ActionError(_("Diese Auffälligkeit ist bereits geprüft."))
        locked.reviewed_at = timezone.now()
        locked.reviewed_by = by
        locked.review_note = note
        locked.save(update_fields=["reviewed_at", "reviewed_by", "review_note"])
        record(
            by,
            CONSOLE_FLAG_REVIEWED,
            target=locked,
            details={"flag": locked.pk, "kind": locked.kind},
            agency_id=agency_id,
        )
    return locked
