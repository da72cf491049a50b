"""Apply the retention periods (deploy/systemd timer, daily): closed cases, quiet direct
threads, inactive families and expired audit events go; the run leaves a sealed record.
With --dry-run it only says what would go."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.pruning import PruningRefused
from dienstweg.progress import Progress
from privacy import retention

LABELS = (
    ("referrals", "abgeschlossene Vermittlungen (mit ihren Unterhaltungen)"),
    ("tags", "entschiedene Antragsmarker (mit ihren Unterhaltungen)"),
    ("direct_threads", "ruhende Direktnachrichten"),
    ("families", "Familien ohne Offenes und ohne Aktivität (werden gelöscht)"),
    ("audit_events", "abgelaufene, versiegelte Protokollereignisse"),
)


class Command(BaseCommand):
    help = (
        "Wendet die Aufbewahrungsfristen an: entfernt abgeschlossene Vermittlungen und "
        "Antragsmarker, ruhende Direktnachrichten, Familien ohne Aktivität und abgelaufene "
        "Protokollereignisse. Jeder Lauf hinterlässt ein versiegeltes Protokollereignis."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="nur anzeigen, was entfernt würde; nichts ändern, nichts protokollieren",
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        self.stdout.write(
            f"Fristen: Fälle {settings.RETENTION_CLOSED_CASE_DAYS} Tage, Familien "
            f"{settings.RETENTION_FAMILY_DAYS} Tage, Sicherheitsereignisse "
            f"{settings.AUDIT_SECURITY_RETENTION_DAYS} Tage, übrige Ereignisse bis Ende des "
            f"{settings.AUDIT_ACCESS_RETENTION_YEARS}. Kalenderjahres danach."
        )
        if dry_run:
            counts = retention.plan_retention()
            self.stdout.write("Probelauf: nichts wird geändert. Entfernt würden:")
            self._write_counts(counts)
            return
        try:
            run = retention.apply_retention(
                meter=lambda label, total: Progress(self.stdout, total, label)
            )
        except PruningRefused as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write("Entfernt:")
        self._write_counts(run.counts)
        if run.checkpoint is not None:
            self.stdout.write(f"Prüfpunkt Nr. {run.checkpoint} im Protokoll angelegt.")
        sealed = (
            f"versiegelt mit Siegel Nr. {run.seal_number}"
            if run.seal_number is not None
            else "wird vom Versiegelungsdienst versiegelt"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Lauf als Protokollereignis Nr. {run.event.pk} festgehalten, {sealed}."
            )
        )

    def _write_counts(self, counts: retention.Counts) -> None:
        for field, label in LABELS:
            self.stdout.write(f"  {getattr(counts, field):>8}  {label}")
