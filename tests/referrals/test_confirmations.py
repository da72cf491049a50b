"""Irreversible steps ask first, without JavaScript: withdrawing and declining a referral,
revoking a consent. A GET shows the page that asks (nothing changes, no change is
recorded), a POST without `confirm` shows it too instead of acting, with what was typed,
and only the POST that carries the confirmation acts. (The DPO's erasure asks likewise:
tests/privacy/test_erasure.py.)"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from applications.access import tag_consented
from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.models import Consent
from referrals.access import receiver_sees
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import build_referral_thread, build_tag, build_tag_thread
from tests.conftest import consent_data, verified_client
from tests.referrals.helpers import assigned, refer

REASON = "Der Wohnort liegt außerhalb unseres Bezirks."


def receiver_sees_now(referral: Referral) -> bool:
    """Asked of the row as it is now (a loaded referral may carry an older answer)."""
    return receiver_sees(Referral.objects.get(pk=referral.pk))


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def changes_recorded_since(event_id: int) -> list[str]:
    """Audit actions after EVENT_ID other than reads (opening a page is recorded as read)."""
    return [
        action
        for action in AuditEvent.objects.filter(id__gt=event_id).values_list("action", flat=True)
        if not action.endswith((".viewed",))
    ]


# Withdrawing


def test_withdrawing_asks_first_by_get_and_by_post_without_confirm(network, family, consent):
    referral = refer(network, family)
    anna = verified_client(network.anna)
    url = reverse("referral_withdraw", args=[referral.pk])
    before = last_event_id()
    for response in (anna.get(url), anna.post(url, {})):
        assert response.status_code == 200
        page = response.content.decode()
        assert "zurückziehen?" in page
        assert f"{network.jobcenter.name} verliert den Zugriff" in page
        assert 'name="confirm" value="ja"' in page
        assert f'action="{url}"' in page
    referral.refresh_from_db()
    assert referral.state == Referral.State.SENT
    assert receiver_sees_now(referral)
    assert changes_recorded_since(before) == []
    # Confirmed: done.
    anna.post(url, {"confirm": "ja"})
    referral.refresh_from_db()
    assert referral.state == Referral.State.WITHDRAWN


def test_the_detail_page_button_leads_to_the_question(network, family, consent):
    referral = refer(network, family)
    page = verified_client(network.anna).get(reverse("referral_detail", args=[referral.pk]))
    form = re.search(
        r'<form method="post" action="{}"[^>]*>(.*?)</form>'.format(
            reverse("referral_withdraw", args=[referral.pk])
        ),
        page.content.decode(),
        re.S,
    )
    assert form and 'name="confirm"' not in form.group(1)


def test_the_question_is_not_asked_of_someone_who_may_not_withdraw(network, family, consent):
    referral = refer(network, family)
    ben = verified_client(network.ben)  # the receiving side
    url = reverse("referral_withdraw", args=[referral.pk])
    response = ben.get(url, follow=True)
    assert 'name="confirm"' not in response.content.decode()
    ben.post(url, {})
    referral.refresh_from_db()
    assert referral.state == Referral.State.SENT
    assert AuditEvent.objects.filter(
        action="referral.step_refused", target_id=str(referral.pk), actor_id=network.ben.pk
    ).exists()


def test_other_steps_still_refuse_a_get(network, family, consent, jana):
    referral = refer(network, family)
    response = verified_client(jana).get(reverse("referral_accept", args=[referral.pk]))
    assert response.status_code == 405


# Declining


def test_declining_asks_first_and_keeps_the_reason(network, family, consent, jana):
    referral = assigned(network, family, jana)
    ben = verified_client(network.ben)
    url = reverse("referral_decline", args=[referral.pk])
    before = last_event_id()
    response = ben.post(url, {"note": REASON})
    page = response.content.decode()
    assert response.status_code == 200
    assert "ablehnen?" in page
    assert f"{unescape(network.project.name)} erhält die Ablehnung" in unescape(page)
    box = re.search(r'<textarea id="decline-note"[^>]*>(.*?)</textarea>', page, re.S)
    assert box and unescape(box.group(1)) == REASON
    referral.refresh_from_db()
    assert referral.state == Referral.State.SENT
    assert changes_recorded_since(before) == []
    ben.post(url, {"note": REASON, "confirm": "ja"})
    referral.refresh_from_db()
    assert referral.state == Referral.State.DECLINED
    assert referral.decrypt_field("decision_note") == REASON


def test_a_confirmed_decline_without_reason_comes_back(network, family, consent, jana):
    referral = assigned(network, family, jana)
    response = verified_client(network.ben).post(
        reverse("referral_decline", args=[referral.pk]), {"note": " ", "confirm": "ja"}
    )
    assert "Bitte geben Sie einen Grund" in response.content.decode()
    referral.refresh_from_db()
    assert referral.state == Referral.State.SENT


# Revoking a consent


@pytest.fixture
def revocation(network, family):
    """The family's consent (the Jobcenter and a third agency) relied on by two sent
    referrals to the Jobcenter; besides, a draft, a withdrawn referral, and a referral to
    the Jugendamt that relies on a second consent."""
    covering = core.grant_consent(
        family,
        data=consent_data(network, family, recipients=[network.jobcenter, network.migration]),
        by=network.anna,
    )
    first = refer(network, family)
    second = refer(network, family)
    draft = refer(network, family, send=False)
    withdrawn = referral_steps.withdraw_referral(refer(network, family), by=network.anna)
    core.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.jugendamt],
            valid_until=timezone.localdate() + timedelta(days=30),
        ),
        by=network.anna,
    )
    elsewhere = refer(network, family, to=network.jugendamt)
    assert set(first.consents.all()) == {covering}
    return covering, [first, second], [draft, withdrawn, elsewhere]


def revoke_url(consent: Consent) -> str:
    return reverse("consent_revoke", args=[consent.family_id, consent.pk])


def losses(page: str) -> list[tuple[str, str]]:
    table = page.split('<table class="losses">')[1].split("</table>")[0]
    return [
        (unescape(agency), unescape(what))
        for agency, what in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table)
    ]


def test_the_revocation_page_names_exactly_who_loses_access(network, family, revocation):
    consent, losing, _keeping = revocation
    page = verified_client(network.anna).get(revoke_url(consent)).content.decode()
    assert f'<span class="reference">{family.reference}</span>' in page
    recipients = re.search(r'<ul class="recipients">(.*?)</ul>', page, re.S)
    assert recipients
    assert [unescape(name) for name in re.findall(r"<li>(.*?)</li>", recipients.group(1))] == (
        sorted([network.migration.name, network.jobcenter.name])
    )
    sent_on = timezone.localtime(losing[0].sent_at).strftime("%d.%m.%Y")
    assert (
        losses(page)
        == [(network.jobcenter.name, f"Vermittlung {family.reference} vom {sent_on} (gesendet)")]
        * 2
    )
    assert network.jugendamt.name not in page


def test_revoking_without_confirm_changes_nothing_and_keeps_the_note(network, family, revocation):
    consent, losing, _keeping = revocation
    anna = verified_client(network.anna)
    before = last_event_id()
    response = anna.post(revoke_url(consent), {"note": "Anruf von Frau Y. am 4.12."})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'value="Anruf von Frau Y. am 4.12."' in page
    assert 'name="confirm" value="ja"' in page
    consent.refresh_from_db()
    assert consent.revoked_at is None
    assert [receiver_sees_now(referral) for referral in losing] == [True, True]
    assert changes_recorded_since(before) == []
    # Confirmed: revoked, and exactly the named referrals are cut off.
    anna.post(revoke_url(consent), {"note": "Anruf von Frau Y. am 4.12.", "confirm": "ja"})
    consent.refresh_from_db()
    assert consent.revoked_at is not None
    assert [receiver_sees_now(referral) for referral in losing] == [False, False]


def test_the_revocation_page_of_a_revoked_consent_says_so(network, family, revocation):
    consent, _losing, _keeping = revocation
    core.revoke_consent(consent, note="", by=network.anna)
    response = verified_client(network.anna).get(revoke_url(consent), follow=True)
    page = response.content.decode()
    assert "bereits widerrufen" in page and 'name="confirm"' not in page


def test_the_revocation_page_is_the_projects_alone(network, family, revocation):
    consent, _losing, _keeping = revocation
    response = verified_client(network.ben).get(revoke_url(consent))
    assert response.status_code == 404


def test_the_revocation_page_costs_the_same_for_one_and_many_referrals(network, family, revocation):
    consent, _losing, _keeping = revocation
    anna = verified_client(network.anna)
    anna.get(revoke_url(consent))  # warm-up: session, content types
    with CaptureQueriesContext(connection) as two:
        anna.get(revoke_url(consent))
    for _more in range(4):
        refer(network, family)
    with CaptureQueriesContext(connection) as six:
        page = anna.get(revoke_url(consent)).content.decode()
    assert len(losses(page)) == 6
    assert len(six) == len(two)


def test_the_revocation_page_names_the_tags_and_threads_that_go_with_it(
    network, family, revocation
):
    consent, losing, _keeping = revocation
    lost = build_tag(network, family)  # Bürgergeld at the Jobcenter: only this consent covers it
    build_tag(network, family, office=network.jugendamt)  # the Jugendamt's own consent
    build_referral_thread(losing[0], messages=["Termin?", "Am Montag."], by=network.anna)
    build_tag_thread(lost, messages=["Bescheid folgt."], by=network.anna)
    page = verified_client(network.anna).get(revoke_url(consent)).content.decode()
    sent_on = timezone.localtime(losing[0].sent_at).strftime("%d.%m.%Y")
    referral = f"Vermittlung {family.reference} vom {sent_on} (gesendet)"
    tag = f"Antragsmarker Bürgergeld vom {lost.submitted_on.strftime('%d.%m.%Y')} (eingereicht)"
    jobcenter = network.jobcenter.name
    assert losses(page) == [
        (jobcenter, tag),
        (jobcenter, f"{tag}: Unterhaltung mit 1 Nachricht"),
        (jobcenter, referral),
        (jobcenter, referral),
        (jobcenter, f"{referral}: Unterhaltung mit 2 Nachrichten"),
    ]
    # What the page names is what the revocation takes: the office no longer sees the tag.
    core.revoke_consent(consent, note="", by=network.anna)
    assert not tag_consented(lost)


def test_a_tag_another_consent_still_covers_is_not_named(network, family, revocation):
    consent, _losing, _keeping = revocation
    kept = build_tag(network, family)
    build_tag_thread(kept, messages=["Bescheid folgt."], by=network.anna)
    core.grant_consent(
        family,
        data=consent_data(network, family, valid_until=timezone.localdate() + timedelta(days=30)),
        by=network.anna,
    )
    page = verified_client(network.anna).get(revoke_url(consent)).content.decode()
    assert not [what for _agency, what in losses(page) if "Antragsmarker" in what]
    core.revoke_consent(consent, note="", by=network.anna)
    assert tag_consented(kept)


def test_the_revocation_page_costs_the_same_for_one_and_many_tags_and_threads(
    network, family, revocation
):
    consent, losing, _keeping = revocation
    anna = verified_client(network.anna)
    build_tag_thread(build_tag(network, family), by=network.anna)
    anna.get(revoke_url(consent))  # warm-up: session, content types
    with CaptureQueriesContext(connection) as few:
        anna.get(revoke_url(consent))
    for _more in range(3):
        build_tag_thread(build_tag(network, family), messages=["Frage"], by=network.anna)
    for referral in losing:
        build_referral_thread(referral, messages=["Frage"], by=network.anna)
    with CaptureQueriesContext(connection) as many:
        page = anna.get(revoke_url(consent)).content.decode()
    assert len(losses(page)) == 2 + 2 * 4 + 2
    assert len(many) == len(few)
