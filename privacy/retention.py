"""The retention run (`manage.py apply_retention`): what has outlived its period goes.

- closed referrals (completed, declined, withdrawn, refused), closed longer than
  RETENTION_CLOSED_CASE_DAYS ago, with their threads; likewise the metadata kept of
  referrals of erased families (last changed that long ago);
- application tags decided that long ago, with their threads;
- direct threads quiet for as long (with their own data key);
- families with nothing open (no open referral or tag, no consent still valid) and no
  activity for RETENTION_FAMILY_DAYS: erased as on request (privacy.erasure);
- expired audit events (audit/retention.py), through the trail's one deletion path
  (audit/pruning.py), behind a signed checkpoint.

Nothing of a family whose processing is restricted (GDPR Art. 18) is removed: restriction
exists to keep data that would otherwise go. Each removal is one transaction with its own
event (`referral.removed_by_retention`, ...), so the family's access report shows it; the
run ends with a `retention.applied` event (counts) and seals the trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from applications.models import ApplicationTag
from audit import pruning
from audit import retention as trail_retention
from audit.models import AuditEvent
from audit.sealing import seal_pending
from audit.trail import record
from dienstweg import events
from dienstweg.locks import lock_family_row
from dienstweg.models import Consent, DataKey, Family
from messaging.access import thread_readers
from messaging.models import Message, Participant, Thread
from privacy.audit_actions import (
    REFERRAL_REMOVED_BY_RETENTION,
    RETENTION_APPLIED,
    TAG_REMOVED_BY_RETENTION,
    THREAD_REMOVED_BY_RETENTION,
)
from privacy.erasure import erase_family, seal_now
from referrals.models import Referral

ACTOR = "system:retention"
PURPOSE = "Aufbewahrungsfrist abgelaufen (Art. 5 Abs. 1 lit. e DSGVO)"
FAMILY_REASON = "Aufbewahrungsfrist abgelaufen"
CLOSED_STATES = (
    Referral.State.COMPLETED,
    Referral.State.DECLINED,
    Referral.State.WITHDRAWN,
    Referral.State.REFUSED,
)


class Meter(Protocol):
    """A progress display (dienstweg.progress.Progress)."""

    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


MeterFactory = Callable[[str, int], Meter]


class _NoMeter:
    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True)
class Cutoffs:
    now: datetime
    cases: datetime  # closed referrals, decided tags, quiet direct threads: before this
    families: datetime  # families without activity since this

    @classmethod
    def at(cls, now: datetime | None = None) -> Cutoffs:
        now = now or timezone.now()
        return cls(
            now,
            now - timedelta(days=settings.RETENTION_CLOSED_CASE_DAYS),
            now - timedelta(days=settings.RETENTION_FAMILY_DAYS),
        )


@dataclass(frozen=True)
class Counts:
    referrals: int = 0
    tags: int = 0
    direct_threads: int = 0
    families: int = 0
    audit_events: int = 0


@dataclass(frozen=True)
class RetentionRun:
    counts: Counts
    checkpoint: int | None  # number of the trail's checkpoint left by this run
    event: AuditEvent  # retention.applied
    seal_number: int | None  # the seal over it (None: the sealer service seals it)


# What is due


def _unrestricted_family() -> Q:
    return Q(family__restricted_at__isnull=True)


def due_referrals(cutoffs: Cutoffs) -> QuerySet[Referral]:
    """Referrals closed before the cutoff, and the metadata kept of erased families'."""
    closed_at = Coalesce("closed_at", "answered_at", "updated_at")
    return (
        Referral.objects.alias(closed=closed_at)
        .filter(_unrestricted_family())
        .filter(
            Q(state__in=CLOSED_STATES, closed__lt=cutoffs.cases)
            | Q(family__erased_at__isnull=False, updated_at__lt=cutoffs.cases)
        )
    )


def due_tags(cutoffs: Cutoffs) -> QuerySet[ApplicationTag]:
    """Application tags decided (the decision recorded) before the cutoff."""
    return ApplicationTag.objects.filter(_unrestricted_family()).filter(
        state=ApplicationTag.State.DECIDED, updated_at__lt=cutoffs.cases
    )


def due_direct_threads(cutoffs: Cutoffs) -> QuerySet[Thread]:
    """Direct threads whose last message (or, without one, their start) is that old."""
    return Thread.objects.alias(last=Coalesce("last_message_at", "created_at")).filter(
        kind=Thread.Kind.DIRECT, last__lt=cutoffs.cases
    )


