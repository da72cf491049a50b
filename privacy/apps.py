from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "privacy"
    label = "console"
    verbose_name = _("Datenschutz-Konsole")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from privacy import audit_actions  # noqa: F401 (declares its audit actions)
