"""messaging.actions: messages encrypted at rest with the family's key (or a direct thread's
own), a retried send stored once, every stored and read message audited without content,
edits and deletions by the author only (a tombstone stays), attachments by the referral
rules, and at most one e-mail per thread and hour to a reader who has not read."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.actions import ActionError
from dienstweg.models import Family, Membership, Notification
from dienstweg.uploads import Upload
from dienstweg.vault import VaultError
from messaging import actions
from messaging.models import Message, MessageAttachment, Participant, Thread
from tests.conftest import Network, make_staff

SECRET = "Frau Yılmaz hat den Arbeitsvertrag unterschrieben"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], dict[str, Any]]]:
    """The real-time events sent (after commit), with their recipients."""
    sent: list[tuple[list[int], dict[str, Any]]] = []
    monkeypatch.setattr(
        "dienstweg.events.send_now", lambda user_ids, event: sent.append((user_ids, event))
    )
    return sent


def post(thread: Thread, user: Any, body: str = SECRET, **kwargs: Any) -> actions.Posted:
    return actions.post_message(thread, body=body, client_id=uuid.uuid4(), by=user, **kwargs)


def raw_body(message: Message) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT body_enc FROM messaging_message WHERE id = %s", [message.pk.hex])
        row = cursor.fetchone()
        if row is None:  # PostgreSQL stores the uuid natively
            cursor.execute("SELECT body_enc FROM messaging_message WHERE id = %s", [message.pk])
            row = cursor.fetchone()
    return bytes(row[0])


@pytest.mark.django_db(transaction=True)
def test_the_body_is_encrypted_at_rest_and_bound_to_its_row(
    network: Network, thread: Thread, committed: None
) -> None:
    first = post(thread, network.anna).message
    second = post(thread, network.anna, body="Zweite").message
    assert SECRET.encode() not in raw_body(first)
    assert Message.objects.get(pk=first.pk).decrypt_field("body") == SECRET
    # A ciphertext copied into another row does not decrypt there.
    Message.objects.filter(pk=second.pk).update(body_enc=raw_body(first))
    with pytest.raises(VaultError):
        Message.objects.get(pk=second.pk).decrypt_field("body")


def test_erasing_the_family_key_makes_its_messages_unreadable(
    network: Network, thread: Thread, family: Family
) -> None:
    message = post(thread, network.anna).message
    core.erase_family_key(family, by=None, reason="Art. 17 DSGVO")
    with pytest.raises(VaultError):
        Message.objects.select_related("thread__family__data_key").get(pk=message.pk).decrypt_field(
            "body"
        )


def test_messages_are_numbered_per_thread_and_a_resend_is_stored_once(
    network: Network, thread: Thread
) -> None:
    client_id = uuid.uuid4()
    first = actions.post_message(thread, body="a", client_id=client_id, by=network.anna)
    again = actions.post_message(thread, body="a", client_id=client_id, by=network.anna)
    second = post(thread, network.ben)
    assert (first.created, again.created) == (True, False)
    assert again.message.pk == first.message.pk
    assert [first.message.seq, second.message.seq] == [1, 2]
    assert Message.objects.count() == 2


def test_posting_is_audited_without_content_and_publishes_to_the_readers(
    network: Network,
    thread: Thread,
    family: Family,
    published: list,
    django_capture_on_commit_callbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = post(thread, network.anna).message
    event = AuditEvent.objects.get(action="message.posted")
    assert (event.family_ref, event.target_id) == (family.reference, str(message.pk))
    assert SECRET not in str(event.details) and "Yılmaz" not in str(event.details)
    [(recipients, new)] = published
    assert sorted(recipients) == sorted([network.anna.pk, network.ben.pk])
    # Only the id travels: each socket reads the text for its own user (test_channel_layer.py).
    assert new == {"type": "message.new", "message": str(message.pk)}


def test_reading_is_audited_with_the_range_read(network: Network, thread: Thread) -> None:
    for n in range(3):
        post(thread, network.anna, body=f"m{n}")
    shown = actions.messages_after(thread, after=1, by=network.ben)
    assert [m["seq"] for m in shown] == [2, 3]
    event = AuditEvent.objects.filter(action="message.read").latest("id")
    assert event.details == {"thread": str(thread.pk), "from": 2, "to": 3}
    before = timezone.now()
    assert actions.mark_read(thread, seq=99, by=network.ben) == 3  # never past the end
    assert actions.mark_read(thread, seq=2**62, by=network.ben) == 3  # nor past a number's type
    marker = Participant.objects.get(thread=thread, user=network.ben)
    assert marker.read_seq == 3
    assert marker.read_at is not None and before <= marker.read_at <= timezone.now()
    # Moved back? Never: an older frame leaves the marker where it is.
    assert actions.mark_read(thread, seq=1, by=network.ben) == 1
    assert Participant.objects.get(pk=marker.pk).read_seq == 3


def test_posting_gives_every_reader_a_marker_and_moves_only_the_authors(
    network: Network, thread: Thread
) -> None:
    post(thread, network.anna, body="m1")
    markers = dict(Participant.objects.filter(thread=thread).values_list("user_id", "read_seq"))
    assert markers == {network.anna.pk: 1, network.ben.pk: 0}
    assert Participant.objects.get(thread=thread, user=network.ben).read_at is None
    post(thread, network.anna, body="m2")
    actions.mark_read(thread, seq=2, by=network.ben)
    ben_read_at = Participant.objects.get(thread=thread, user=network.ben).read_at
    before = timezone.now()
    post(thread, network.anna, body="m3")
    anna = Participant.objects.get(thread=thread, user=network.anna)
    ben = Participant.objects.get(thread=thread, user=network.ben)
    assert (anna.read_seq, ben.read_seq) == (3, 2)  # a reader's marker stays where she left it
    assert anna.read_at is not None and before <= anna.read_at <= timezone.now()
    assert ben.read_at == ben_read_at
    assert Thread.objects.get(pk=thread.pk).last_seq == 3


def test_a_moved_marker_is_told_to_the_authors_it_passes_and_the_readers_own_tabs(
    network: Network, thread: Thread, published: list, django_capture_on_commit_callbacks
) -> None:
    carl, dora = (
        make_staff(f"{name}.jc@example.org", name, network.jobcenter, Membership.Role.CASEWORKER)
        for name in ("Carla", "Dora")
    )
    post(thread, network.anna, body="m1")
    post(thread, carl, body="m2")
    post(thread, network.anna, body="m3")

    def told(reading: Callable[[], object]) -> list[int]:
        published.clear()
        with django_capture_on_commit_callbacks(execute=True):
            reading()
        [recipients] = [r for r, e in published if e["type"] == "read.updated"]
        return sorted(recipients)

    # One message further: its author, and the reader herself (her other tabs).
    assert told(lambda: actions.mark_read(thread, seq=1, by=network.ben)) == sorted(
        [network.anna.pk, network.ben.pk]
    )
    # Past several: each of their authors; Dora, who wrote none of them, is not told.
    assert told(lambda: actions.mark_read(thread, seq=3, by=network.ben)) == sorted(
        [network.anna.pk, carl.pk, network.ben.pk]
    )
    assert told(lambda: actions.mark_read(thread, seq=2, by=dora)) == sorted(
        [network.anna.pk, carl.pk, dora.pk]
    )
    # Reading on in the page moves the marker the same way.
    assert told(lambda: actions.messages_after(thread, after=2, by=dora, mark=True)) == sorted(
        [network.anna.pk, dora.pk]
    )


def test_only_the_author_edits_and_deletes_and_a_tombstone_stays(
    network: Network, thread: Thread, published: list, django_capture_on_commit_callbacks
) -> None:
    message = post(
        thread, network.anna, attachments=[Upload(name="vertrag.pdf", content=PDF)]
    ).message
    with pytest.raises(ActionError):
        actions.edit_message(message, body="von Ben", by=network.ben)
    with pytest.raises(ActionError):
        actions.delete_message(message, by=network.ben)
    with django_capture_on_commit_callbacks(execute=True):
        edited = actions.edit_message(message, body="korrigiert", by=network.anna)
        deleted = actions.delete_message(message, by=network.anna)
    assert (edited.decrypt_field("body"), edited.edited_at is not None) == ("korrigiert", True)
    row = Message.objects.get(pk=message.pk)
    assert (bytes(row.body_enc), row.deleted_at is not None) == (b"", True)
    assert not MessageAttachment.objects.exists()
    assert actions.payload(deleted)["deleted"] and actions.payload(deleted)["body"] == ""
    with pytest.raises(ActionError):
        actions.edit_message(message, body="wieder da", by=network.anna)
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="message.e")] == [
        "message.edited"
    ]
    assert AuditEvent.objects.filter(action="message.deleted").count() == 1
    assert [event["type"] for _to, event in published[-2:]] == ["message.updated"] * 2


@pytest.mark.parametrize(
    ("name", "content"),
    [("vertrag.pdf", b"MZ\x90\x00 not a pdf"), ("../../etc/passwd.pdf", PDF), ("bild.png", PDF)],
)
def test_a_bad_attachment_is_refused_and_nothing_is_stored(
    network: Network, thread: Thread, name: str, content: bytes
) -> None:
    with pytest.raises(ActionError):
        post(thread, network.anna, attachments=[Upload(name=name, content=content)])
    assert not Message.objects.exists() and not MessageAttachment.objects.exists()


def test_empty_and_too_long_messages_are_refused(network: Network, thread: Thread) -> None:
    for body in ("", "   ", "x" * 4001):
        with pytest.raises(ActionError):
            post(thread, network.anna, body=body)
    assert not Message.objects.exists()


def test_an_outsider_cannot_post(network: Network, thread: Thread) -> None:
    for outsider in (network.dirk, network.dora, network.clara):
        with pytest.raises(ActionError):
            post(thread, outsider)
    assert not Message.objects.exists()


def test_a_direct_thread_has_its_own_key_and_no_family(network: Network) -> None:
    thread = actions.open_direct_thread(network.ben, by=network.anna)
    assert actions.open_direct_thread(network.anna, by=network.ben) == thread
    assert thread.family_id is None and thread.data_key_id is not None
    message = post(thread, network.anna, body="Kurze Frage zum Termin").message
    assert raw_body(message) and b"Termin" not in raw_body(message)
    with pytest.raises(ActionError):
        post(thread, network.dirk)
    event = AuditEvent.objects.get(action="message.posted")
    assert event.family_ref == ""
    with pytest.raises(ActionError):
        actions.open_direct_thread(network.anna, by=network.anna)


def test_an_unread_thread_sends_one_notice_per_hour_without_content(
    network: Network, thread: Thread, family: Family, settings, send_outbox
) -> None:
    settings.MESSAGE_NOTICE_AFTER_MINUTES = 10
    post(thread, network.anna)
    now = timezone.now()
    assert actions.send_unread_notices(now=now) == 0  # too soon: Ben may be reading
    later = now + timedelta(minutes=11)
    assert actions.send_unread_notices(now=later) == 1
    post(thread, network.anna, body="Noch eine")
    Thread.objects.filter(pk=thread.pk).update(last_message_at=later + timedelta(minutes=1))
    assert actions.send_unread_notices(now=later + timedelta(minutes=20)) == 0  # within the hour
    assert actions.send_unread_notices(now=later + timedelta(minutes=61)) == 1
    notices = Notification.objects.filter(kind="message.unread")
    assert {n.user_id for n in notices} == {network.ben.pk}
    texts = " ".join(f"{m.subject} {m.body}" for m in send_outbox())
    assert family.reference in texts
    assert SECRET not in texts and "Yılmaz" not in texts and "Noch eine" not in texts


def test_a_reader_who_has_read_gets_no_notice(network: Network, thread: Thread) -> None:
    message = post(thread, network.anna).message
    actions.mark_read(thread, seq=message.seq, by=network.ben)
    assert actions.send_unread_notices(now=timezone.now() + timedelta(hours=2)) == 0