def due_families(cutoffs: Cutoffs) -> QuerySet[Family]:
    """Families not erased nor restricted, with nothing open and no activity since the
    cutoff: no open referral or tag, no consent still valid, nothing recorded, changed or
    written about them since (their own record, consents, referrals, tags, threads)."""
    family = OuterRef("pk")
    today = timezone.localdate(cutoffs.now)
    since = cutoffs.families
    open_referrals = Referral.objects.filter(family=family).exclude(state__in=CLOSED_STATES)
    open_tags = ApplicationTag.objects.filter(family=family).exclude(
        state=ApplicationTag.State.DECIDED
    )
    consents = Consent.objects.filter(family=family)
    valid_consents = consents.filter(revoked_at__isnull=True, valid_until__gte=today)
    recent_consents = consents.filter(
        Q(recorded_at__gte=since)
        | Q(revoked_at__gte=since)
        | Q(valid_until__gte=timezone.localdate(since))
    )
    recent_referrals = Referral.objects.filter(family=family, updated_at__gte=since)
    recent_tags = ApplicationTag.objects.filter(family=family, updated_at__gte=since)
    recent_threads = Thread.objects.filter(family=family, last_message_at__gte=since)
    return (
        Family.objects.filter(
            erased_at__isnull=True, restricted_at__isnull=True, registered_at__lt=since
        )
        .exclude(Exists(open_referrals))
        .exclude(Exists(open_tags))
        .exclude(Exists(valid_consents))
        .exclude(Exists(recent_consents))
        .exclude(Exists(recent_referrals))
        .exclude(Exists(recent_tags))
        .exclude(Exists(recent_threads))
    )


def plan_retention(now: datetime | None = None) -> Counts:
    """What a run at NOW would remove (counts; reads only: the dry run)."""
    cutoffs = Cutoffs.at(now)
    return Counts(
        referrals=due_referrals(cutoffs).count(),
        tags=due_tags(cutoffs).count(),
        direct_threads=due_direct_threads(cutoffs).count(),
        families=due_families(cutoffs).count(),
        audit_events=pruning.count_removable(trail_retention.expired_q(cutoffs.now)),
    )


# Removing, one object per transaction


def _thread_users(threads: QuerySet[Thread]) -> set[int]:
    """Who follows or may read these threads: their sockets re-check after commit."""
    users = set(Participant.objects.filter(thread__in=threads).values_list("user_id", flat=True))
    for thread in threads.select_related("referral", "application_tag__family"):
        users.update(thread_readers(thread))
    return users


def _remove_with_threads(
    subject: Referral | ApplicationTag,
    threads: QuerySet[Thread],
    action: str,
    details: dict[str, str],
) -> None:
    """Record and delete a referral or tag (its timeline, attachments, permissions and
    thread go with it); the readers' sockets re-check after commit."""
    users = _thread_users(threads)
    messages = Message.objects.filter(thread__in=threads).count()
    record(
        ACTOR,
        action,
        target=subject,
        family=subject.family,
        purpose=PURPOSE,
        details={**details, "messages": messages},
    )
    subject.delete()
    events.access_revoked(users)


def _lock_family_of(due: QuerySet[Referral] | QuerySet[ApplicationTag]) -> None:
    """Lock the family row of the referral or tag in DUE first (dienstweg.locks), if any."""
    family_id = due.values_list("family_id", flat=True).first()
    if family_id is not None:
        lock_family_row(family_id)


def remove_referral(referral_id: UUID, *, cutoffs: Cutoffs) -> bool:
    """Remove one referral that is still due, with its thread; False if it no longer is."""
    with transaction.atomic():
        _lock_family_of(due_referrals(cutoffs).filter(pk=referral_id))
        referral = (
            due_referrals(cutoffs)
            .select_for_update(of=("self",))
            .select_related("family")
            .filter(pk=referral_id)
            .first()
        )
        if referral is None:
            return False
        _remove_with_threads(
            referral,
            Thread.objects.filter(referral=referral),
            REFERRAL_REMOVED_BY_RETENTION,
            {"state": referral.state, "basis": referral.basis},
        )
        return True


