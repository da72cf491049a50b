from django.apps import AppConfig


class ApplicationsConfig(AppConfig):
    name = "applications"
    verbose_name = "Antragsmarker"
    default_auto_field = "django.db.models.BigAutoField"
    # Called by dienstweg's load_demo after the referrals' demo data exists.
    demo_loader = "applications.demo.load"

    def ready(self) -> None:
        from applications import audit_actions  # noqa: F401 (declares its audit actions)
