"""Opening an application tag by its code (applications/access.py, access_tag_by_code, and
the look-up page): the processing office opens it by the code typed in any spelling or from
the stamp's QR code, only while the family's consent covers it; a wrong code looks exactly
like someone else's tag and is audited; wrong codes are throttled per account.

Who may see what here: Ben (caseworker at the Jobcenter) opens the Jobcenter tag through the
consent fixture; Clara (Jugendamt) is not named in that consent; Dirk is the outsider."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from applications.models import ApplicationTag
from dienstweg import actions as core
from dienstweg.models import Consent, Family
from tests.applications.helpers import (
    APPLICATION_SUPPORT,
    FILE_NUMBER,
    PROJECT_PHONE,
    REFUSAL,
    detail_url,
    events,
    status_url,
    tag,
    unknown_code,
)
from tests.conftest import Network, verified_client

pytestmark = pytest.mark.usefixtures("empty_cache", "project_phone")


# The processing office opens a tag by its code


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(str.lower, id="lower-case"),
        pytest.param(lambda code: " " + code.replace("-", " ") + " ", id="spaces"),
        pytest.param(lambda code: code.replace("-", ""), id="without-dashes"),
    ],
)
def test_clerk_opens_the_tag_by_the_code_typed_in_any_spelling(
    network: Network, jobcenter_tag: ApplicationTag, typed
) -> None:
    client = verified_client(network.ben)
    # The tag's page answers the POST itself: no redirect carries the code into the URL.
    page = client.post(reverse("tag_lookup"), {"code": typed(jobcenter_tag.code)})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Anna Albers" in html
    assert PROJECT_PHONE in html
    assert FILE_NUMBER in html
    [event] = events("application_tag.viewed", network.ben)
    assert event.target_id == str(jobcenter_tag.pk)


def test_a_mistyped_code_shows_the_look_up_again_with_a_german_message(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    client = verified_client(network.ben)
    mistyped = jobcenter_tag.code[:-1] + ("2" if jobcenter_tag.code[-1] != "2" else "3")

    response = client.post(reverse("tag_lookup"), {"code": mistyped})

    assert response.status_code == 404
    html = response.content.decode()
    assert "Unter diesem Code findet sich kein Antrag für Ihre Stelle." in html
    assert 'aria-invalid="true"' in html
    assert f'value="{mistyped}"' in html  # what was typed, to correct it
    assert 'method="post"' in html
    assert "Not Found" not in html
    assert FILE_NUMBER not in html and "Anna Albers" not in html
    [denied] = events("application_tag.access_denied", network.ben)
    assert denied.family_id is None
    # Then the right code opens the tag from the same form.
    assert client.post(reverse("tag_lookup"), {"code": jobcenter_tag.code}).status_code == 200


def test_a_code_of_another_office_looks_like_a_mistyped_one(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    client = verified_client(network.dirk)
    foreign = client.post(reverse("tag_lookup"), {"code": jobcenter_tag.code})
    unknown = client.post(reverse("tag_lookup"), {"code": unknown_code()})
    assert foreign.status_code == unknown.status_code == 404
    assert "Unter diesem Code findet sich kein Antrag" in foreign.content.decode()
    assert b"Anna" not in foreign.content


def test_clerk_opens_the_tag_from_the_qr_url_and_it_is_audited_as_application_support(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    response = verified_client(network.ben).get(detail_url(jobcenter_tag.code))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Anna Albers" in html
    assert PROJECT_PHONE in html
    [event] = events("application_tag.viewed", network.ben)
    assert event.family_id == str(family.pk)
    assert event.target_id == str(jobcenter_tag.pk)
    assert event.purpose == APPLICATION_SUPPORT
    assert event.agency_id == network.jobcenter.pk


def _uncovered_kind(network: Network, family: Family, consent: Consent):
    # Wohngeld discloses housing data; Ayşe's consent covers household, not housing.
    return tag(network, family, kind=ApplicationTag.Kind.HOUSING_BENEFIT), network.ben


def _revoked(network: Network, family: Family, consent: Consent):
    tag_ = tag(network, family)
    core.revoke_consent(consent, note="Widerruf", by=network.anna)
    return tag_, network.ben


def _office_not_named(network: Network, family: Family, consent: Consent):
    # The Jugendamt processes it, but the consent names only the Jobcenter.
    return tag(network, family, office=network.jugendamt), network.clara


@pytest.mark.parametrize(
    "situation",
    [
        pytest.param(_uncovered_kind, id="category-not-covered"),
        pytest.param(_revoked, id="consent-revoked"),
        pytest.param(_office_not_named, id="office-not-named"),
    ],
)
def test_clerk_without_consent_is_refused_clearly_and_sees_nothing(
    network: Network, family: Family, consent: Consent, situation
) -> None:
    tag_, clerk = situation(network, family, consent)

    response = verified_client(clerk).get(detail_url(tag_.code))

    assert response.status_code == 403
    html = response.content.decode()
    assert REFUSAL in html
    for secret in (FILE_NUMBER, "Anna Albers", PROJECT_PHONE, family.reference):
        assert secret not in html
    [event] = events("application_tag.consent_missing", clerk)
    assert event.family_id == str(family.pk)
    assert event.target_id == str(tag_.pk)
    assert events("application_tag.viewed", clerk) == []


# Wrong codes reveal nothing


def test_unknown_code_looks_exactly_like_a_tag_of_someone_else(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    client = verified_client(network.dirk)
    missing = unknown_code()
    pairs = [
        (client.get(detail_url(missing)), client.get(detail_url(jobcenter_tag.code))),
        (
            client.get(reverse("tag_stamp", args=[missing])),
            client.get(reverse("tag_stamp", args=[jobcenter_tag.code])),
        ),
        (
            client.post(status_url(missing), {"state": "received"}),
            client.post(status_url(jobcenter_tag.code), {"state": "received"}),
        ),
    ]
    for unknown, foreign in pairs:
        assert unknown.status_code == foreign.status_code == 404
        assert unknown["Content-Type"] == foreign["Content-Type"]
        assert unknown.content == foreign.content
        assert b"Anna" not in foreign.content
    denied = events("application_tag.access_denied", network.dirk)
    assert [event.family_id for event in denied] == [None, str(family.pk)] * 3
    assert ApplicationTag.objects.get().state == ApplicationTag.State.SUBMITTED


# The look-up throttle


def fail(client: Client, times: int) -> None:
    for _ in range(times):
        assert client.get(detail_url(unknown_code())).status_code == 404


def test_too_many_wrong_codes_block_even_the_right_one(
    network: Network, jobcenter_tag: ApplicationTag, settings
) -> None:
    client = verified_client(network.ben)
    fail(client, settings.TAG_LOOKUP_MAX_FAILURES)

    typed = client.post(reverse("tag_lookup"), {"code": jobcenter_tag.code}, follow=True)

    assert typed.status_code == 429
    assert "Zu viele unbekannte Codes" in typed.content.decode()
    assert FILE_NUMBER not in typed.content.decode()
    assert client.get(detail_url(jobcenter_tag.code)).status_code == 429
    assert client.get(reverse("tag_lookup")).status_code == 429
    assert len(events("application_tag.lookup_throttled", network.ben)) == 3
    assert events("application_tag.viewed", network.ben) == []


def test_throttle_counts_wrong_codes_per_user(
    network: Network, jobcenter_tag: ApplicationTag, settings
) -> None:
    ben, dirk = verified_client(network.ben), verified_client(network.dirk)
    # Together they are over the limit; each of them is not.
    fail(ben, settings.TAG_LOOKUP_MAX_FAILURES - 1)
    fail(dirk, settings.TAG_LOOKUP_MAX_FAILURES - 1)
    assert ben.get(detail_url(jobcenter_tag.code)).status_code == 200

    fail(dirk, 1)
    assert dirk.get(detail_url(jobcenter_tag.code)).status_code == 429
    assert ben.get(detail_url(jobcenter_tag.code)).status_code == 200
    assert events("application_tag.lookup_throttled", network.ben) == []
    assert len(events("application_tag.lookup_throttled", network.dirk)) == 1


# The "Anträge" page from each side


def test_the_clerks_antraege_page_explains_the_processing_offices_side(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    html = verified_client(network.ben).get(reverse("tag_list")).content.decode()
    assert "Für die bearbeitende Stelle" in html
    assert "Tragen Sie den Stand ein" in html
    assert jobcenter_tag.code not in html  # the office has no list, only the look-up
    assert "Anträge markieren Sie in der Akte der Familie" not in html


def test_the_coachs_antraege_page_keeps_the_projects_side(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    html = verified_client(network.anna).get(reverse("tag_list")).content.decode()
    assert "Anträge markieren Sie in der Akte der Familie" in html
    assert jobcenter_tag.code in html
    assert "Für die bearbeitende Stelle" not in html
