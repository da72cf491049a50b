"""Send the e-mails of the outbox: once, or in a loop (the sender service beside Daphne)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from dienstweg import outbox


class Command(BaseCommand):
    help = (
        "Versendet die fälligen E-Mails des Postausgangs und wiederholt fehlgeschlagene "
        "(einmal, oder mit --loop fortlaufend)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="fortlaufend versenden")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Sekunden zwischen zwei Durchläufen"
        )

    def handle(self, *args: Any, loop: bool, interval: float, **options: Any) -> None:
        if not loop:
            done = outbox.run_round()
            outbox.prune_finished(now=timezone.now())
            self.stdout.write(f"{done.sent} E-Mail(s) versandt.")
            return
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        # systemd stops the service with SIGTERM: finish the mail in hand, then leave.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"E-Mail-Versand läuft (alle {interval:g} s); Strg+C beendet.")
        total = outbox.send_loop(interval=interval, stop=lambda: stopping)
        self.stdout.write(f"E-Mail-Versand beendet: {total.sent} E-Mail(s) versandt.")
