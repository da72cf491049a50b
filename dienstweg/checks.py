"""System checks: `check --deploy` names each weak production secret under its own id;
`check --database default` refuses a database that lacks a registered erasure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from dienstweg import erasure_register, pdf, production_secrets

HINT = "`manage.py generate_secrets` prints a fresh set; see README, Configuration."
ERASURE_HINT = "`manage.py apply_erasures` (README, Backup and restore)."


@checks.register(checks.Tags.security, deploy=True)
def secrets_strong(
    *, app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    # Settings judged the secrets while reading them (without DEBUG a weak one stops
    # start-up there); this reports what it found, for an operator with DEBUG on.
    return [
        checks.Error(message, hint=HINT, id=production_secrets.CHECK_IDS[name])
        for name, message in getattr(settings, "SECRET_WEAKNESSES", [])
    ]


@checks.register(checks.Tags.database)
def erasures_applied(
    *, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    # Only where the database is asked for (`check --database default`, migrate): a
    # restored backup must not be used before every registered erasure is applied again.
    if not databases:
        return []
    problem = erasure_register.startup_problem()
    if problem is None:
        return []
    return [checks.Error(problem, hint=ERASURE_HINT, id="dienstweg.E110")]


@checks.register()
def pdf_fonts_present(**kwargs: Any) -> list[checks.CheckMessage]:
    # Without them no stamp and no Art. 15 report can be printed: said at start, not at the
    # first click on "Stempel drucken". A warning: everything else works without them.
    missing = [name for name in pdf.FONT_FILES.values() if not pdf.font_path(name).is_file()]
    if not missing:
        return []
    return [
        checks.Warning(
            f"PDF fonts missing in {settings.DIENSTWEG_PDF_FONT_DIR}: {', '.join(missing)}; "
            "stamps and Art. 15 reports cannot be printed",
            hint="apt-get install fonts-dejavu-core, or set DIENSTWEG_PDF_FONT_DIR.",
            id="dienstweg.W120",
        )
    ]
