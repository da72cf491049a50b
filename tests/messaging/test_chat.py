"""Messaging as people know it from chat tools (issue 15): own messages set apart, who
read what by name and agency, the same actions on a message live and after a reload,
direct conversations named by the other person, replies with a quote, @-mentions that
notify without content, long texts folded; the thread page's queries stay constant."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix

from audit.models import AuditEvent
from dienstweg.actions import ActionError
from dienstweg.models import Family, Notification
from dienstweg.uploads import Upload
from messaging import actions, consumers, views
from messaging.models import Participant, Thread
from messaging.rendering import FOLD_CHARS, url_with_id
from tests.conftest import Network, make_staff, verified_client

JOBCENTER = "Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck"
PROJECT = "Familiencoaching Gladbeck"  # the agency's own bracket left out


def post(thread: Thread, by: Any, body: str = "Hallo", **kwargs: Any) -> actions.Posted:
    return actions.post_message(thread, body=body, client_id=uuid.uuid4(), by=by, **kwargs)


def page_of(user: Any, thread: Thread) -> str:
    response = verified_client(user).get(reverse("thread_detail", args=[thread.pk]))
    assert response.status_code == 200
    return response.content.decode()


def item_of(html: str, message_id: Any) -> str:
    """The message's list item as the page has it."""
    match = re.search(rf'<li class="message[^"]*" id="m-{message_id}".*?\n</li>', html, re.S)
    assert match, f"message {message_id} not on the page"
    return match.group(0)


def without_tokens(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "TOKEN", html).strip()


def test_a_message_offers_the_same_markup_and_actions_live_as_after_a_reload(
    network: Network, thread: Thread
) -> None:
    message = post(thread, network.anna, "Termin am Dienstag?").message
    for reader in (network.anna, network.ben):
        live = consumers._readable(reader, str(message.pk))
        assert live is not None
        reloaded = item_of(page_of(reader, thread), message.pk)
        assert without_tokens(live["html"]) == without_tokens(reloaded)
    own = item_of(page_of(network.anna, thread), message.pk)
    assert "Bearbeiten oder löschen" in own and "Antworten" in own and 'class="message own"' in own
    assert '<strong class="author">Sie</strong>' in own
    other = item_of(page_of(network.ben, thread), message.pk)
    assert "Bearbeiten oder löschen" not in other and "Antworten" in other
    assert '<strong class="author">Anna Albers</strong>' in other
    assert 'class="message"' in other


def test_readers_are_named_with_their_agency(network: Network, thread: Thread) -> None:
    post(thread, network.anna)
    page_of(network.ben, thread)  # Ben reads
    labels = actions.reader_labels(thread)
    assert labels[network.ben.pk] == f"Ben Becker ({JOBCENTER})"
    assert labels[network.anna.pk] == f"Anna Albers ({PROJECT})"
    assert f"Ben Becker ({JOBCENTER})" in page_of(network.anna, thread)  # reader-labels JSON


def test_a_direct_conversation_is_named_by_the_other_person_and_agency(
    network: Network,
) -> None:
    direct = actions.open_direct_thread(network.ben, by=network.anna)
    post(direct, network.anna, "Kurze Frage")
    anna = verified_client(network.anna)
    overview = anna.get(reverse("thread_list")).content.decode()
    assert f"Ben Becker ({JOBCENTER})" in overview
    header = re.search(r"<h1>(.*?)</h1>", page_of(network.anna, direct), re.S)
    assert header and header.group(1) == f"Direktnachricht mit Ben Becker ({JOBCENTER})"
    ben_overview = verified_client(network.ben).get(reverse("thread_list")).content.decode()
    assert f"Anna Albers ({PROJECT})" in ben_overview


