"""Notifications and their e-mails: written in the action's transaction, the e-mail queued in
the outbox and sent only by its sender, never with a name or content in the e-mail; the page
shows one's own only."""

from __future__ import annotations

import logging
import re
from io import StringIO
from smtplib import SMTPException

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy

from dienstweg.context_processors import unread_notifications
from dienstweg.models import Family, Notification, OutboxMail, User
from dienstweg.notifications import mark_read, notify
from dienstweg.outbox import queue_mail, send_due
from tests.conftest import YILMAZ, Network, verified_client

URL = "/vermittlungen/12/"  # a local path of a higher app
HOUSEHOLD_NAMES = {name for m in YILMAZ for name in (m.first_name, m.last_name)}


def notify_committed(users: list[User], **fields: object) -> list[Notification]:
    """notify() in a transaction of its own, as an action would call it."""
    values: dict[str, object] = {"kind": "referral.received", "title": "Neue Vermittlung"}
    values.update(fields)
    values.setdefault("url", URL)
    with transaction.atomic():
        return notify(users, **values)  # type: ignore[arg-type]


def test_notify_creates_rows_and_queues_emails_that_only_the_sender_sends(
    network: Network, django_capture_on_commit_callbacks, send_outbox
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        created = notify(
            [network.ben, network.clara],
            kind="referral.received",
            title="Neue Vermittlung",
            family_ref="F-2026-0042",
            url=URL,
        )
        assert Notification.objects.count() == 2
        # Queued in the action's own transaction, one per recipient.
        assert OutboxMail.objects.filter(kind="referral.received").count() == 2
    # Only the recipients' sockets are told to recount (counts, no content) after the
    # commit; no mail leaves with the request.
    assert len(callbacks) == 1
    assert mail.outbox == []
    assert sorted(message.to[0] for message in send_outbox()) == [
        network.ben.email,
        network.clara.email,
    ]
    for notification in created:
        notification.refresh_from_db()
        assert notification.read_at is None
    assert OutboxMail.objects.filter(sent_at__isnull=False, attempts=1).count() == 2


def test_rollback_sends_nothing(network: Network, send_outbox) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        notify([network.ben], kind="referral.received", title="Neue Vermittlung", url=URL)
        1 / 0  # noqa: B018 (the action fails after notifying)
    assert not OutboxMail.objects.exists()
    assert send_outbox() == []
    assert not Notification.objects.exists()


def test_outside_a_transaction_raises() -> None:
    # No database: the check comes before any query, and pytest-django would wrap a test
    # with database access in a transaction.
    user = User(pk=1, email="ben@example.org", full_name="Ben Becker")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        notify([user], kind="referral.received", title="Neue Vermittlung", url=URL)


def test_duplicates_and_inactive_users_are_skipped(network: Network) -> None:
    network.dirk.is_active = False
    network.dirk.save(update_fields=["is_active"])
    created = notify_committed([network.ben, network.ben, network.dirk])
    assert [n.user_id for n in created] == [network.ben.pk]
    assert Notification.objects.get().user == network.ben


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "https://evil.example/"),
        ("url", "//evil.example/"),
        ("url", "javascript:alert(1)"),
        ("family_ref", "Ayşe Yılmaz"),
        ("kind", "Vermittlung"),
        ("title", ""),
    ],
)
def test_refuses_anything_but_labels_references_and_local_paths(
    network: Network, field: str, value: str
) -> None:
    with pytest.raises(ValueError):
        notify_committed([network.ben], **{field: value})
    assert not Notification.objects.exists()


def test_stores_the_german_msgid_of_a_lazy_title(network: Network) -> None:
    with translation.override("en"):  # e.g. a request of a reader of English
        notify_committed([network.ben], title=gettext_lazy("Einwilligung erfasst."))
    assert Notification.objects.get().title == "Einwilligung erfasst."


