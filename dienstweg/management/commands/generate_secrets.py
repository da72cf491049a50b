"""Print a fresh set of the five production secrets as an env file."""

from typing import Any

from django.core.management.base import BaseCommand

from dienstweg import production_secrets


class Command(BaseCommand):
    help = (
        "Gibt fünf neue Geheimnisse für die Produktion als Umgebungsdatei aus "
        "(NAME=Wert), z. B. (umask 077; manage.py generate_secrets > "
        "/etc/dienstweg/secrets.env). Nichts wird gespeichert."
    )
    # Runs before any secret exists (config/settings.py reads none for it); the checks
    # would only complain that they are missing.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(
            "# Dienstweg production secrets (manage.py generate_secrets): keep this file "
            "0600, never in version control.",
        )
        self.stdout.write(production_secrets.env_file(production_secrets.generate()), ending="")
