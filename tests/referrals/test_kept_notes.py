"""A step with a typed text (a reason, an outcome) that is refused brings the referral's
page back with the text as typed and the reason beside it; a text over the limit is
refused, never cut by the browser nor dropped."""

from __future__ import annotations

import re
from html import unescape

from django.urls import reverse

from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.conftest import verified_client
from tests.referrals.helpers import assigned, unchanged
from tests.referrals.test_attachments import post_referral, upload


def textarea(page: str, element_id: str) -> tuple[str, str]:
    """The opening tag and the content of the textarea ELEMENT_ID."""
    match = re.search(rf'(<textarea id="{element_id}"[^>]*>)(.*?)</textarea>', page, re.S)
    assert match, element_id
    return match.group(1), unescape(match.group(2))


def test_a_reason_over_the_limit_comes_back_whole(network, family, consent, jana):
    referral = assigned(network, family, jana)
    check = unchanged(referral)
    reason = "Der Wohnort liegt außerhalb unseres Bezirks. " * 120  # 5,400 characters
    response = verified_client(network.ben).post(
        reverse("referral_decline", args=[referral.pk]), {"note": reason, "confirm": "ja"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    tag, content = textarea(page, "decline-note")
    assert content == reason
    assert "maxlength" not in tag
    assert "höchstens 5000 Zeichen" in page
    check()
    assert referral.state == Referral.State.SENT


def test_an_outcome_for_a_step_someone_else_took_is_shown_to_copy(network, family, consent, jana):
    referral = assigned(network, family, jana)
    ben = verified_client(network.ben)
    page = ben.get(reverse("referral_detail", args=[referral.pk])).content.decode()
    assert 'id="decline-note"' in page
    # Meanwhile, in another tab: accepted. The decline form of the first tab is stale.
    referral_steps.accept_referral(referral, by=network.ben)
    reason = "Familie ist umgezogen, bitte an Gelsenkirchen."
    response = ben.post(reverse("referral_decline", args=[referral.pk]), {"note": reason})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="decline-note"' not in page
    tag, content = textarea(page, "kept-note")
    assert content == reason and "readonly" in tag
    assert "Nicht möglich" in page


def test_a_referral_whose_attachment_is_refused_keeps_what_was_typed(
    network, family, consent, anna_client
):
    response = post_referral(anna_client, network, family, [upload("brief.pdf", b"kein PDF")])
    assert response.status_code == 200
    page = response.content.decode()
    assert "„brief.pdf“: nur PDF, JPEG oder PNG" in page
    assert 'value="Arbeitsvermittlung in Teilzeit"' in page
    assert re.search(r'<input[^>]*value="employment"[^>]*checked', page)
    assert "Bitte wählen Sie die Dateien erneut aus" in page
    assert not Referral.objects.exists()


def test_a_revocation_note_over_the_limit_comes_back_whole(network, family, consent, anna_client):
    note = "Widerruf telefonisch am 4.12., Rückruf von Frau Y. erbeten. " * 20  # 1,240
    response = anna_client.post(
        reverse("consent_revoke", args=[family.pk, consent.pk]), {"note": note, "confirm": "ja"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    field = re.search(rf'<input id="note-{consent.pk}"[^>]*>', page)
    assert field and f'value="{note}"' in unescape(field.group(0))
    assert "maxlength" not in field.group(0)
    assert "Der Vermerk ist zu lang (höchstens 1000 Zeichen)." in page
    consent.refresh_from_db()
    assert consent.revoked_at is None