def test_email_holds_reference_and_link_but_no_names(
    network: Network, family: Family, send_outbox
) -> None:
    notify_committed([network.ben], title="Neue Vermittlung", family_ref=family.reference, url=URL)
    [message] = send_outbox()
    assert message.subject == f"Dienstweg: Neue Vermittlung ({family.reference})"
    assert message.to == [network.ben.email]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    text = f"{message.subject}\n{message.body}"
    assert family.reference in message.body
    assert f"{settings.DIENSTWEG_BASE_URL}{URL}" in message.body
    assert "nach" in message.body and "angemeldet" in message.body
    for name in (*HOUSEHOLD_NAMES, "Anna", "Albers", "Ben", "Becker"):
        assert name not in text, name
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"


def fail_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        raise SMTPException(f"550 mailbox unavailable: {self.to[0]}")

    monkeypatch.setattr(EmailMessage, "send", refuse)


def test_failed_sending_is_retried_by_the_command(
    network: Network, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    notify_committed([network.ben], family_ref="F-2026-0042")
    fail_sending(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="dienstweg.outbox"):
        assert call_command_output("send_notifications") == "0 E-Mail(s) versandt."
    queued = OutboxMail.objects.get()
    assert queued.sent_at is None
    assert queued.attempts == 1
    assert f"Outbox mail {queued.pk} (referral.received): not sent" in caplog.text
    assert network.ben.email not in caplog.text  # only the id, never the address

    monkeypatch.undo()
    OutboxMail.objects.update(due_at=queued.created_at)  # its retry is due
    out = call_command_output("send_notifications")
    assert out == "1 E-Mail(s) versandt."
    [message] = mail.outbox
    assert message.to == [network.ben.email]
    queued.refresh_from_db()
    assert queued.sent_at is not None
    assert call_command_output("send_notifications") == "0 E-Mail(s) versandt."
    assert len(mail.outbox) == 1


def call_command_output(name: str) -> str:
    out = StringIO()
    call_command(name, stdout=out)
    return out.getvalue().strip()


def test_a_deactivated_user_is_not_emailed(network: Network) -> None:
    notify_committed([network.ben])
    network.ben.is_active = False
    network.ben.save(update_fields=["is_active"])
    assert send_due().sent == 0
    assert mail.outbox == []
    assert OutboxMail.objects.get().given_up_at is not None


def test_page_lists_only_ones_own_notifications(network: Network) -> None:
    notify_committed([network.anna], title="Vermittlung angenommen", family_ref="F-2026-0001")
    notify_committed([network.ben], title="Neue Vermittlung", family_ref="F-2026-0002")
    html = verified_client(network.ben).get(reverse("notifications")).content.decode()
    assert "Neue Vermittlung" in html
    assert "F-2026-0002" in html
    assert f'href="{URL}"' in html
    assert "Vermittlung angenommen" not in html
    assert "F-2026-0001" not in html


def test_page_is_newest_first_and_marks_unread(network: Network) -> None:
    [first] = notify_committed([network.ben], title="Neue Vermittlung")
    notify_committed([network.ben], title="Einwilligung erfasst.")
    mark_read(network.ben, ids=[first.pk])
    html = verified_client(network.ben).get(reverse("notifications")).content.decode()
    assert html.index("Einwilligung erfasst.") < html.index("Neue Vermittlung")
    assert html.count('class="badge">ungelesen<') == 1


def test_title_is_shown_in_the_readers_language(network: Network) -> None:
    notify_committed([network.ben], title=gettext_lazy("Einwilligung erfasst."))
    client = verified_client(network.ben)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = client.get(reverse("notifications")).content.decode()
    assert "Consent recorded." in html
    assert "1 notification, 1 of them unread" in html
    assert "Mark all as read" in html
    assert menu_entry(client) == "Notifications (1 unread)"


def test_page_query_count_does_not_grow_with_notifications(
    network: Network, django_assert_max_num_queries
) -> None:
    client = verified_client(network.ben)
    notify_committed([network.ben])
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("notifications")).status_code == 200
    for _number in range(29):
        notify_committed([network.ben])
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(reverse("notifications"))
    assert response.status_code == 200
    assert response.content.decode().count('class="badge">ungelesen<') == 25  # one page


def test_page_is_paginated(network: Network) -> None:
    for _number in range(30):
        notify_committed([network.ben])
    client = verified_client(network.ben)
    html = client.get(reverse("notifications"), {"page": 2}).content.decode()
    assert html.count(f'href="{URL}"') == 5
    assert "Seite 2 von 2" in html


