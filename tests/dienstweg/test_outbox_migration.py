"""The upgrade to the outbox loses no e-mail: notification e-mails still pending before it
(not sent, attempts left, an active account) become outbox mails with their attempts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from dienstweg.models import OutboxMail, User

BEFORE = [("dienstweg", "0009_enrolment_links")]  # the last one without the outbox


def migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_pending_notification_emails_move_into_the_outbox() -> None:
    ben = User.objects.create_user("ben@example.org", None, full_name="Ben Becker")
    gone = User.objects.create_user("gone@example.org", None, full_name="Gone", is_active=False)
    migrate(BEFORE)
    rows = [
        (ben.pk, None, 0),  # pending
        (ben.pk, None, 2),  # failed twice: three attempts left
        (ben.pk, timezone.now(), 0),  # sent
        (ben.pk, None, 5),  # given up
        (gone.pk, None, 0),  # deactivated account
    ]
    with connection.cursor() as cursor:
        for user_id, emailed_at, attempts in rows:
            cursor.execute(
                "INSERT INTO dienstweg_notification (user_id, kind, title, family_ref, url, "
                "created_at, emailed_at, email_attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    user_id,
                    "referral.received",
                    "Neue Vermittlung",
                    "F-2026-0042",
                    "/vermittlungen/",
                    timezone.now(),
                    emailed_at,
                    attempts,
                ],
            )
    migrate(latest())
    moved = list(OutboxMail.objects.order_by("attempts"))
    assert [(mail.user_id, mail.attempts) for mail in moved] == [(ben.pk, 0), (ben.pk, 2)]
    for mail in moved:
        assert mail.subject == "Dienstweg: Neue Vermittlung (F-2026-0042)"
        assert "F-2026-0042" in mail.decrypt_field("body")
        assert "/vermittlungen/" in mail.decrypt_field("body")


def latest() -> list[tuple[str, str]]:
    graph = MigrationExecutor(connection).loader.graph
    # Every app's: going back to BEFORE also unapplied the other apps' migrations that
    # depend on later ones of dienstweg, and the tests after this one need them all.
    return graph.leaf_nodes()
