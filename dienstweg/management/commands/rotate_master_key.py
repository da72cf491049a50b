"""Re-wrap every data key with the newest master key (DIENSTWEG_MASTER_KEYS)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from audit.trail import record
from dienstweg import vault
from dienstweg.audit_actions import VAULT_DATA_KEYS_REWRAPPED
from dienstweg.models import DataKey
from dienstweg.progress import Progress


class Command(BaseCommand):
    help = (
        "Verschlüsselt alle Datenschlüssel mit dem neuesten Hauptschlüssel neu. Danach kann "
        "der alte Hauptschlüssel aus DIENSTWEG_MASTER_KEYS entfernt werden."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        version = vault.current_master_version()
        pending = DataKey.objects.exclude(master_version=version)
        total = pending.count()
        progress = Progress(self.stdout, total, f"Hauptschlüssel v{version}")
        rewrapped = 0
        while True:
            # Batches in their own transactions: a large run neither holds locks long nor
            # starts over from the beginning when interrupted.
            with transaction.atomic():
                batch = list(pending.select_for_update().order_by("id")[:batch_size])
                if not batch:
                    break
                for data_key in batch:
                    rewrapped += vault.rewrap(data_key)
                record(
                    "system:rotate_master_key",
                    VAULT_DATA_KEYS_REWRAPPED,
                    details={"count": len(batch), "master_version": version},
                )
            progress.advance(len(batch))
        progress.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f"{rewrapped} Datenschlüssel mit Hauptschlüssel v{version} neu verpackt."
            )
        )
