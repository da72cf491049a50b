"""Verify the audit trail: chain, signatures, every sealed event and every pruning
checkpoint; report in German and record the result (`audit.verified`) for the console."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import signing
from audit.verify import record_result, verify

ACTOR = "system:audit_verify"


class Command(BaseCommand):
    help = (
        "Prüft das Protokoll: Verkettung und Signatur jedes Siegels, jedes versiegelte "
        "Ereignis und jeden Prüfpunkt nach Löschungen; nennt veränderte, gelöschte und "
        "eingefügte Ereignisse."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            metavar="BASE64",
            help="öffentlicher Schlüssel (wie audit_public_key ihn ausgibt); mehrfach möglich. "
            "Ohne Angabe: der Schlüssel dieser Installation.",
        )
        parser.add_argument(
            "--independent",
            action="store_true",
            help="jeden Hash in Python nachrechnen, statt PostgreSQL rechnen zu lassen "
            "(langsamer; traut keiner Funktion der Datenbank)",
        )
        parser.add_argument(
            "--limit", type=int, default=200, help="höchstens so viele Befunde ausgeben"
        )

    def handle(
        self, *args: Any, public_key: list[str], independent: bool, limit: int, **options: Any
    ) -> None:
        try:
            keys = [signing.load_public_key(text) for text in public_key]
        except ValueError as exc:
            raise CommandError(f"Ungültiger öffentlicher Schlüssel: {exc}") from exc
        report = verify(public_keys=keys or None, in_database=False if independent else None)
        for line in report.lines(limit=limit):
            self.stdout.write(line)
        # Recorded whatever the outcome: the console shows the result of the last run.
        record_result(report, by=ACTOR)
        if not report.ok:
            raise CommandError(report.summary())
