"""The weekly digest for agency leads (deploy/systemd timer): how many referrals their
agency has not answered. Counts and a link only, no family."""

from typing import Any

from django.core.management.base import BaseCommand

from referrals.actions.reminders import send_weekly_digest


class Command(BaseCommand):
    help = "Schickt den Leitungen die Wochenübersicht unbeantworteter Vermittlungen."

    def handle(self, *args: Any, **options: Any) -> None:
        queued = send_weekly_digest()
        self.stdout.write(f"{queued} Wochenübersicht(en) zum Versand bereitgestellt.")