def test_a_reply_quotes_its_message_as_it_is_now(network: Network, thread: Thread) -> None:
    asked = post(thread, network.anna, "Kann Frau Y. am Dienstag?").message
    answer = post(thread, network.ben, "Ja, um 10 Uhr.", reply_to=asked.pk)
    assert answer.message.reply_to_id == asked.pk
    assert answer.payload["reply_to"] == {
        "id": str(asked.pk),
        "seq": asked.seq,
        "author_name": "Anna Albers",
        "body": "Kann Frau Y. am Dienstag?",
        "deleted": False,
    }
    quoted = item_of(page_of(network.anna, thread), answer.message.pk)
    assert '<blockquote class="quote">' in quoted and "Kann Frau Y. am Dienstag?" in quoted
    [posted] = AuditEvent.objects.filter(action="message.posted", actor_id=network.ben.pk)
    assert posted.details["reply_to"] == asked.seq
    assert "Dienstag" not in str(posted.details)

    # Deleted, the quoted message shows nothing of itself in the reply.
    actions.delete_message(asked, by=network.anna)
    quoted = item_of(page_of(network.ben, thread), answer.message.pk)
    assert "Antwort auf eine gelöschte Nachricht." in quoted
    assert "Dienstag" not in quoted and "Anna Albers" not in quoted
    live = consumers._readable(network.ben, str(answer.message.pk))
    assert live is not None and "Dienstag" not in live["html"]


def test_a_reply_to_a_message_of_another_thread_or_a_deleted_one_is_refused(
    network: Network, thread: Thread
) -> None:
    direct = actions.open_direct_thread(network.ben, by=network.anna)
    elsewhere = post(direct, network.ben, "privat").message
    with pytest.raises(ActionError):
        post(thread, network.anna, "Antwort", reply_to=elsewhere.pk)
    gone = post(thread, network.anna, "weg").message
    actions.delete_message(gone, by=network.anna)
    with pytest.raises(ActionError):
        post(thread, network.ben, "Antwort", reply_to=gone.pk)
    assert thread.messages.count() == 1  # the deleted one only


def test_the_form_replies_without_javascript(network: Network, thread: Thread) -> None:
    asked = post(thread, network.anna, "Unterlagen komplett?").message
    ben = verified_client(network.ben)
    url = reverse("thread_detail", args=[thread.pk])
    page = ben.get(f"{url}?antwort={asked.pk}").content.decode()
    assert f'name="reply_to" value="{asked.pk}"' in page
    preview = re.search(r'<div id="reply-preview"[^>]*>(.*?)</div>', page, re.S)
    assert preview and " hidden" not in preview.group(0).split(">")[0]
    assert "Anna Albers" in preview.group(1) and "Unterlagen komplett?" in preview.group(1)
    response = ben.post(
        reverse("thread_post", args=[thread.pk]),
        {"body": "Ja.", "client_id": str(uuid.uuid4()), "reply_to": str(asked.pk)},
    )
    assert response.status_code == 302
    assert thread.messages.get(seq=2).reply_to_id == asked.pk
    # A made-up id in the link offers nothing to answer.
    page = ben.get(f"{url}?antwort=nichts").content.decode()
    assert 'name="reply_to" value="nichts"' not in page


def test_a_mention_notifies_the_named_reader_without_content(
    network: Network, thread: Thread, family: Family, send_outbox: Any
) -> None:
    posted = post(
        thread,
        network.anna,
        "@ben becker bitte die Lohnabrechnung prüfen. @Dirk Dahl @Anna Albers",
    )
    [notice] = Notification.objects.filter(kind="message.mentioned")
    # Dirk reads nothing of this thread, Anna wrote it: neither is notified.
    assert notice.user_id == network.ben.pk
    assert notice.title == "Sie wurden in einer Unterhaltung erwähnt"
    assert notice.url == reverse("thread_detail", args=[thread.pk])
    [event] = AuditEvent.objects.filter(action="message.posted", target_id=str(posted.message.pk))
    assert event.details["mentions"] == 1
    mails = " ".join(f"{m.subject} {m.body}" for m in send_outbox())
    assert "Lohnabrechnung" not in mails and "Lohnabrechnung" not in str(notice.__dict__)


def test_no_mention_without_the_full_name(network: Network, thread: Thread) -> None:
    post(thread, network.anna, "@Ben bitte prüfen, ben.becker@example.org weiß es")
    post(thread, network.anna, "@Ben Beckers Akte")  # another word: no mention
    assert not Notification.objects.filter(kind="message.mentioned").exists()


