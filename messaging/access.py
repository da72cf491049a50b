"""Who may read and write which thread, defined once: pages, the socket and commands all
ask here. A referral's thread follows the referral (its guardian permission and the end of
the consent it relied on), a tag's thread follows the tag (the project, and the processing
office while the consent covers it), a direct thread its two participants. While a family's
processing is restricted (GDPR Art. 18), its threads stay with the owning project: the
referral and tag rules below say so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.http import Http404
from django.utils import timezone
from django.utils.translation import ngettext

from applications.access import tag_label, tag_readers, tag_side, tags_losing_access
from audit.trail import record
from dienstweg.access import Reach, reach_of
from dienstweg.compiled import IDS, SENTINEL_ID, SENTINEL_UUID, CompiledQuery
from dienstweg.hooks import Loss
from dienstweg.models import Consent, Family, User
from dienstweg.worklist import COUNTED_UP_TO
from messaging.audit_actions import THREAD_ACCESS_DENIED
from messaging.models import Message, MessageAttachment, Participant, Thread
from messaging.people import with_partners
from messaging.subjects import registered, subject_of
from referrals.access import (
    referral_readers,
    referral_visible_to,
    visible_to,
    visible_within,
)
from referrals.actions.permissions import referral_label, referrals_losing_access
from referrals.models import Referral

THREAD_RELATED = ("referral", "application_tag__family", "family__data_key", "data_key")


def may_use_thread(user: User, thread: Thread) -> bool:
    """Whether the user may read and write in the thread now: asked of the database each
    time (one query for a referral's or a direct thread), never remembered."""
    if not user.is_active:
        return False
    if thread.referral_id is not None:
        return referral_visible_to(user, thread.referral_id)
    if thread.application_tag is not None:
        return tag_side(user, thread.application_tag) is not None
    subject = subject_of(thread.kind) if thread.subject_id is not None else None
    if subject is not None:
        return subject.may_use(user, thread.subject_id)  # type: ignore[arg-type]
    return (
        thread.kind == Thread.Kind.DIRECT
        and Participant.objects.filter(thread=thread, user=user).exists()
    )


def thread_readers(thread: Thread) -> list[int]:
    """The ids of the users who may read the thread now: the recipients of its events."""
    if thread.referral is not None:
        return referral_readers(thread.referral)
    if thread.application_tag is not None:
        return tag_readers(thread.application_tag)
    subject = subject_of(thread.kind) if thread.subject_id is not None else None
    if subject is not None:
        return subject.readers(thread.subject_id)  # type: ignore[arg-type]
    return list(
        Participant.objects.filter(thread=thread, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )


def referral_thread_of(referral_id: UUID | str) -> Thread | None:
    """The referral's thread if it has been opened (the caller has checked the referral)."""
    return Thread.objects.filter(referral_id=referral_id).first()


def tag_thread_of(tag_id: UUID) -> Thread | None:
    """The tag's thread if it has been opened (the caller has checked the tag)."""
    return Thread.objects.filter(application_tag_id=tag_id).first()


def thread_by_id(thread_id: UUID | str) -> Thread | None:
    """The thread with what the access rules read, unchecked: for an action that checks
    the rules itself under the thread's lock (messaging.actions.post_message)."""
    try:
        return Thread.objects.select_related(*THREAD_RELATED).filter(pk=thread_id).first()
    except ValidationError:
        return None


def refuse_thread(user: User, thread: Thread | None) -> None:
    """Record a refused access to a thread (under its family when it exists)."""
    with transaction.atomic():
        record(
            user,
            THREAD_ACCESS_DENIED,
            target=thread,
            family=thread.family if thread is not None else None,
        )


def access_thread_by_id(user: User, thread_id: UUID | str, kept: Thread | None = None) -> Thread:
    """Fetch a thread the user may use now, or 404 (the same for missing and forbidden).
    A refusal is audited, under the family when the thread exists. KEPT: the thread's row
    as a socket kept it (messaging.kept), to spare reading it again: never a right, the
    rule is asked all the same."""
    thread = kept if kept is not None and str(kept.pk) == str(thread_id) else None
    thread = thread or thread_by_id(thread_id)
    if thread is None or not may_use_thread(user, thread):
        refuse_thread(user, thread)
        raise Http404
    return thread


def access_message_by_id(user: User, message_id: UUID | str) -> Message:
    """Fetch a message of a thread the user may use now (its thread loaded), or 404,
    audited like access_thread_by_id. Whether she may change it is the action's rule."""
    try:
        message = Message.objects.select_related("author").filter(pk=message_id).first()
    except ValidationError:
        message = None
    thread = thread_by_id(message.thread_id) if message is not None else None
    if message is None or thread is None or not may_use_thread(user, thread):
        refuse_thread(user, thread)
        raise Http404
    message.thread = thread
    return message


def readable_message(user: User, message_id: UUID | str) -> Message | None:
    """The message with its thread and files if the user may read its thread now, else
    None: for a socket that was told of a message and loads it itself. Not audited as a
    refusal: the user asked for nothing, she only lost sight of the thread meanwhile."""
    seen = message_seen_by(user, message_id)
    thread = thread_by_id(seen.thread_id) if seen is not None else None
    return loaded_message(message_id, thread) if thread is not None else None


def listed_files() -> QuerySet[MessageAttachment]:
    """Files as a message shows them, by name and size: their content (up to
    ATTACHMENT_MAX_BYTES each) is read only when one is downloaded."""
    return MessageAttachment.objects.defer("content_enc")


def listed_attachments() -> Prefetch[Any]:
    """A message's files as listed_files lists them."""
    return Prefetch("attachments", queryset=listed_files())


def loaded_message(message_id: UUID | str, thread: Thread) -> Message | None:
    """The message of THREAD with its author, quote and files, unchecked: for a caller that
    has just asked message_seen_by (None if it is gone, or not of that thread)."""
    message = (
        Message.objects.select_related("author", "reply_to__author")
        .prefetch_related(listed_attachments())
        .filter(pk=message_id, thread_id=thread.pk)
        .first()
    )
    if message is not None:
        message.thread = thread
    return message


@dataclass(frozen=True)
class Seen:
    """A message as a socket told of it may show it: its thread, and whether it is unchanged
    since it was posted (no edit, no deletion)."""

    thread_id: UUID
    unchanged: bool


def _message_seen(user_id: int, message_id: UUID) -> QuerySet[Any, Any]:
    """The message with what a socket told of it must know: its thread and kind, whether
    the user may read a referral's thread or is in a direct one, and whether it is
    unchanged since it was posted."""
    referral_seen = Referral.objects.filter(pk=OuterRef("thread__referral_id")).filter(
        visible_to(user_id)
    )
    participant = Participant.objects.filter(
        thread_id=OuterRef("thread_id"), user_id=user_id, user__is_active=True
    )
    unchanged = ExpressionWrapper(
        Q(edited_at__isnull=True, deleted_at__isnull=True), output_field=BooleanField()
    )
    return (
        Message.objects.filter(pk=message_id)
        .annotate(
            referral_seen=Exists(referral_seen),
            participant=Exists(participant),
            unchanged=unchanged,
        )
        .values_list("thread_id", "thread__kind", "referral_seen", "participant", "unchanged")[:1]
    )


# Compiled once a day (dienstweg/compiled.py): building it cost more CPU than running it.
_MESSAGE_SEEN = CompiledQuery(
    _message_seen, user_id=SENTINEL_ID, message_id=SENTINEL_UUID, prepared=True
)


def message_seen_by(user: User, message_id: UUID | str) -> Seen | None:
    """For a socket told of a message: None unless the message exists and the user may
    read its thread now. One query for a referral's or a direct thread (the rule is asked
    in the query that reads the message); a tag's thread asks may_use_thread as well.
    Not audited as a refusal, as readable_message."""
    if not user.is_active:
        return None
    try:
        rows = _MESSAGE_SEEN.rows(timezone.localdate(), user_id=user.pk, message_id=message_id)
    except ValueError:  # not an id at all
        return None
    if not rows:
        return None
    thread_id, kind, referral_seen, participant, unchanged = rows[0]
    thread_id = thread_id if isinstance(thread_id, UUID) else UUID(str(thread_id))
    if kind == Thread.Kind.REFERRAL:
        allowed = bool(referral_seen)
    elif kind == Thread.Kind.DIRECT:
        allowed = bool(participant)
    else:  # a tag's thread: its rule (the consent's terms) is asked in Python
        thread = thread_by_id(thread_id)
        allowed = thread is not None and may_use_thread(user, thread)
    return Seen(thread_id, bool(unchanged)) if allowed else None


def threads_of(user: User, reach: Reach | None = None) -> QuerySet[Participant]:
    """The user's threads for her overview (her participant rows), newest first, limited
    to those she may still reach; the thread page checks the exact rule again. REACH, if
    the page has read her memberships already."""
    reach = reach or reach_of(user)  # one reading of her memberships for both rules below
    return _threads_within(user.pk, reach.agency_ids, reach.group_ids).select_related(
        "thread__family"
    )


def _threads_within(user_id: Any, agencies: Any, groups: Any) -> QuerySet[Participant]:
    """threads_of for the user USER_ID whose case roles are in AGENCIES, whose permission
    groups are GROUPS (ids, or sentinels to compile it)."""
    return (
        Participant.objects.filter(user_id=user_id, thread__last_seq__gt=0)
        .filter(
            Q(thread__kind=Thread.Kind.DIRECT)
            # Asked of each of her threads (a few dozen), not as the list of every referral
            # she may see (thousands for a big project's coach: 40 ms on every page's badge).
            | Q(thread__kind=Thread.Kind.REFERRAL)
            & Exists(visible_within(agencies, groups).filter(pk=OuterRef("thread__referral_id")))
            | Q(thread__kind=Thread.Kind.APPLICATION_TAG, thread__family__owner_id__in=agencies)
            | Q(
                thread__kind=Thread.Kind.APPLICATION_TAG,
                thread__application_tag__processing_agency_id__in=agencies,
                thread__family__restricted_at__isnull=True,
            )
            | _listed_subjects(user_id, agencies)
        )
        .annotate(unread=F("thread__last_seq") - F("read_seq"))
        .order_by("-thread__last_message_at", "-thread_id")
    )


def _listed_subjects(user_id: Any, agencies: Any) -> Q:
    """Over Participant rows: threads of a registered subject that the user may see."""
    condition = Q(pk__in=[])
    for subject in registered():
        condition |= Q(thread__kind=subject.kind) & subject.listed(user_id, agencies)
    return condition


# The newest threads beside a conversation, compiled once a day and per number of
# agencies and groups (dienstweg/compiled.py): building the rule took the thread page
# 3.4 ms and compiling it 1 ms more (bench/pages.py).
RECENT_THREADS = 20
_RECENT_FIELDS = (
    "thread_id",
    "thread__kind",
    "thread__family__reference",
    "thread__last_seq",
    "thread__last_message_at",
    "read_seq",
    "unread",
    "partner_name",
    "partner_agency",
)
_RECENT = CompiledQuery(
    lambda user_id, agencies, groups: with_partners(
        _threads_within(user_id, agencies, groups)
    ).values_list(*_RECENT_FIELDS)[:RECENT_THREADS],
    user_id=SENTINEL_ID,
    agencies=IDS,
    groups=IDS,
)


# The navigation's badge, on every page once something is unread: building and compiling
# the rule took Django 12-15 ms a page, planning it PostgreSQL 3.4 ms (on the step-11
# database). Prepared: it starts from the user's own participant rows, whatever her agencies.
_UNREAD = CompiledQuery(
    lambda user_id, agencies, groups: (
        _threads_within(user_id, agencies, groups)
        .filter(thread__last_seq__gt=F("read_seq"))
        .order_by()
        .values("user_id")
        .annotate(total=Sum(F("thread__last_seq") - F("read_seq")))
        .values_list("total")
    ),
    user_id=SENTINEL_ID,
    agencies=IDS,
    groups=IDS,
    prepared=True,
)


def unread_in_reach(user: User, reach: Reach | None = None) -> int:
    """The user's unread messages in the threads she may still reach (threads_of)."""
    reach = reach or reach_of(user)
    rows = _UNREAD.rows(
        timezone.localdate(), user_id=user.pk, agencies=reach.agency_ids, groups=reach.group_ids
    )
    return int(rows[0][0] or 0) if rows else 0


def recent_threads_of(user: User, reach: Reach) -> list[Participant]:
    """The first RECENT_THREADS rows of threads_of, annotated as with_partners annotates
    them: unsaved rows that carry what an overview shows, nothing more."""
    return _as_listed(_RECENT, user, reach)


# The start page's unread threads: built with the ORM, the rule cost the page 17-21 ms
# for anyone with something unread (bench/work_queue.py on the step-11 database); compiled,
# 5-9 ms, and prepared 2-5 ms. Like the badge's, it starts from her own participant rows.
_UNREAD_THREADS = CompiledQuery(
    lambda user_id, agencies, groups: with_partners(
        _threads_within(user_id, agencies, groups).filter(thread__last_seq__gt=F("read_seq"))
    ).values_list(*_RECENT_FIELDS)[: COUNTED_UP_TO + 1],
    user_id=SENTINEL_ID,
    agencies=IDS,
    groups=IDS,
    prepared=True,
)


def unread_threads_of(user: User, reach: Reach) -> list[Participant]:
    """The rows of threads_of with messages the user has not read, newest first, as
    recent_threads_of gives them; up to COUNTED_UP_TO + 1 (a section's "99+")."""
    return _as_listed(_UNREAD_THREADS, user, reach)


def _as_listed(query: CompiledQuery, user: User, reach: Reach) -> list[Participant]:
    """QUERY's rows (_RECENT_FIELDS) for the user as unsaved participant rows."""
    rows = query.rows(
        timezone.localdate(), user_id=user.pk, agencies=reach.agency_ids, groups=reach.group_ids
    )
    shown = []
    for thread_id, kind, reference, last_seq, last_at, read_seq, unread, name, agency in rows:
        thread = Thread(pk=thread_id, kind=kind, last_seq=last_seq, last_message_at=last_at)
        thread.family = Family(reference=reference) if reference else None
        participant = Participant(thread=thread, user_id=user.pk, read_seq=read_seq)
        participant.unread = unread  # type: ignore[attr-defined]
        participant.partner_name = name  # type: ignore[attr-defined]
        participant.partner_agency = agency  # type: ignore[attr-defined]
        shown.append(participant)
    return shown


def losses_on_revocation(consent: Consent) -> list[Loss]:
    """Handler of dienstweg.hooks.revocation_losses: the threads of the referrals and tags
    that revoking CONSENT would take from the receiving agency or the processing office
    (they follow their subject), with their number of messages. A fixed number of queries."""
    tags = {tag.pk: tag for tag in tags_losing_access(consent)}
    threads = Thread.objects.filter(
        Q(referral__in=referrals_losing_access(consent).values("pk"))
        | Q(application_tag__in=list(tags))
    ).select_related("referral__family", "referral__to_agency")
    losses = []
    for thread in threads:
        if thread.referral is not None:
            agency, subject = thread.referral.to_agency.name, referral_label(thread.referral)
        else:
            tag = tags[thread.application_tag_id]  # type: ignore[index]
            agency, subject = tag.processing_agency.name, tag_label(tag)
        # Messages are numbered 1, 2, 3 ... per thread: the last number is their count.
        what = ngettext(
            "%(subject)s: Unterhaltung mit %(n)d Nachricht",
            "%(subject)s: Unterhaltung mit %(n)d Nachrichten",
            thread.last_seq,
        ) % {"subject": subject, "n": thread.last_seq}
        losses.append(Loss(agency=agency, what=what))
    return losses
