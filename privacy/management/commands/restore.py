"""Restore the database from a backup (every service stopped), then erase again what the
erasure register names, so that no erased family comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy import backups


class Command(BaseCommand):
    help = (
        "Spielt eine Sicherung in die konfigurierte Datenbank zurück (alle Dienste der "
        "Plattform angehalten), bringt das Schema auf den Stand, löscht jede Familie erneut, "
        "die das Löschregister nennt, und versiegelt das Protokoll."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, metavar="DATEI", help="die Sicherung")
        parser.add_argument(
            "--keys",
            type=Path,
            default=None,
            metavar="SCHLÜSSELDATEI",
            help="die Schlüsseldatei; ohne Angabe die neueste in DIENSTWEG_BACKUP_KEYS_DIR",
        )

    def handle(self, *args: Any, path: Path, keys: Path | None, **options: Any) -> None:
        try:
            restored = backups.restore_backup(path, keys=keys)
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from exc
        name = restored.backup_id or "(ohne Kennung)"
        self.stdout.write(f"Sicherung {name} aus {restored.path} zurückgespielt.")
        if restored.keys is not None:
            self.stdout.write(
                f"Schlüssel aus {restored.keys_path}: {restored.keys.keys} eingesetzt, "
                f"{restored.keys.left_out} gelöschter Familien ausgelassen"
                + (
                    f", {restored.keys.missing} fehlen (deren Inhalte bleiben unlesbar)."
                    if restored.keys.missing
                    else "."
                )
            )
        if restored.reapplied:
            self.stdout.write(
                f"Erneut gelöscht laut Löschregister: {', '.join(restored.reapplied)}"
            )
        else:
            self.stdout.write("Das Löschregister nennt keine Familie, die noch zu löschen war.")
        if restored.anchor_problem is not None:
            self.stderr.write(
                "Die Sicherung endet vor dem außerhalb der Datenbank verankerten Protokollkopf: "
                "was danach protokolliert wurde, ist verloren. `manage.py audit_verify` nennt "
                "die fehlenden Siegel; das Versiegeln ruht, bis das geklärt ist (README, "
                f"„Sicherung“).\n{restored.anchor_problem}"
            )
