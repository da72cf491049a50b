from django.apps import AppConfig


class ApplicationsConfig(AppConfig):
    name = "applications"
    verbose_name = "Antragsmarker"
    default_auto_field = "django.db.models.BigAutoField"
    # Called by dienstweg's load_demo after the referrals' demo data exists.
    demo_loader = "applications.demo.load"

    def ready(self) -> None:
        from applications import audit_actions  # noqa: F401 (declares its audit actions)
        from applications.access import losses_on_revocation
        from applications.queue import SOURCES
        from applications.sections import FAMILY_SECTION
        from dienstweg import hooks, worklist

        # The family page lists the applications tagged for the family, after its referrals.
        hooks.add_family_section(FAMILY_SECTION)
        # The page that asks before revoking a consent names the tags the office loses.
        hooks.add_revocation_losses(losses_on_revocation)
        # The start page's work queue: documents requested, for the project and the office.
        for source in SOURCES:
            worklist.add_queue_source(source)