def test_mark_read_marks_only_ones_own(network: Network) -> None:
    [for_anna] = notify_committed([network.anna])
    [for_ben] = notify_committed([network.ben])
    [other_for_ben] = notify_committed([network.ben])
    assert mark_read(network.ben, ids=[for_anna.pk, for_ben.pk]) == 1
    for notification in (for_anna, for_ben, other_for_ben):
        notification.refresh_from_db()
    assert for_anna.read_at is None
    assert for_ben.read_at is not None
    assert other_for_ben.read_at is None
    assert mark_read(network.ben, ids=None) == 1
    other_for_ben.refresh_from_db()
    assert other_for_ben.read_at is not None


def test_mark_all_read_page_marks_only_ones_own(network: Network) -> None:
    notify_committed([network.anna, network.ben])
    notify_committed([network.ben])
    client = verified_client(network.ben)
    response = client.post(reverse("notifications_read"))
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications")
    assert not Notification.objects.filter(user=network.ben, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=network.anna, read_at__isnull=True).count() == 1


def test_mark_all_read_is_a_post(network: Network) -> None:
    response = verified_client(network.ben).get(reverse("notifications_read"))
    assert response.status_code == 405


def test_unread_count_shows_in_the_navigation(network: Network) -> None:
    notify_committed([network.ben])
    notify_committed([network.ben])
    notify_committed([network.anna])
    client = verified_client(network.ben)
    assert menu_entry(client) == "Benachrichtigungen (2 ungelesen)"  # as a screen reader says it
    # Both the spoken and the visible number are marked for the live update (counts.js).
    html = client.get(reverse("account")).content.decode()
    assert html.count('data-count="notifications">2<') == 2
    client.post(reverse("notifications_read"))
    assert menu_entry(client) == "Benachrichtigungen (0 ungelesen)"


def menu_entry(client: Client) -> str:
    """What a screen reader says for the menu's "Benachrichtigungen" link (the visible badge
    is aria-hidden; a visually hidden text says the count in words)."""
    html = client.get(reverse("account")).content.decode()
    link = html.split(f'href="{reverse("notifications")}">', 1)[1].split("</a>", 1)[0]
    spoken = re.sub(r'<span[^>]*aria-hidden="true"[^>]*><span[^>]*>[^<]*</span></span>', "", link)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", spoken)).strip()


def test_unread_count_costs_no_query_before_the_second_factor(
    network: Network, django_assert_num_queries
) -> None:
    notify_committed([network.ben])
    request = RequestFactory().get("/")
    request.user = network.ben  # logged in, but has no is_verified(): not past the gate
    with django_assert_num_queries(0):
        assert unread_notifications(request)["unread_notifications"] == 0
    request.user.is_verified = lambda: False  # type: ignore[attr-defined]
    with django_assert_num_queries(0):
        assert unread_notifications(request)["unread_notifications"] == 0
    request.user.is_verified = lambda: True  # type: ignore[attr-defined]
    # One for the notifications, one for the unread-messages badge messaging registers:
    # nothing is unread in any of her threads, so the rule of which she may still reach
    # (her memberships, the sum over those threads) is not asked.
    with django_assert_num_queries(2):
        assert unread_notifications(request)["unread_notifications"] == 1


def test_unverified_session_gets_no_page(network: Network) -> None:
    client = Client()
    client.force_login(network.ben)
    response = client.get(reverse("notifications"))
    assert response.status_code == 302


def test_queue_mail_emails_each_active_user_once(network: Network, send_outbox) -> None:
    network.dirk.is_active = False
    network.dirk.save(update_fields=["is_active"])
    queued = queue_mail(
        [network.ben, network.ben, network.clara, network.dirk],
        kind="referral.digest",
        subject="Dienstweg: Wochenübersicht",
        body="3 neue Vermittlungen",
    )
    assert len(queued) == 2
    assert sorted(m.to[0] for m in send_outbox()) == [network.ben.email, network.clara.email]
    assert {m.body for m in mail.outbox} == {"3 neue Vermittlungen"}
