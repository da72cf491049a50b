"""Send the pending notification e-mails, failed ones included (deploy/systemd timer)."""

from typing import Any

from django.core.management.base import BaseCommand

from dienstweg.notifications import deliver


class Command(BaseCommand):
    help = (
        "Versendet ausstehende Benachrichtigungs-E-Mails und wiederholt fehlgeschlagene "
        "(höchstens fünf Versuche je Benachrichtigung)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sent = deliver()
        self.stdout.write(f"{sent} E-Mail(s) versandt.")
