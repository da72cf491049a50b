"""Let proposed roles that nobody decided expire (deploy/systemd timer, daily)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from dienstweg.actions import expire_proposals


class Command(BaseCommand):
    help = (
        "Markiert Rollenvorschläge als abgelaufen, die nach DIENSTWEG_ROLE_PROPOSAL_DAYS "
        "Tagen noch niemand bestätigt oder abgelehnt hat (jeder mit Protokolleintrag)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = expire_proposals()
        self.stdout.write(
            f"{count} Rollenvorschlag/-vorschläge abgelaufen "
            f"(nach {settings.MEMBERSHIP_PROPOSAL_DAYS} Tagen)."
        )
