from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = "Vermittlungen"
    default_auto_field = "django.db.models.BigAutoField"
    # Called by dienstweg's load_demo after the core's demo network exists.
    demo_loader = "referrals.demo.load"

    def ready(self) -> None:
        from dienstweg import hooks, worklist
        from referrals import audit_actions  # noqa: F401 (declares its audit actions)
        from referrals.actions.permissions import (
            hide_after_restriction,
            losses_on_revocation,
            withdraw_access_after_revocation,
        )
        from referrals.queue import SOURCES
        from referrals.sections import FAMILY_SECTION

        # A revoked consent withdraws the receiving agencies' access in the same transaction.
        hooks.consent_revoked.register(withdraw_access_after_revocation)
        # ... and the page that asks before revoking names them.
        hooks.add_revocation_losses(losses_on_revocation)
        # A restricted family (GDPR Art. 18): the receiving agencies' sockets re-check.
        hooks.processing_restricted.register(hide_after_restriction)
        # The family page lists the referrals sent about the family.
        hooks.add_family_section(FAMILY_SECTION)
        # The start page's work queue: answers, unassigned, overdue and assigned referrals.
        for source in SOURCES:
            worklist.add_queue_source(source)
