"""The hook points where the apps above the core plug in (dienstweg/hooks.py): which
handlers a revocation and a restriction run, and that they run inside the action's own
transaction, so a failing handler leaves nothing half-done."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from dienstweg import actions, hooks
from dienstweg.models import Consent
from tests.conftest import Network


def names(hook: hooks.Hook) -> list[str]:
    return [f"{handler.__module__}.{handler.__name__}" for handler in hook.handlers]


def test_a_revocation_takes_effect_in_referrals_messaging_and_conferences() -> None:
    assert names(hooks.consent_revoked) == [
        "referrals.actions.permissions.withdraw_access_after_revocation",
        "messaging.actions.forget_after_revocation",
        "conferences.actions.convening.withdraw_access_after_revocation",
        "conferences.actions.consultations.end_reidentification_after_revocation",
    ]


def test_a_restriction_is_told_by_referrals_messaging_and_conferences() -> None:
    assert names(hooks.processing_restricted) == [
        "referrals.actions.permissions.hide_after_restriction",
        "messaging.actions.forget_after_restriction",
        "conferences.actions.convening.hide_after_restriction",
    ]


def test_family_page_shows_referrals_then_tags_then_conferences() -> None:
    assert [section.template for section in hooks.family_sections] == [
        "referrals/family_section.html",
        "applications/family_section.html",
        "conferences/family_section.html",
    ]


@pytest.mark.django_db
def test_a_failing_handler_rolls_the_revocation_back(
    network: Network, consent: Consent, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_arguments: object) -> None:
        raise RuntimeError("handler failed")

    monkeypatch.setattr(
        hooks.consent_revoked, "handlers", [*hooks.consent_revoked.handlers, broken]
    )
    with pytest.raises(RuntimeError, match="handler failed"):
        actions.revoke_consent(consent, note="Familie widerruft", by=network.anna)
    consent.refresh_from_db()
    assert consent.revoked_at is None
    assert not AuditEvent.objects.filter(action="consent.revoked").exists()


def test_hooks_refuse_to_run_outside_a_transaction() -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        hooks.consent_revoked.run(consent=None, by=None)
