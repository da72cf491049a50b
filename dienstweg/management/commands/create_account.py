"""Create an account from the server's shell, above all the first admin: it gets no
password, only an enrolment link to its own address (as every account made in the admin)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dienstweg import actions
from dienstweg.models import User, normalize_email


class Command(BaseCommand):
    help = (
        "Legt ein Konto an (z. B. die erste Administration) und sendet der Person ihren "
        "Einrichtungslink; für ein noch nicht eingerichtetes Konto einen neuen Link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", help="Vor- und Nachname (für ein neues Konto)")
        parser.add_argument(
            "--admin", action="store_true", help="mit Verwaltungsrechten (Django-Admin)"
        )
        parser.add_argument(
            "--print-link",
            action="store_true",
            help="den Link auch hier ausgeben (wenn noch kein Mailserver erreichbar ist)",
        )

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        existing = User.objects.filter(email=normalize_email(email)).first()
        try:
            if existing is None:
                if not options["name"]:
                    raise CommandError("Für ein neues Konto bitte --name angeben.")
                issued = actions.create_account(
                    email, full_name=options["name"], by=None, admin_rights=options["admin"]
                )
                self.stdout.write(f"Konto {issued.link.user.pk} angelegt.")
            else:
                issued = actions.send_enrolment_link(existing, by=None)
        except actions.ActionError as error:
            raise CommandError(str(error)) from error
        until = timezone.localtime(issued.link.expires_at).strftime("%d.%m.%Y %H:%M")
        self.stdout.write(
            f"Einrichtungslink an die E-Mail-Adresse gesendet, gültig bis {until} "
            f"({settings.ENROLMENT_LINK_HOURS} Stunden, einmal)."
        )
        if options["print_link"]:
            self.stdout.write(issued.url)