def remove_tag(tag_id: UUID, *, cutoffs: Cutoffs) -> bool:
    """Remove one decided application tag that is still due, with its thread."""
    with transaction.atomic():
        _lock_family_of(due_tags(cutoffs).filter(pk=tag_id))
        tag = (
            due_tags(cutoffs)
            .select_for_update(of=("self",))
            .select_related("family")
            .filter(pk=tag_id)
            .first()
        )
        if tag is None:
            return False
        _remove_with_threads(
            tag,
            Thread.objects.filter(application_tag=tag),
            TAG_REMOVED_BY_RETENTION,
            {"kind": tag.kind},
        )
        return True


def remove_direct_thread(thread_id: UUID, *, cutoffs: Cutoffs) -> bool:
    """Remove one quiet direct thread and destroy its own data key."""
    with transaction.atomic():
        # The lock makes a message posted meanwhile wait, then find the thread gone; one
        # that committed first has moved last_message_at and the thread is no longer due.
        thread = due_direct_threads(cutoffs).select_for_update().filter(pk=thread_id).first()
        if thread is None:
            return False
        users = set(Participant.objects.filter(thread=thread).values_list("user_id", flat=True))
        record(
            ACTOR,
            THREAD_REMOVED_BY_RETENTION,
            target=thread,
            purpose=PURPOSE,
            details={"messages": Message.objects.filter(thread=thread).count()},
        )
        key_id = thread.data_key_id
        thread.delete()
        if key_id is not None:
            DataKey.objects.filter(pk=key_id).delete()
        events.access_revoked(users)
        return True


def remove_family(family_id: UUID, *, cutoffs: Cutoffs) -> bool:
    """Erase one family that is still due, as an erasure on request (without sealing:
    the run seals at its end)."""
    with transaction.atomic():
        # Locked and asked again: a consent recorded meanwhile keeps the family.
        family = due_families(cutoffs).select_for_update().filter(pk=family_id).first()
        if family is None:
            return False
        erase_family(family, by=ACTOR, reason=FAMILY_REASON, seal=False)
        return True


def _remove_all(
    label: str,
    ids: list[UUID],
    remove: Callable[..., bool],
    cutoffs: Cutoffs,
    meter: MeterFactory,
) -> int:
    progress = meter(label, len(ids))
    removed = 0
    for object_id in ids:
        removed += remove(object_id, cutoffs=cutoffs)
        progress.advance()
    progress.finish()
    return removed


def apply_retention(
    *, now: datetime | None = None, meter: MeterFactory | None = None
) -> RetentionRun:
    """Remove what is due at NOW (see the module's docstring) and leave a sealed
    `retention.applied` event. The expired audit events go first: if the trail does not
    verify, pruning.PruningRefused is raised before anything is removed."""
    meter = meter or (lambda label, total: _NoMeter())
    cutoffs = Cutoffs.at(now)
    # Expired events are removed only once sealed: seal what has committed so far.
    seal_pending()
    expired = trail_retention.expired_q(cutoffs.now)
    trail_meter: list[Meter] = []

    def trail_progress(done: int, total: int) -> None:
        if not trail_meter:
            trail_meter.append(meter("Protokoll", total))
        elif done:
            trail_meter[0].advance()

    removal = pruning.remove_expired(expired, by=ACTOR, progress=trail_progress)
    if trail_meter:
        trail_meter[0].finish()

    def due(queryset: QuerySet[Any]) -> list[UUID]:
        return list(queryset.order_by("pk").values_list("pk", flat=True))

    referrals = _remove_all(
        "Vermittlungen", due(due_referrals(cutoffs)), remove_referral, cutoffs, meter
    )
    tags = _remove_all("Antragsmarker", due(due_tags(cutoffs)), remove_tag, cutoffs, meter)
    threads = _remove_all(
        "Direktnachrichten",
        due(due_direct_threads(cutoffs)),
        remove_direct_thread,
        cutoffs,
        meter,
    )
    families = _remove_all(
        "Familien",
        due(due_families(cutoffs)),
        remove_family,
        cutoffs,
        meter,
    )
    counts = Counts(referrals, tags, threads, families, removal.removed)
    checkpoint = removal.checkpoint.number if removal.checkpoint is not None else None
    with transaction.atomic():
        event = record(
            ACTOR,
            RETENTION_APPLIED,
            purpose=PURPOSE,
            details={
                "referrals": referrals,
                "tags": tags,
                "direct_threads": threads,
                "families": families,
                "audit_events": removal.removed,
                "checkpoint": checkpoint,
                "closed_case_days": settings.RETENTION_CLOSED_CASE_DAYS,
                "family_days": settings.RETENTION_FAMILY_DAYS,
            },
        )
    return RetentionRun(counts, checkpoint, event, seal_now(event))
