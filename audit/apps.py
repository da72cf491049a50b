from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    default = True
    name = "audit"
    verbose_name = _("Protokoll")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit import audit_actions, checks  # noqa: F401 (declare actions, register checks)
