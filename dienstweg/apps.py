from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class DienstwegConfig(AppConfig):
    default = True
    name = "dienstweg"
    verbose_name = _("Dienstweg")

    def ready(self) -> None:
        from dienstweg import audit_actions, checks, rights  # noqa: F401 (declare actions, register checks)

        # Every change of a membership or an account reaches the open sockets.
        rights.connect()
        from dienstweg import worklist
        from dienstweg.queue_sources import ENDING_CONSENTS, PROPOSALS

        # The core's own sections of the start page.
        worklist.add_queue_source(PROPOSALS)
        worklist.add_queue_source(ENDING_CONSENTS)


class DienstwegAdminConfig(admin_apps.AdminConfig):
    default = False
    # The Django admin asks for the second factor too.
    default_site = "dienstweg.admin_site.DienstwegAdminSite"
