"""Print the public key that checks the audit seals, for the data-protection officer."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit import signing


class Command(BaseCommand):
    help = (
        "Gibt den öffentlichen Schlüssel aus, mit dem sich die Protokollsiegel prüfen lassen "
        "(mit --generate: einen neuen privaten Schlüssel für DIENSTWEG_AUDIT_SIGNING_KEY)."
    )
    # With --generate it runs before the key exists (config/settings.py then reads no
    # secret); without, signing.public_key() itself says what is wrong with the key.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate",
            action="store_true",
            help="neuen privaten Schlüssel erzeugen und ausgeben (nichts wird gespeichert)",
        )

    def handle(self, *args: Any, generate: bool, **options: Any) -> None:
        if generate:
            value = signing.new_private_key()
            self.stdout.write(f"DIENSTWEG_AUDIT_SIGNING_KEY={value}")
            key = signing.public_key(value)
        else:
            key = signing.public_key()
        self.stdout.write(f"Schlüssel-ID: {signing.key_id(key)}")
        self.stdout.write(f"Öffentlicher Schlüssel (Base64): {signing.public_base64(key)}")
        self.stdout.write(signing.public_pem(key).rstrip())
