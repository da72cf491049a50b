"""The message form without the socket (no JavaScript, or attachments): refused, the page
comes back with the text as typed and the reason; the box cuts nothing short and carries
the server's own limit."""

from __future__ import annotations

import re
import uuid
from html import unescape

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from messaging import actions
from messaging.models import Message
from referrals.models import Referral
from tests.builders import build_referral_thread
from tests.conftest import Network, verified_client

TEXT = "Anbei der Bescheid vom 3. März – bitte prüfen <b>heute</b>."


def box_of(page: str) -> str:
    """The textarea of the composer, as the browser would show it."""
    match = re.search(r'<textarea name="body"[^>]*>\n?(.*?)</textarea>', page, re.S)
    assert match, "no message box"
    return unescape(match.group(1))


def test_the_box_carries_the_server_limit_and_no_maxlength(
    network: Network, referral: Referral, settings
) -> None:
    settings.MESSAGE_MAX_CHARS = 1234
    thread = build_referral_thread(referral)
    page = verified_client(network.anna).get(reverse("thread_detail", args=[thread.pk]))
    tag = re.search(r'<textarea name="body"[^>]*>', page.content.decode())
    assert tag
    assert 'data-max-chars="1234"' in tag.group(0)
    assert "maxlength" not in tag.group(0)  # a pasted text would be cut without a word


def test_a_refused_attachment_brings_the_text_back_with_the_reason(
    network: Network, referral: Referral
) -> None:
    thread = build_referral_thread(referral)
    client_id = str(uuid.uuid4())
    fake = SimpleUploadedFile("bescheid.pdf", b"kein PDF, nur Text", content_type="application/pdf")
    response = verified_client(network.anna).post(
        reverse("thread_post", args=[thread.pk]),
        {"body": TEXT, "client_id": client_id, "attachments": [fake]},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert box_of(page) == TEXT
    assert "nur PDF, JPEG oder PNG" in page
    assert "Bitte wählen Sie die Dateien erneut aus" in page
    assert f'value="{client_id}"' in page  # sent again, still stored once
    assert not Message.objects.exists()


def test_a_text_over_the_limit_comes_back_whole(
    network: Network, referral: Referral, settings
) -> None:
    thread = build_referral_thread(referral)
    text = "a" * settings.MESSAGE_MAX_CHARS + " und das Ende"
    response = verified_client(network.anna).post(
        reverse("thread_post", args=[thread.pk]), {"body": text, "client_id": str(uuid.uuid4())}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert box_of(page) == text
    assert "Nicht gesendet: Die Nachricht ist zu lang" in page
    assert not Message.objects.exists()


def test_a_line_break_counts_as_one_character_as_on_the_page(
    network: Network, referral: Referral, settings
) -> None:
    settings.MESSAGE_MAX_CHARS = 20
    thread = build_referral_thread(referral)
    text = "\r\n".join(["abcd"] * 4)  # 16 letters and 3 breaks: 19 on the page, 22 as sent
    response = verified_client(network.anna).post(
        reverse("thread_post", args=[thread.pk]), {"body": text, "client_id": str(uuid.uuid4())}
    )
    assert response.status_code == 302
    assert Message.objects.get().decrypt_field("body") == "abcd\nabcd\nabcd\nabcd"


def test_a_refused_change_of_a_message_comes_back_with_the_new_text(
    network: Network, referral: Referral, settings
) -> None:
    thread = build_referral_thread(referral)
    posted = actions.post_message(
        thread, body="Termin am Montag", client_id=uuid.uuid4(), by=network.anna
    )
    text = "Termin am Dienstag. " * (settings.MESSAGE_MAX_CHARS // 10)
    response = verified_client(network.anna).post(
        reverse("message_edit", args=[posted.message.pk]), {"body": text}
    )
    assert response.status_code == 200
    page = response.content.decode()
    edit = re.search(rf'<textarea id="edit-{posted.message.pk}"[^>]*>(.*?)</textarea>', page, re.S)
    assert edit and unescape(edit.group(1)) == text
    assert "maxlength" not in edit.group(0)
    assert "Nicht gespeichert: Die Nachricht ist zu lang" in page
    posted.message.refresh_from_db()
    assert posted.message.decrypt_field("body") == "Termin am Montag"
