"""Erase again every family the erasure register names that the database still holds
(a database restored without `manage.py restore`); the platform does not start until then."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import anchor
from audit.sealing import seal_pending
from dienstweg.erasure_register import RegisterError
from privacy import backups


class Command(BaseCommand):
    help = (
        "Löscht jede Familie erneut, die laut Löschregister gelöscht ist, aber in der "
        "Datenbank noch Daten oder ihren Schlüssel hat."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            done = backups.reapply_erasures()
        except RegisterError as exc:
            raise CommandError(str(exc)) from exc
        try:
            seal_pending()
        except anchor.AnchorError as exc:
            self.stderr.write(f"Protokoll nicht versiegelt: {exc}")
        if done:
            self.stdout.write(f"Erneut gelöscht: {', '.join(done)}")
        else:
            self.stdout.write("Nichts zu tun: die Datenbank zeigt jede registrierte Löschung.")
