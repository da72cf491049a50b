from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Nachrichten"
    default_auto_field = "django.db.models.BigAutoField"
    # Called by dienstweg's load_demo after the referrals' and tags' demo data exist.
    demo_loader = "messaging.demo.load"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from dienstweg import hooks, worklist
        from messaging import audit_actions  # noqa: F401 (declares its audit actions)
        from messaging.access import losses_on_revocation
        from messaging.actions import (
            forget_after_restriction,
            forget_after_revocation,
            send_unread_notices,
        )
        from messaging.queue import UNREAD_BADGE, UNREAD_THREADS

        # A revoked consent: the recipients' sockets re-check their threads at once.
        hooks.consent_revoked.register(forget_after_revocation)
        # ... and the page that asks before revoking names the threads that go with it.
        hooks.add_revocation_losses(losses_on_revocation)
        # A restricted family (GDPR Art. 18): the processing offices' sockets re-check.
        hooks.processing_restricted.register(forget_after_restriction)
        # Each round of the outbox's sender first queues the notices of unread messages.
        hooks.add_before_sending(send_unread_notices)
        # The directory offers a direct message to each colleague.
        hooks.add_colleague_action(hooks.ColleagueAction(_("Nachricht schreiben"), "direct_thread"))
        # Unread threads on the start page, unread messages beside "Nachrichten".
        worklist.add_queue_source(UNREAD_THREADS)
        worklist.add_badge(UNREAD_BADGE)
