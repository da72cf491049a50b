"""A new referral refused for missing consent is recorded like a refused step on an
existing one (issue 14): by the action, for the family, with ids only in the details."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from dienstweg.actions import ActionError
from referrals.models import Referral
from tests.referrals.helpers import EMPLOYMENT_NOTE, NEED, SUMMARY, refer


def test_a_new_referral_refused_for_missing_consent_is_recorded(network, family):
    with pytest.raises(ActionError, match="Keine gültige Einwilligung"):
        refer(network, family)

    assert not Referral.objects.exists()  # the refusal still stores nothing else
    [event] = AuditEvent.objects.filter(action="referral.step_refused")
    assert event.actor_id == network.anna.pk
    assert event.family_id == str(family.pk)
    assert event.target_id == ""  # no referral was stored to point at
    assert event.details == {"verb": "send", "state": "new", "to_agency": network.jobcenter.pk}
    text = json.dumps(event.details, ensure_ascii=False)
    for plaintext in (NEED, SUMMARY, EMPLOYMENT_NOTE, "Yılmaz", "Ayşe"):
        assert plaintext not in text


def test_a_new_referral_refused_for_bad_input_records_no_send_refusal(network, family):
    """Refused before any send was tried (no need given): nothing to record as a step."""
    with pytest.raises(ActionError, match="Bedarf"):
        refer(network, family, need=" ")
    assert not AuditEvent.objects.filter(action="referral.step_refused").exists()


def test_a_saved_draft_records_no_refusal(network, family):
    refer(network, family, send=False)
    assert not AuditEvent.objects.filter(action="referral.step_refused").exists()
