"""Offline notices (deploy/systemd timer, every minute): one e-mail per thread and hour
to each participant who has left its new messages unread for a while."""

from typing import Any

from django.core.management.base import BaseCommand

from messaging.actions import send_unread_notices


class Command(BaseCommand):
    help = (
        "Benachrichtigt Beteiligte, die neue Nachrichten einer Unterhaltung nicht gelesen "
        "haben (höchstens einmal je Unterhaltung und Stunde; ohne personenbezogene Daten)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sent = send_unread_notices()
        self.stdout.write(f"{sent} Benachrichtigung(en) zu ungelesenen Nachrichten angelegt.")
