"""Daily referral upkeep (deploy/systemd timer): escalate overdue referrals to the
receiving agency's leads, and withdraw the permissions of referrals whose consent expired."""

from typing import Any

from django.core.management.base import BaseCommand

from referrals.actions.permissions import end_expired_access
from referrals.actions.reminders import escalate_overdue


class Command(BaseCommand):
    help = (
        "Meldet überfällige Vermittlungen an die Leitung der empfangenden Stelle und entzieht "
        "Zugriffe, deren Einwilligung abgelaufen ist."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        escalated = escalate_overdue()
        ended = end_expired_access()
        self.stdout.write(
            f"{escalated} überfällige Vermittlung(en) gemeldet, "
            f"{ended} Zugriff(e) nach Ablauf der Einwilligung entzogen."
        )
