from django.apps import AppConfig


class ConferencesConfig(AppConfig):
    name = "conferences"
    verbose_name = "Familienkonferenzen"
    default_auto_field = "django.db.models.BigAutoField"
    # Called by dienstweg's load_demo after the core's demo network exists.
    demo_loader = "conferences.demo.load"

    def ready(self) -> None:
        from django.urls import reverse

        from conferences import audit_actions  # noqa: F401 (declares its audit actions)
        from conferences.access import (
            THREAD_KIND,
            conference_readers,
            may_use_conference_thread,
            thread_listed,
        )
        from conferences.actions import (
            end_reidentification_after_revocation,
            hide_after_restriction,
            losses_on_revocation,
            withdraw_access_after_revocation,
        )
        from conferences.queue import AGREEMENTS
        from conferences.sections import FAMILY_SECTION
        from dienstweg import hooks, worklist
        from messaging import subjects

        # A revoked consent ends the invitees' access it covered, in the same transaction.
        hooks.consent_revoked.register(withdraw_access_after_revocation)
        hooks.consent_revoked.register(end_reidentification_after_revocation)
        hooks.add_revocation_losses(losses_on_revocation)
        hooks.processing_restricted.register(hide_after_restriction)
        hooks.add_family_section(FAMILY_SECTION)
        # The start page: the agreements she is responsible for, by due date.
        worklist.add_queue_source(AGREEMENTS)
        # Each conference has a live thread that follows the conference's own rule.
        subjects.register(
            subjects.Subject(
                kind=THREAD_KIND,
                may_use=may_use_conference_thread,
                readers=conference_readers,
                url=lambda pk: reverse("conference_detail", args=[pk]),
                listed=thread_listed,
            )
        )
