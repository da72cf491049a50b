"""Load the Gladbeck demo network and print its logins (development only)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dienstweg.demo import DEMO_PASSWORD, load_demo


class Command(BaseCommand):
    help = "Lädt das Demo-Netzwerk Gladbeck (nur mit DIENSTWEG_DEBUG=true) und zeigt die Logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "Demo-Logins mit bekanntem Passwort gibt es nur in der Entwicklung "
                "(DIENSTWEG_DEBUG=true)."
            )
        logins = load_demo()
        self.stdout.write(self.style.SUCCESS("Demo-Netzwerk Gladbeck geladen."))
        self.stdout.write(f"Passwort für alle Demo-Logins: {DEMO_PASSWORD}")
        self.stdout.write(
            "Zweiter Faktor: den TOTP-Schlüssel in eine Authenticator-App eintragen, oder "
            "`.venv/bin/python manage.py demo_totp E-MAIL` zeigt den aktuellen Code; "
            "der Backup-Code gilt einmal (bei jedem `make run` neu)."
        )
        self.stdout.write("")
        header = f"{'E-Mail':34} {'Rolle':26} {'TOTP-Schlüssel':34} Backup-Code"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for login in logins:
            secret = login.totp_secret or "(richtet ihn beim 1. Login ein)"
            self.stdout.write(
                f"{login.email:34} {login.role:26} {secret:34} {login.backup_code or '–'}"
            )
            self.stdout.write(f"{'':34} {login.agency}")
