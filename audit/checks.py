"""System checks: the sealer's key must be usable before the first seal is due."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from audit import signing


@checks.register()
def signing_key_usable(
    *, app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if getattr(settings, "READS_NO_SECRET", False):
        return []  # generate_secrets, makemigrations: nothing here seals or signs
    if not getattr(settings, "AUDIT_SIGNING_KEY", None):
        return [
            checks.Error("settings.AUDIT_SIGNING_KEY is not set.", id="audit.E001"),
        ]
    try:
        signing.private_key()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="audit.E002")]
    return []
