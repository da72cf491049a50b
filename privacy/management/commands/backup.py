"""Back up the database without its data keys (PostgreSQL: pg_dump, custom format; SQLite:
the online backup API) into a file of mode 0600, and the keys into a key file of their own,
after registering every erasure and sealing the trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dienstweg.erasure_register import RegisterError
from privacy import backups


class Command(BaseCommand):
    help = (
        "Sichert die Datenbank ohne ihre Datenschlüssel in eine Datei (Modus 0600): "
        "PostgreSQL mit pg_dump, SQLite über die Online-Backup-Schnittstelle; die "
        "Datenschlüssel in eine eigene Schlüsseldatei mit kurzer Aufbewahrung. "
        "Hauptschlüssel, Anker-Verzeichnis und Löschregister gehören nicht dazu (README)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            type=Path,
            default=None,
            metavar="DATEI",
            help="wohin; ohne Angabe <DIENSTWEG_DATA_DIR>/backups/dienstweg-<Zeit>-<ID>.*",
        )

    def handle(self, *args: Any, output: Path | None, **options: Any) -> None:
        try:
            backup = backups.create_backup(output)
        except (backups.BackupError, RegisterError) as exc:
            raise CommandError(str(exc)) from exc
        if backup.sealed is not None:
            self.stderr.write(f"Warnung: Protokoll vorher nicht versiegelt: {backup.sealed}")
        self.stdout.write(
            f"Sicherung {backup.backup_id} geschrieben: {backup.path} "
            f"({backup.size} Bytes, SHA-256 {backup.sha256})"
        )
        self.stdout.write(
            f"Datenschlüssel getrennt davon: {backup.keys_path} ({backup.keys} Schlüssel)"
        )
        for name in backup.removed:
            self.stdout.write(f"Abgelaufen, entfernt: {name}")
