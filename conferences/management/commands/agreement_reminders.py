"""Daily upkeep of agreements (deploy/systemd timer, beside referral_reminders): remind the
person responsible for an overdue agreement, and a week later her agency's leads."""

from typing import Any

from django.core.management.base import BaseCommand

from conferences.actions import remind_overdue_agreements


class Command(BaseCommand):
    help = (
        "Erinnert an überfällige Vereinbarungen aus Familienkonferenzen und meldet sie eine "
        "Woche später der Leitung der zuständigen Stelle."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        reminded, escalated = remind_overdue_agreements()
        self.stdout.write(
            f"{reminded} Erinnerung(en) an überfällige Vereinbarungen, "
            f"{escalated} an die Leitung gemeldet."
        )
