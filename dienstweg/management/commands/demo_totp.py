"""Show the current authenticator code of a demo login (development only)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dienstweg.demo import DEMO_DOMAIN
from dienstweg.models import AuthenticatorDevice, normalize_email


class Command(BaseCommand):
    help = "Zeigt den aktuellen TOTP-Code eines Demo-Logins (nur mit DIENSTWEG_DEBUG=true)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        email = normalize_email(email)
        # A real account's second factor must never be readable from the command line.
        if not settings.DEBUG or not email.endswith(f"@{DEMO_DOMAIN}"):
            raise CommandError(f"Nur für Demo-Logins (@{DEMO_DOMAIN}) in der Entwicklung.")
        device = AuthenticatorDevice.objects.filter(user__email=email, confirmed=True).first()
        if device is None:
            raise CommandError("Dieses Demo-Login hat (noch) keinen zweiten Faktor.")
        totp = device.totp()
        self.stdout.write(f"{totp.token():06d}")
