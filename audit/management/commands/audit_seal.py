"""Seal the committed, unsealed audit events: once, or in a loop (the sealer service)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import anchor, sealing


class Command(BaseCommand):
    help = (
        "Versiegelt die abgeschlossenen, noch nicht versiegelten Protokollereignisse "
        "(einmal, oder mit --loop fortlaufend)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="fortlaufend versiegeln")
        parser.add_argument(
            "--interval", type=float, default=10.0, help="Sekunden zwischen zwei Durchläufen"
        )
        parser.add_argument(
            "--batch-size", type=int, default=sealing.BATCH_SIZE, help="Ereignisse je Siegel"
        )

    def handle(
        self, *args: Any, loop: bool, interval: float, batch_size: int, **options: Any
    ) -> None:
        if not loop:
            try:
                seals = sealing.seal_pending(batch_size=batch_size)
            except anchor.AnchorError as exc:
                raise CommandError(str(exc)) from exc
            events = sum(seal.event_count for seal in seals)
            self.stdout.write(f"{len(seals)} Siegel über {events} Ereignisse angelegt.")
            return
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        # systemd stops the service with SIGTERM: finish the seal in hand, then leave.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Versiegelung läuft (alle {interval:g} s); Strg+C beendet.")
        made = sealing.seal_loop(interval=interval, stop=lambda: stopping, batch_size=batch_size)
        self.stdout.write(f"Versiegelung beendet: {made} Siegel angelegt.")
