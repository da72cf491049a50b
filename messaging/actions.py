"""Every write of messaging: one function per verb, shared by the pages, the socket and
the commands. Each runs in a transaction, checks its rules, stores, records its audit
event and publishes its real-time event on commit (dienstweg.events)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.models import ApplicationTag
from audit.trail import record
from dienstweg import events, vault
from dienstweg.actions import ActionError
from dienstweg.compiled import SENTINEL_ID, SENTINEL_NUMBER, SENTINEL_UUID, CompiledQuery
from dienstweg.locks import lock_family_row
from dienstweg.models import Consent, Family, Membership, User
from dienstweg.notifications import notify
from dienstweg.uploads import Upload, check_upload
from messaging.access import THREAD_RELATED, listed_files, may_use_thread, thread_readers
from messaging.audit_actions import (
    FAMILY_THREADS_ERASED,
    MESSAGE_ATTACHMENT_DOWNLOADED,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    MESSAGE_POSTED,
    MESSAGE_READ,
    THREAD_OPENED,
)
from messaging.models import Message, MessageAttachment, Participant, Thread
from messaging.people import first_agency, label, label_of, labels_of, people_of
from messaging.subjects import subject_of
from referrals.models import Referral

MAX_ATTACHMENTS = 5
SYNC_LIMIT = 200


class Quote(TypedDict):
    """What a reply shows of the message it answers, as that message is now: of a deleted
    one nothing but that it is gone."""

    id: str
    seq: int
    author_name: str
    body: str
    deleted: bool


class MessagePayload(TypedDict):
    id: str
    seq: int
    thread: str
    author: int | None
    author_name: str
    body: str
    created_at: str
    edited: bool
    deleted: bool
    attachments: list[dict[str, Any]]
    reply_to: Quote | None


class MessageChanged(TypedDict):
    """A message was posted, edited or deleted. Only its id travels through the channel
    layer (Redis): each receiving socket loads and decrypts the message itself, after
    checking that its user may still read the thread (messaging.consumers)."""

    type: Literal["message.new", "message.updated"]
    message: str


class ReadUpdated(TypedDict):
    type: Literal["read.updated"]
    thread: str
    user: int
    name: str
    label: str  # name and agency: "gelesen von Ben Becker (Jobcenter …)"
    seq: int


class Typing(TypedDict):
    type: Literal["typing"]
    thread: str
    user: int
    name: str


def payload(message: Message, attachments: list[MessageAttachment] | None = None) -> MessagePayload:
    """What a reader of the thread sees of a message (a tombstone shows no body)."""
    files = message.attachments.all() if attachments is None else attachments
    return MessagePayload(
        id=str(message.pk),
        seq=message.seq,
        thread=str(message.thread_id),
        author=message.author_id,
        author_name=message.author.full_name if message.author else "",
        body="" if message.deleted_at else message.decrypt_field("body"),
        created_at=message.created_at.isoformat(),
        edited=message.edited_at is not None,
        deleted=message.deleted_at is not None,
        attachments=[]
        if message.deleted_at
        else [
            {"id": str(file.pk), "name": file.decrypt_field("name"), "size": file.size}
            for file in files
        ],
        reply_to=quote(message),
    )


QUOTE_CHARS = 200


def quote(message: Message) -> Quote | None:
    """The quote of the message MESSAGE answers (loaded with it: select_related
    "reply_to__author"); None for a message that answers none."""
    if message.reply_to_id is None or message.deleted_at:
        return None
    quoted = message.reply_to
    if quoted is None:
        return None
    if quoted.deleted_at:
        return Quote(id=str(quoted.pk), seq=quoted.seq, author_name="", body="", deleted=True)
    quoted.thread = message.thread  # the same thread: its key without a query
    body = quoted.decrypt_field("body")
    if len(body) > QUOTE_CHARS:
        body = body[:QUOTE_CHARS].rsplit(maxsplit=1)[0] + " …"
    return Quote(
        id=str(quoted.pk),
        seq=quoted.seq,
        author_name=quoted.author.full_name if quoted.author else "",
        body=body,
        deleted=False,
    )


# Threads


class NoAccess(ActionError):
    """The user may not (or no longer) use the thread."""


def open_referral_thread(referral: Referral, *, by: User) -> Thread:
    """Open the thread about a referral (a POST from the referral's side): made and recorded
    on first use, found afterwards. BY must be able to read the referral (the caller found
    it through referrals.access)."""
    return _open_thread(referral, by=by)


def open_tag_thread(tag: ApplicationTag, *, by: User) -> Thread:
    """Open the thread about an application tag (a POST from the project or the processing
    office): made and recorded on first use, found afterwards. BY must be able to read the
    tag (the caller found it through applications.access)."""
    return _open_thread(tag, by=by)


def _open_thread(subject: Referral | ApplicationTag, *, by: User) -> Thread:
    if isinstance(subject, Referral):
        kind, field = Thread.Kind.REFERRAL, "referral"
    else:
        kind, field = Thread.Kind.APPLICATION_TAG, "application_tag"
    with transaction.atomic():
        # The family row first (dienstweg.locks): an erasure in flight has then committed,
        # and a subject it removed is not found again.
        lock_family_row(subject.family_id)
        if not type(subject).objects.filter(pk=subject.pk).exists():
            raise NoAccess(_("Sie haben keinen Zugriff mehr auf diese Unterhaltung."))
        return _made_or_found(
            {field: subject}, kind=kind, family=subject.family, by=by, about=(field, subject.pk)
        )


def _made_or_found(
    lookup: dict[str, Any], *, kind: str, family: Family, by: User, about: tuple[str, Any]
) -> Thread:
    """The thread of LOOKUP, made on first use (recorded, with ABOUT as its detail); in the
    caller's transaction, after the family's row lock. The rule of posting is asked of the
    thread as made: a refusal rolls it back."""
    thread, created = Thread.objects.get_or_create(
        **lookup, defaults={"kind": kind, "family_id": family.pk}
    )
    if not may_use_thread(by, thread):
        raise NoAccess(_("Sie haben keinen Zugriff auf diese Unterhaltung."))
    if created:
        name, value = about
        record(by, THREAD_OPENED, target=thread, family=family, details={name: str(value)})
    return thread


def open_subject_thread(kind: str, subject_id: UUID, *, family: Family, by: User) -> Thread:
    """Open the thread about a registered subject (messaging/subjects.py: a
    Familienkonferenz) of FAMILY: made and recorded on first use, found afterwards. BY
    must be able to use it by the subject's rule (asked of the thread as made)."""
    if subject_of(kind) is None:
        raise ActionError(_("Zu diesem Gegenstand gibt es keine Unterhaltung."))
    with transaction.atomic():
        lock_family_row(family.pk)
        return _made_or_found(
            {"kind": kind, "subject_id": subject_id},
            kind=kind,
            family=family,
            by=by,
            about=(kind, subject_id),
        )


def open_direct_thread(colleague: User, *, by: User) -> Thread:
    """The direct thread between BY and a colleague (made with its own key on first use).
    A direct thread carries no family data."""
    if colleague.pk == by.pk or not colleague.is_active:
        raise ActionError(_("Mit dieser Person ist keine Direktnachricht möglich."))
    if not Membership.objects.filter(user=colleague).exists():
        raise ActionError(_("Mit dieser Person ist keine Direktnachricht möglich."))
    with transaction.atomic():
        existing = (
            Thread.objects.filter(kind=Thread.Kind.DIRECT, participants__user=by)
            .filter(participants__user=colleague)
            .first()
        )
        if existing is not None:
            return existing
        thread = Thread.objects.create(kind=Thread.Kind.DIRECT, data_key=vault.create_data_key())
        Participant.objects.bulk_create(
            [Participant(thread=thread, user=by), Participant(thread=thread, user=colleague)]
        )
        record(by, THREAD_OPENED, target=thread, details={"with": colleague.pk})
        return thread


# Messages


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool  # False: a resend of a message already stored (same client id)
    payload: MessagePayload  # what the readers were sent


def _check_body(body: str, *, attachments: int = 0) -> str:
    # A form sends line breaks as CRLF, the socket as LF: one break is one character, as
    # the page's counter has it.
    body = body.replace("\r\n", "\n").strip()
    if not body and not attachments:
        raise ActionError(_("Die Nachricht ist leer."))
    if len(body) > settings.MESSAGE_MAX_CHARS:
        raise ActionError(
            _("Die Nachricht ist zu lang (höchstens %(max)s Zeichen).")
            % {"max": settings.MESSAGE_MAX_CHARS}
        )
    return body


def post_message(
    thread: Thread,
    *,
    body: str,
    client_id: UUID,
    attachments: list[Upload] | None = None,
    reply_to: UUID | None = None,
    by: User,
    on_stored: Callable[[MessagePayload], None] | None = None,
) -> Posted:
    """Store a message in the thread, then tell every reader. Whether BY may still use
    the thread is checked under the thread's lock (NoAccess if not). A resend with the
    same client id stores nothing new and answers with the stored message. REPLY_TO: the
    id of the message of this thread it answers (quoted). Readers of the thread named
    with an @ before their full name are notified (without the text). ON_STORED gets the
    new message's payload before any reader is told (a socket's process keeps it there for
    its readers: messaging.kept)."""
    uploads = attachments or []
    if len(uploads) > MAX_ATTACHMENTS:
        raise ActionError(_("Höchstens fünf Anhänge je Nachricht."))
    kinds = [check_upload(upload) for upload in uploads]
    body = _check_body(body, attachments=len(uploads))
    try:
        return _post(thread, body, client_id, uploads, kinds, reply_to, by, on_stored)
    except IntegrityError:  # the same client id, sent to another thread at the same moment
        raise ActionError(_("Diese Kennung gehört zu einer anderen Nachricht.")) from None


def _post(
    thread: Thread,
    body: str,
    client_id: UUID,
    uploads: list[Upload],
    kinds: list[str],
    reply_to: UUID | None,
    by: User,
    on_stored: Callable[[MessagePayload], None] | None,
) -> Posted:
    with transaction.atomic():
        # The thread's row lock numbers its messages in commit order, and makes a
        # concurrent resend wait here, then find the first.
        locked = _THREAD_LOCK.rows(thread_id=thread.pk)
        # THREAD may be a row a socket has kept: gone meanwhile (an erasure), it is refused
        # as any thread one may not use.
        if not locked or not may_use_thread(by, thread):
            raise NoAccess(_("Sie haben keinen Zugriff mehr auf diese Unterhaltung."))
        [(last_seq,)] = locked
        sent_before = _SENT_BEFORE.rows(author_id=by.pk, client_id=client_id)
        if sent_before:
            existing = Message.objects.get(pk=sent_before[0][0])
            if existing.thread_id != thread.pk:
                raise ActionError(_("Diese Kennung gehört zu einer anderen Nachricht."))
            existing.thread = thread
            return Posted(existing, created=False, payload=payload(existing))
        quoted = None
        if reply_to is not None:
            quoted = (
                Message.objects.filter(pk=reply_to, thread=thread, deleted_at__isnull=True)
                .select_related("author")
                .first()
            )
            if quoted is None:
                raise ActionError(_("Die zitierte Nachricht gibt es hier nicht (mehr)."))
        now = timezone.now()
        seq = last_seq + 1
        _number(thread, seq, now)
        message = Message(
            thread=thread,
            seq=seq,
            author=by,
            client_id=client_id,
            created_at=now,
            reply_to=quoted,
        )
        message.encrypt_field("body", body)
        message.save(force_insert=True)
        files = []
        for upload, content_type in zip(uploads, kinds, strict=True):
            file = MessageAttachment(
                message=message, content_type=content_type, size=len(upload.content)
            )
            file.encrypt_field("name", upload.name)
            file.encrypt_field("content", upload.content)
            file.save(force_insert=True)
            files.append(file)
        readers = thread_readers(thread)
        _take_part(thread, readers, by, seq, now)
        mentioned = _mentioned(body, readers, by)
        details: dict[str, Any] = {
            "thread": str(thread.pk),
            "seq": message.seq,
            "attachments": len(files),
        }
        if quoted is not None:
            details["reply_to"] = quoted.seq
        if mentioned:
            details["mentions"] = len(mentioned)  # whom: the notifications say
            # Who, where, and a link: never the text (the e-mail leaves the platform).
            notify(
                mentioned,
                kind="message.mentioned",
                title=gettext_lazy("Sie wurden in einer Unterhaltung erwähnt"),
                family_ref=thread.family.reference if thread.family is not None else "",
                url=thread_url(thread),
            )
        record(by, MESSAGE_POSTED, target=message, family=thread.family, details=details)
        sent = payload(message, files)
        if on_stored is not None:
            on_stored(sent)
        events.publish(readers, MessageChanged(type="message.new", message=str(message.pk)))
    return Posted(message, created=True, payload=sent)


# The two writes of every message besides its row and its event, written out once: built
# with the ORM, they and the participants' bulk_create held the socket's interpreter 5 % of
# the time at 20 messages/s with read frames (py-spy --gil, bench/step4.py). The tables'
# names come from the models; the values go as parameters.
_NUMBER = (
    f'UPDATE "{Thread._meta.db_table}" SET "last_seq" = %s, "last_message_at" = %s'  # noqa: S608
    ' WHERE "id" = %s'
)
_PARTICIPANT = Participant._meta.db_table
_TAKE_PART = (
    f'INSERT INTO "{_PARTICIPANT}" ("thread_id", "user_id", "read_seq", "read_at")'  # noqa: S608
    ' VALUES {rows} ON CONFLICT ("thread_id", "user_id") DO UPDATE SET'
    ' "read_seq" = excluded."read_seq", "read_at" = excluded."read_at"'
    f' WHERE "{_PARTICIPANT}"."read_seq" < excluded."read_seq"'
)


def _number(thread: Thread, seq: int, now: datetime) -> None:
    """The thread's newest message is number SEQ, posted NOW."""
    thread_id = Thread._meta.pk.get_db_prep_value(thread.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(_NUMBER, [seq, connection.ops.adapt_datetimefield_value(now), thread_id])


def _take_part(thread: Thread, readers: list[int], author: User, seq: int, now: datetime) -> None:
    """Every reader gets a participant row (her overview, her marker), in one statement; the
    author has read her own message: her marker moves to SEQ (never back)."""
    thread_id = Thread._meta.pk.get_db_prep_value(thread.pk, connection)
    at = connection.ops.adapt_datetimefield_value(now)
    params: list[Any] = []
    for pk in sorted({*readers, author.pk}):
        mine = pk == author.pk
        params += [thread_id, pk, seq if mine else 0, at if mine else None]
    rows = ", ".join(["(%s, %s, %s, %s)"] * (len(params) // 4))
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_PART.format(rows=rows), params)


# Asked for every message, compiled once (dienstweg/compiled.py): building these two with
# the ORM, and reading the locked thread as a model, held the socket's interpreter 5 % of
# the time at 20 messages/s with read frames (py-spy --gil, bench/step4.py).
_THREAD_LOCK = CompiledQuery(
    lambda thread_id: (
        Thread.objects.select_for_update(of=("self",))
        .filter(pk=thread_id)
        .values_list("last_seq")[:1]
    ),
    thread_id=SENTINEL_UUID,
    prepared=True,
)
_SENT_BEFORE = CompiledQuery(
    lambda author_id, client_id: Message.objects.filter(
        author_id=author_id, client_id=client_id
    ).values_list("pk")[:1],
    author_id=SENTINEL_ID,
    client_id=SENTINEL_UUID,
    prepared=True,
)


def _mentioned(body: str, readers: list[int], by: User) -> list[User]:
    """The readers of the thread (never the author) the text names as "@Full Name"."""
    if "@" not in body:
        return []
    people = User.objects.filter(pk__in=readers, is_active=True).exclude(pk=by.pk)
    return [
        person
        for person in people
        if person.full_name
        and re.search("@" + re.escape(person.full_name) + r"(?!\w)", body, re.IGNORECASE)
    ]


def _own(message: Message, by: User) -> Message:
    locked = (
        Message.objects.select_for_update(of=("self",))
        .select_related("thread__family__data_key", "thread__data_key", "author")
        .get(pk=message.pk)
    )
    if locked.author_id != by.pk:
        raise ActionError(_("Nur die Verfasserin oder der Verfasser kann das ändern."))
    if locked.deleted_at is not None:
        raise ActionError(_("Die Nachricht ist gelöscht."))
    if not may_use_thread(by, locked.thread):
        raise ActionError(_("Sie haben keinen Zugriff mehr auf diese Unterhaltung."))
    return locked


def edit_message(message: Message, *, body: str, by: User) -> Message:
    """Change the text of one's own message; readers see it marked as edited."""
    body = _check_body(body)
    with transaction.atomic():
        locked = _own(message, by)
        locked.encrypt_field("body", body)
        locked.edited_at = timezone.now()
        locked.save(update_fields=["body_enc", "edited_at"])
        _record_change(locked, MESSAGE_EDITED, by)
    return locked


def delete_message(message: Message, *, by: User) -> Message:
    """Delete one's own message: its text and files are gone, a tombstone stays."""
    with transaction.atomic():
        locked = _own(message, by)
        locked.body_enc = b""
        locked.deleted_at = timezone.now()
        locked.save(update_fields=["body_enc", "deleted_at"])
        locked.attachments.all().delete()
        _record_change(locked, MESSAGE_DELETED, by)
    return locked


def _record_change(message: Message, action: str, by: User) -> None:
    thread = message.thread
    record(
        by,
        action,
        target=message,
        family=thread.family,
        details={"thread": str(thread.pk), "seq": message.seq},
    )
    readers = thread_readers(thread)
    # The replies quoting it show it as it is now: they change with it.
    replies = Message.objects.filter(reply_to=message).values_list("pk", flat=True)
    for changed in [message.pk, *replies]:
        events.publish(readers, MessageChanged(type="message.updated", message=str(changed)))


# Reading


def messages_after(
    thread: Thread, *, after: int, by: User, mark: bool = False
) -> list[MessagePayload]:
    """The messages of the thread after sequence number AFTER (at most SYNC_LIMIT, oldest
    first), recorded as read by BY: what a page shows or a reconnecting socket missed.
    With MARK (the page), BY's read marker moves to the last of them as well."""
    rows = list(
        _with_parts(thread.messages.filter(seq__gt=max(after, 0))).order_by("seq")[:SYNC_LIMIT]
    )
    return _read(thread, rows, by=by, mark=mark)


def messages_before(thread: Thread, *, before: int, count: int, by: User) -> list[MessagePayload]:
    """The COUNT messages of the thread before sequence number BEFORE, oldest first,
    recorded as read by BY: a page of older messages. Her read marker stays where it is
    (she has gone back, not read on)."""
    newest_first = _with_parts(thread.messages.filter(seq__lt=before)).order_by("-seq")[:count]
    return _read(thread, list(reversed(newest_first)), by=by, mark=False)


def _with_parts(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.select_related("author", "reply_to__author")


def _files_of(rows: list[Message]) -> dict[UUID, list[MessageAttachment]]:
    """The files of ROWS as listed_files lists them, in one query. Not through
    prefetch_related: its queryset per message cost 1.4 ms on a page of 40 messages, most
    of which have no file."""
    by_id = {row.pk: row for row in rows}
    files: dict[UUID, list[MessageAttachment]] = {}
    for file in listed_files().filter(message__in=list(by_id)):
        file.message = by_id[file.message_id]  # its thread's key without a query
        files.setdefault(file.message_id, []).append(file)
    return files


def _read(thread: Thread, rows: list[Message], *, by: User, mark: bool) -> list[MessagePayload]:
    for row in rows:
        row.thread = thread  # the encryption key without a query per message
    files = _files_of(rows)  # no query for none: an empty IN is answered by Django
    if rows:
        with transaction.atomic():
            record(
                by,
                MESSAGE_READ,
                target=thread,
                family=thread.family,
                details={"thread": str(thread.pk), "from": rows[0].seq, "to": rows[-1].seq},
            )
            if mark:
                _advance_marker(thread, by, rows[-1].seq)
    return [payload(row, files.get(row.pk, [])) for row in rows]


def record_attachment_download(file: MessageAttachment, *, by: User) -> None:
    """Record that BY downloaded an attachment of a message she may read."""
    thread = file.message.thread
    with transaction.atomic():
        record(
            by,
            MESSAGE_ATTACHMENT_DOWNLOADED,
            target=file.message,
            family=thread.family,
            details={"thread": str(thread.pk), "attachment": str(file.pk)},
        )


@dataclass(frozen=True)
class _Marker:
    """A reader's marker row, locked, with what her read frame tells the others."""

    row_id: int
    read_seq: int
    label: str | None = None  # her name and agency, for "gelesen von …"
    author_at: int | None = None  # the author of the message the frame names, if any


def _advance_marker(
    thread: Thread, user: User, seq: int, marker: _Marker | None = None
) -> int | None:
    """Move the user's read marker forward to SEQ and tell those whose pages show it: the
    marker before, or None if it was already there. MARKER: her row, already locked."""
    if marker is None:
        row, _created = Participant.objects.select_for_update().get_or_create(
            thread=thread, user=user
        )
        marker = _Marker(row.pk, row.read_seq)
    before = marker.read_seq
    if seq <= before:
        return None
    _set_marker(marker.row_id, seq)
    # A page names a reader under the latest own message she has read (live.js): only the
    # authors of the messages now read, and her own tabs (their unread counts), show the
    # marker moved; with five readers a read frame told five sockets, now two.
    if seq == before + 1 and marker.author_at is not None:
        authors = {marker.author_at}
    else:
        authors = {pk for (pk,) in _AUTHORS.rows(thread_id=thread.pk, after=before, up_to=seq)}
    told = [pk for pk in thread_readers(thread) if pk == user.pk or pk in authors]
    events.publish(
        told,
        ReadUpdated(
            type="read.updated",
            thread=str(thread.pk),
            user=user.pk,
            name=user.full_name,
            label=marker.label or label_of(user.pk) or user.full_name,
            seq=seq,
        ),
    )
    return before


def _set_marker(row_id: int, seq: int) -> None:
    """The marker's UPDATE written out once: a tab sends a read frame for every message it
    shows, and building the UPDATE with the ORM for each took 4 % of the socket's
    interpreter time at 20 messages/s (py-spy --gil, bench/step4.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SET_MARKER, [seq, connection.ops.adapt_datetimefield_value(timezone.now()), row_id]
        )


# The table's name from the model; the values go as parameters.
_SET_MARKER = (
    f'UPDATE "{Participant._meta.db_table}" SET "read_seq" = %s, "read_at" = %s'  # noqa: S608
    ' WHERE "id" = %s'
)


# The reader's marker locked, with the thread's last number, her name and agency and the
# author of the message the frame names, in one query compiled once (a tab sends a read
# frame for every message it shows: building this query took a tenth of the socket's
# interpreter time at 20 messages/s, py-spy on bench/step4.py).
_MARKER = CompiledQuery(
    lambda thread_id, user_id, seq: (
        Participant.objects.select_for_update(of=("self",))
        .filter(thread_id=thread_id, user_id=user_id)
        .annotate(
            agency_name=first_agency("user_id"),
            author_at=Subquery(
                Message.objects.filter(thread_id=OuterRef("thread_id"), seq=seq).values(
                    "author_id"
                )[:1]
            ),
        )
        .values_list(
            "pk", "read_seq", "thread__last_seq", "user__full_name", "agency_name", "author_at"
        )[:1]
    ),
    thread_id=SENTINEL_UUID,
    user_id=SENTINEL_ID,
    seq=SENTINEL_NUMBER,
    prepared=True,
)
# Who wrote the messages after one number up to another (a marker moved further than one).
_AUTHORS = CompiledQuery(
    lambda thread_id, after, up_to: (
        Message.objects.filter(thread_id=thread_id, seq__gt=after, seq__lte=up_to)
        .exclude(author=None)
        .values_list("author_id")
        .distinct()
    ),
    thread_id=SENTINEL_UUID,
    after=SENTINEL_NUMBER,
    up_to=SENTINEL_NUMBER - 1,
    prepared=True,
)


def mark_read(thread: Thread, *, seq: int, by: User) -> int:
    """Record that BY has read the thread up to SEQ (the "gelesen" marker) and tell those
    whose pages show it (_advance_marker); returns the sequence number marked."""
    with transaction.atomic():
        found = _MARKER.rows(thread_id=thread.pk, user_id=by.pk, seq=seq)
        marker = None
        if found:
            row_id, read_seq, last, full_name, agency, author_at = found[0]
            marker = _Marker(row_id, read_seq, label(full_name, agency), author_at)
        else:
            last = Thread.objects.filter(pk=thread.pk).values_list("last_seq", flat=True).get()
        seq = min(max(seq, 0), last)
        before = _advance_marker(thread, by, seq, marker)
        if before is not None:
            record(
                by,
                MESSAGE_READ,
                target=thread,
                family=thread.family,
                details={"thread": str(thread.pk), "from": before + 1, "to": seq},
            )
    return seq


def read_markers(thread: Thread) -> dict[int, int]:
    """Each participant's read marker (user id: sequence number)."""
    return dict(
        Participant.objects.filter(thread=thread, read_seq__gt=0).values_list("user_id", "read_seq")
    )


def reader_labels(thread: Thread) -> dict[int, str]:
    """Name and agency of each participant who has read something: "gelesen von …"."""
    return labels_of(Participant.objects.filter(thread=thread, read_seq__gt=0).values("user_id"))


@dataclass(frozen=True)
class People:
    """Who is in a thread as its page shows them: each participant's read marker (user id:
    number) and her label for "gelesen von …", and whom the reader may @-mention."""

    markers: dict[int, int]
    labels: dict[int, str]
    mentionable: list[dict[str, str]]


def thread_people(thread: Thread, *, by: User) -> People:
    """The thread's People for BY: read_markers, reader_labels and whom she may mention
    (its readers but herself, as post_message notifies them), with the names of both
    kinds of people read in one query."""
    markers = read_markers(thread)
    readers = [pk for pk in thread_readers(thread) if pk != by.pk]
    people = people_of({*markers, *readers})  # by name
    return People(
        markers=markers,
        labels={pk: label(name, agency) for pk, name, agency in people if pk in markers},
        mentionable=[
            {"name": name, "label": label(name, agency)}
            for pk, name, agency in people
            if name and pk in readers
        ],
    )


def announce_typing(thread: Thread, *, by: User) -> None:
    """Tell the other readers that BY is typing (not stored, not audited: no content)."""
    readers = [pk for pk in thread_readers(thread) if pk != by.pk]
    events.send_now(
        readers, Typing(type="typing", thread=str(thread.pk), user=by.pk, name=by.full_name)
    )


# Consent ended


def forget_after_revocation(*, consent: Consent, by: User) -> None:
    """Handler of dienstweg.hooks.consent_revoked, in the revoking transaction: the
    recipients' overviews drop the family's tag threads, their sockets re-check."""
    recipients = consent.recipients.values("pk")
    Participant.objects.filter(
        thread__family=consent.family_id,
        thread__kind=Thread.Kind.APPLICATION_TAG,
        thread__application_tag__processing_agency__in=recipients,
    ).exclude(user__memberships__agency_id=consent.family.owner_id).delete()
    members = Membership.objects.filter(agency__in=recipients).values_list("user_id", flat=True)
    events.access_revoked(members)


# Erasure (GDPR Art. 17)


@dataclass(frozen=True)
class ThreadErasure:
    """What erase_family_threads removed (counts)."""

    threads: int
    messages: int
    attachments: int


def erase_family_threads(family: Family, *, by: User | str | None) -> ThreadErasure:
    """Delete the family's referral and tag threads with their messages and files; the
    sockets of their participants and readers re-check after commit (access.revoked)."""
    with transaction.atomic():
        threads = Thread.objects.filter(family=family)
        participants = Participant.objects.filter(thread__in=threads)
        users = set(participants.values_list("user_id", flat=True))
        for thread in threads.select_related(*THREAD_RELATED):
            users.update(thread_readers(thread))
        attachments = MessageAttachment.objects.filter(message__thread__in=threads).count()
        messages = Message.objects.filter(thread__in=threads).count()
        count = threads.count()
        threads.delete()
        record(
            by,
            FAMILY_THREADS_ERASED,
            target=family,
            family=family,
            purpose="Art. 17 DSGVO",
            details={"threads": count, "messages": messages, "attachments": attachments},
        )
        events.access_revoked(users)
        return ThreadErasure(count, messages, attachments)


def forget_after_restriction(*, family: Family, by: User) -> None:
    """Handler of dienstweg.hooks.processing_restricted, in the restricting transaction:
    the processing offices' sockets re-check the family's tag threads (the referrals'
    receiver does the same for its referral threads). Nothing is deleted: the access rules
    hide the threads while restricted, and lifting shows them again."""
    offices = ApplicationTag.objects.filter(family=family).values("processing_agency_id")
    members = Membership.objects.filter(agency_id__in=offices).values_list("user_id", flat=True)
    events.access_revoked(members)


# Offline e-mail


def send_unread_notices(*, now: Any = None) -> int:
    """E-mail each participant who has not read a thread's new messages for a while, at
    most once per thread and hour (title, reference and link only). Returns the count."""
    now = now or timezone.now()
    quiet = now - timedelta(minutes=settings.MESSAGE_NOTICE_AFTER_MINUTES)
    hour_ago = now - timedelta(hours=1)
    pending = (
        Participant.objects.filter(
            thread__last_message_at__lt=quiet,
            user__is_active=True,
        )
        .exclude(read_seq__gte=F("thread__last_seq"))
        .exclude(emailed_at__gte=hour_ago)
        .select_related("thread__family", "thread__referral", "thread__application_tag", "user")
        .order_by("id")
    )
    sent = 0
    for participant in pending.iterator(chunk_size=500):
        thread = participant.thread
        if participant.emailed_at and participant.emailed_at >= (thread.last_message_at or now):
            continue
        if not may_use_thread(participant.user, thread):
            continue
        with transaction.atomic():
            notify(
                [participant.user],
                kind="message.unread",
                title=gettext_lazy("Neue Nachrichten in einer Unterhaltung"),
                family_ref=thread.family.reference if thread.family is not None else "",
                url=thread_url(thread),
            )
            Participant.objects.filter(pk=participant.pk).update(emailed_at=now)
        sent += 1
    return sent


def thread_url(thread: Thread) -> str:
    return reverse("thread_detail", args=[thread.pk])
