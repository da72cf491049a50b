"""Show the authenticator code a demo login accepts now (development only)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import hotp

from dienstweg import clock
from dienstweg.demo import DEMO_DOMAIN
from dienstweg.models import AuthenticatorDevice, normalize_email


def unused_step(device: AuthenticatorDevice, now: float) -> int | None:
    """The time step whose code the device accepts at NOW: the current one, or, once that
    has been used (a code works once), the next one within the device's tolerance, so that
    a second login within the same 30 seconds need not wait. None if none is left."""
    totp = device.totp()
    totp.time = now
    current = totp.t()  # with the device's drift, as verify_token counts
    steps = range(current - device.tolerance, current + device.tolerance + 1)
    unused = [step for step in steps if step > device.last_t]
    return min(unused, key=lambda step: (abs(step - current), -step)) if unused else None


class Command(BaseCommand):
    help = "Zeigt den TOTP-Code, den ein Demo-Login jetzt annimmt (nur mit DIENSTWEG_DEBUG=true)."

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
        step = unused_step(device, clock.now())
        if step is None:
            raise CommandError("Die Codes dieser Minute sind verbraucht. Bitte gleich noch einmal.")
        self.stdout.write(f"{hotp(device.bin_key, step, digits=device.digits):06d}")
