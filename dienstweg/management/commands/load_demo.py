"""Load the Gladbeck demo network and print its logins (development only)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dienstweg.demo import DEMO_PASSWORD, load_demo

# As a person types it in a new shell: `make run` sets DIENSTWEG_DEBUG for itself only, and
# without it the settings refuse to start (no production secrets), a traceback.
DEMO_TOTP_COMMAND = "DIENSTWEG_DEBUG=true .venv/bin/python manage.py demo_totp"


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
        self.stdout.write(f"Passwort für die Demo-Logins mit TOTP-Schlüssel: {DEMO_PASSWORD}")
        self.stdout.write(
            "Zweiter Faktor: den TOTP-Schlüssel in eine Authenticator-App eintragen, oder "
            f"`{DEMO_TOTP_COMMAND} E-MAIL` zeigt den aktuellen Code; "
            "der Backup-Code gilt einmal (bei jedem `make run` neu)."
        )
        self.stdout.write("")
        header = f"{'E-Mail':34} {'Rolle':26} {'TOTP-Schlüssel':34} Backup-Code"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for login in logins:
            if login.totp_secret:
                shown = login.totp_secret
            elif login.enrolment_link:
                shown = "(Einrichtungslink unten)"
            else:
                shown = "(selbst eingerichtet)"
            self.stdout.write(
                f"{login.email:34} {login.role:26} {shown:34} {login.backup_code or '–'}"
            )
            self.stdout.write(f"{'':34} {login.agency}")
        for login in logins:
            if login.enrolment_link:
                self.stdout.write("")
                self.stdout.write(
                    f"{login.name} hat noch keinen Zugang: kein Passwort, sondern ein "
                    f"Einrichtungslink (einmal gültig, {settings.ENROLMENT_LINK_HOURS} Stunden; "
                    "jedes `make run` gibt einen neuen aus). Dort legt sie ihr Passwort fest "
                    "und richtet ihre Authenticator-App ein:"
                )
                self.stdout.write(f"  {login.enrolment_link}")
