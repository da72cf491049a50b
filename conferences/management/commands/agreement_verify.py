"""Check the signed confirmation of an agreement (a receipt file someone kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import signing
from conferences import receipts


class Command(BaseCommand):
    help = (
        "Prüft die signierte Bestätigung einer Vereinbarung (JSON-Datei), mit dem Schlüssel "
        "dieser Installation oder dem öffentlichen Schlüssel aus --public-key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("receipt", type=Path, help="die Datei der Bestätigung")
        parser.add_argument(
            "--public-key",
            help="öffentlicher Schlüssel (Base64, von `manage.py audit_public_key`)",
        )
        parser.add_argument(
            "--text",
            type=Path,
            help="Datei mit dem Text der Vereinbarung: prüft, dass er der bestätigte ist",
        )

    def handle(
        self, *args: Any, receipt: Path, public_key: str | None, text: Path | None, **options: Any
    ) -> None:
        try:
            data = receipts.loads(receipt.read_bytes())
        except OSError as exc:
            raise CommandError(f"{receipt}: nicht lesbar ({exc.strerror})") from exc
        except receipts.ReceiptError as exc:
            raise CommandError(f"{receipt}: {exc}") from exc
        try:
            key = signing.load_public_key(public_key) if public_key else None
        except ValueError as exc:
            raise CommandError(f"--public-key: {exc}") from exc
        what = text.read_text(encoding="utf-8").strip() if text else None
        problem = receipts.problem(data, key=key, what=what)
        if problem:
            raise CommandError(f"{receipt}: {problem}")
        self.stdout.write(
            f"Bestätigung gültig: Vereinbarung {data['number']} der Familienkonferenz "
            f"{data['family']}, für {data['agency_name']} bestätigt von "
            f"{data['confirmed_by_name']} am {data['confirmed_at']}, bis {data['due_on']}."
        )
