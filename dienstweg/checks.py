"""System checks: `check --deploy` names each weak production secret under its own id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from dienstweg import production_secrets

HINT = "`manage.py generate_secrets` prints a fresh set; see README, Configuration."


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
