from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Nachrichten"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dienstweg.consent import consent_revoked
        from messaging.actions import forget_after_revocation

        # A revoked consent: the recipients' sockets re-check their threads at once.
        consent_revoked.connect(forget_after_revocation, dispatch_uid="messaging")
