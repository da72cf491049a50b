"""Find unusual access in the trail (deploy/systemd timer, hourly): many families outside
one's own cases, bulk exports, reads outside working hours. Safe to run again."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from privacy.flags import find_flags


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--day erwartet ein Datum wie 2026-03-01, nicht {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Erkennt auffällige Zugriffe im Protokoll (viele fremde Familien, umfangreiche "
        "Exporte, Zugriffe außerhalb der Arbeitszeit) für gestern und heute oder einen Tag."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--day",
            type=_day,
            help="Nur diesen Tag (JJJJ-MM-TT, Ortszeit) prüfen; ohne: gestern und heute.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        today = timezone.localdate()
        # Yesterday too: the run just after midnight still sees the end of the last day.
        days = [options["day"]] if options["day"] else [today - timedelta(days=1), today]
        for day in days:
            flags = find_flags(day)
            self.stdout.write(f"{day.isoformat()}: {len(flags)} Auffälligkeit(en)")
            for flag in flags:
                state = "geprüft" if flag.is_reviewed else "offen"
                self.stdout.write(
                    f"  {flag.kind} user:{flag.actor_id}: {flag.event_count} Ereignis(se), "
                    f"{flag.family_count} Familie(n), Nr. {flag.first_event_id}–"
                    f"{flag.last_event_id} ({state})"
                )