def test_long_messages_are_folded_and_short_ones_not(network: Network, thread: Thread) -> None:
    words = " ".join(f"Wort{n}" for n in range(FOLD_CHARS // 5))
    long = post(thread, network.anna, words + " ENDE").message
    short = post(thread, network.anna, "kurz").message
    page = page_of(network.ben, thread)
    folded = item_of(page, long.pk)
    assert '<details class="more"><summary>Mehr anzeigen</summary>' in folded
    head = re.search(r'<p class="body">(.*?)</p>', folded, re.S)
    assert head and "ENDE" not in head.group(1) and "ENDE" in folded
    assert "Wort1 " in head.group(1)  # cut between words: "Wort1" whole
    assert "<details" not in item_of(page, short.pk)


def test_thread_page_costs_the_same_for_one_and_many_readers_replies_and_threads(
    network: Network, thread: Thread
) -> None:
    first = post(thread, network.anna, "eins").message
    url = reverse("thread_detail", args=[thread.pk])
    anna = verified_client(network.anna)
    anna.get(url)  # warm-up: per-process caches

    def queries() -> int:
        post(thread, network.ben, "neu")  # something to read: the marker moves, audited
        with CaptureQueriesContext(connection) as captured:
            assert anna.get(url).status_code == 200
        return len(captured.captured_queries)

    # A direct conversation with a message she has not read, in both measurements: the
    # navigation's badge asks the rule of which threads she may still reach only then.
    post(actions.open_direct_thread(network.ben, by=network.anna), network.ben, "direkt")
    few = queries()
    for n in range(6):
        reader = make_staff(
            f"cw{n}@example.org", f"Fall Bearbeiterin {n}", network.jobcenter, "caseworker"
        )
        page_of(reader, thread)  # a reader more, with her marker
        post(thread, reader, f"@Anna Albers Antwort {n}", reply_to=first.pk)
        direct = actions.open_direct_thread(reader, by=network.anna)
        post(direct, reader, "direkt")
        post(thread, reader, attachments=[Upload(name=f"{n}.pdf", content=b"%PDF-1.4")])
    many = queries()
    assert len(actions.reader_labels(thread)) >= 8
    assert many == few


def test_the_composer_offers_the_readers_but_oneself_to_mention(
    network: Network, thread: Thread
) -> None:
    post(thread, network.anna, "Hallo")
    page_of(network.ben, thread)  # Ben has read it: his marker, his label
    people = actions.thread_people(thread, by=network.anna)
    offered = people.mentionable
    assert {"name": "Ben Becker", "label": f"Ben Becker ({JOBCENTER})"} in offered
    names = {person["name"] for person in offered}
    assert "Anna Albers" not in names and "Dirk Dahl" not in names
    # The markers and their labels, read with the same one query of names.
    assert people.markers == actions.read_markers(thread) == {network.anna.pk: 1, network.ben.pk: 1}
    assert people.labels == actions.reader_labels(thread)
    assert people.labels[network.ben.pk] == f"Ben Becker ({JOBCENTER})"


def test_erasing_the_family_erases_threads_with_replies(
    network: Network, thread: Thread, family: Family
) -> None:
    asked = post(thread, network.anna, "Frage").message
    post(thread, network.ben, "Antwort", reply_to=asked.pk)
    erased = actions.erase_family_threads(family, by=network.anna)
    assert (erased.threads, erased.messages) == (1, 2)
    assert not Thread.objects.filter(pk=thread.pk).exists()


def shown_numbers(html: str) -> list[int]:
    return [
        int(seq)
        for seq in re.findall(r'<li class="message[^"]*" id="m-[^"]+" data-seq="(\d+)"', html)
    ]


def test_older_messages_are_a_page_away_and_reading_them_moves_no_marker(
    network: Network, thread: Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "SHOWN", 3)
    for n in range(1, 8):
        post(thread, network.anna, f"Nachricht {n}")
    ben = verified_client(network.ben)
    url = reverse("thread_detail", args=[thread.pk])

    older = ben.get(url, {"vor": "5"}).content.decode()
    assert shown_numbers(older) == [2, 3, 4]
    assert f'href="{url}?vor=2"' in older
    assert 'id="composer"' not in older and 'id="thread"' not in older  # read only, not live
    assert f'href="{url}#composer"' in older
    assert 'class="reply"' not in older  # a reply quotes a message of the composer's page
    # Going back is reading, audited with what was shown; his marker stays where it was.
    read = AuditEvent.objects.filter(action="message.read", actor_id=network.ben.pk).get()
    assert (read.details["from"], read.details["to"]) == (2, 4)
    assert not Participant.objects.filter(thread=thread, user=network.ben, read_seq__gt=0).exists()

    assert shown_numbers(ben.get(url, {"vor": "2"}).content.decode()) == [1]
    assert f'href="{url}?vor=' not in ben.get(url, {"vor": "2"}).content.decode()

    newest = ben.get(url).content.decode()
    assert shown_numbers(newest) == [5, 6, 7]
    assert f'href="{url}?vor=5"' in newest and 'id="composer"' in newest
    # Anything but a number within the thread shows the newest, as a wrong ?page= does.
    for wrong in ("", "abc", "0", "1", "8", "99999999999999999999", "٣"):
        assert shown_numbers(ben.get(url, {"vor": wrong}).content.decode()) == [5, 6, 7], wrong


def test_a_message_lists_its_files_without_reading_their_content(
    network: Network, thread: Thread
) -> None:
    """The page and a socket's delivery show a file's name and size; its content (up to
    10 MB a file) is read only for its download."""
    pdf = b"%PDF-1.4\n" + b"x" * 200_000 + b"\n%%EOF\n"
    sent = post(thread, network.anna, attachments=[Upload(name="bescheid.pdf", content=pdf)])
    url = reverse("thread_detail", args=[thread.pk])
    ben = verified_client(network.ben)
    with CaptureQueriesContext(connection) as page:
        assert "bescheid.pdf" in ben.get(url).content.decode()
    with CaptureQueriesContext(connection) as delivery:
        live = consumers._readable(network.ben, str(sent.message.pk))
    assert live is not None and live["attachments"][0]["name"] == "bescheid.pdf"
    for captured in (page, delivery):
        files = [q["sql"] for q in captured.captured_queries if "messageattachment" in q["sql"]]
        assert files and not [sql for sql in files if "content_enc" in sql], files
    file = sent.message.attachments.get()
    download = ben.get(reverse("message_attachment", args=[file.pk]))
    assert download.content == pdf


def test_a_messages_forms_and_files_link_to_their_routes(network: Network, thread: Thread) -> None:
    """The page puts ids into routes reversed once (rendering.url_with_id): each link is
    the one Django's reverse gives, and it works."""
    sent = post(thread, network.anna, attachments=[Upload(name="a.pdf", content=b"%PDF-1.4")])
    file = sent.message.attachments.get()
    own = item_of(page_of(network.anna, thread), sent.message.pk)
    assert f'action="{reverse("message_edit", args=[sent.message.pk])}"' in own
    assert f'action="{reverse("message_delete", args=[sent.message.pk])}"' in own
    download = reverse("message_attachment", args=[file.pk])
    assert f'href="{download}"' in own
    assert verified_client(network.ben).get(download).content == b"%PDF-1.4"


def test_ids_are_put_into_reversed_routes_as_reverse_would(settings: Any) -> None:
    message_id = str(uuid.uuid4())
    for name in ("message_edit", "message_delete", "message_attachment"):
        assert url_with_id(name, message_id) == reverse(name, args=[message_id])
    # Behind a path prefix (FORCE_SCRIPT_NAME) the prefix leads, as with reverse.
    set_script_prefix("/dienstweg/")
    try:
        assert url_with_id("message_edit", message_id) == reverse("message_edit", args=[message_id])
        assert url_with_id("message_edit", message_id).startswith("/dienstweg/")
    finally:
        set_script_prefix("/")
    with pytest.raises(ValueError):
        url_with_id("message_edit", "../../admin")


def test_each_message_lists_its_own_files(network: Network, thread: Thread) -> None:
    def files(*names: str) -> list[Upload]:
        return [Upload(name=name, content=b"%PDF-1.4") for name in names]

    two = post(thread, network.anna, "zwei", attachments=files("b.pdf", "a.pdf")).message
    none = post(thread, network.ben, "keine").message
    one = post(thread, network.ben, "eine", attachments=files("c.pdf")).message
    page = page_of(network.ben, thread)
    listed = {
        message.pk: sorted(
            re.findall(r'<li><a href="[^"]+">([^<]+)</a>', item_of(page, message.pk))
        )
        for message in (two, none, one)
    }
    assert listed == {two.pk: ["a.pdf", "b.pdf"], none.pk: [], one.pk: ["c.pdf"]}
