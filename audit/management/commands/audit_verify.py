"""Verify the audit trail: chain, signatures, every sealed event and every pruning
checkpoint, and the chain's head against what lies outside the database (the anchored
heads, the head of the previous run, the DPO's own notes); report in German and record the
result (`audit.verified`) for the console."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import receipt, signing
from audit.verify import ExpectedHead, keyring, record_result, verify

ACTOR = "system:audit_verify"
HASH = re.compile(r"[0-9a-fA-F]{64}")


class Command(BaseCommand):
    help = (
        "Prüft das Protokoll: Verkettung und Signatur jedes Siegels, jedes versiegelte "
        "Ereignis und jeden Prüfpunkt nach Löschungen; nennt veränderte, gelöschte und "
        "eingefügte Ereignisse und ein entferntes Ende, verglichen mit den außerhalb der "
        "Datenbank verankerten Köpfen."
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
            "--expect-head",
            action="append",
            default=[],
            metavar="HASH|DATEI",
            help="ein notierter Siegel-Hash oder eine Prüfquittung aus der Datenschutz-Konsole: "
            "dieser Kopf muss in der Siegelkette sein; mehrfach möglich.",
        )
        parser.add_argument(
            "--anchor-dir",
            type=Path,
            default=None,
            metavar="VERZEICHNIS",
            help="wo die Köpfe verankert sind (z. B. eine Kopie); ohne Angabe "
            "DIENSTWEG_AUDIT_ANCHOR_DIR.",
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
        self,
        *args: Any,
        public_key: list[str],
        expect_head: list[str],
        anchor_dir: Path | None,
        independent: bool,
        limit: int,
        **options: Any,
    ) -> None:
        try:
            keys = [signing.load_public_key(text) for text in public_key]
        except ValueError as exc:
            raise CommandError(f"Ungültiger öffentlicher Schlüssel: {exc}") from exc
        expected = [expected_head(value, keys) for value in expect_head]
        report = verify(
            public_keys=keys or None,
            in_database=False if independent else None,
            anchor_dir=anchor_dir,
            expected=expected,
        )
        for line in report.lines(limit=limit):
            self.stdout.write(line)
        # Recorded whatever the outcome: the console shows the result of the last run.
        record_result(report, by=ACTOR)
        if not report.ok:
            raise CommandError(report.summary())


def expected_head(value: str, keys: list[Any]) -> ExpectedHead:
    """VALUE: a seal hash (64 hex digits) or the path of a Prüfquittung, whose signature
    must hold with KEYS (by default this installation's key)."""
    if HASH.fullmatch(value):
        return ExpectedHead(value.lower())
    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(
            f"--expect-head {value}: weder ein Siegel-Hash (64 Hexadezimalziffern) noch eine "
            f"lesbare Prüfquittung ({exc.strerror or exc})."
        ) from exc
    try:
        note = receipt.loads(data)
    except receipt.ReceiptError as exc:
        raise CommandError(f"--expect-head {value}: {exc}.") from exc
    source = f"Prüfquittung {path.name} (Siegel {note['seal']})"
    return ExpectedHead(
        note["seal_hash"],
        note["seal"],
        source=source,
        problem=receipt.problem(note, keyring(keys or None)),
    )
