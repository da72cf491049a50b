"""Rebuild every family's search tokens (after DIENSTWEG_BLIND_INDEX_KEY was changed, or to
repair them); each family in a transaction of its own, so a long run blocks nobody."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from dienstweg.actions import reindex_family
from dienstweg.models import Family


class Command(BaseCommand):
    help = (
        "Baut die Suchschlüssel aller Familien neu auf (nach einem Wechsel von "
        "DIENSTWEG_BLIND_INDEX_KEY). Schreibt keinen Klartext."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        for family in Family.objects.select_related("data_key").iterator(chunk_size=500):
            with transaction.atomic():
                reindex_family(family)
            count += 1
        self.stdout.write(f"Suchschlüssel von {count} Familie(n) neu aufgebaut.")
