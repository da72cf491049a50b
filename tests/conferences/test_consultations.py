"""Anonymous case consultations: the text is checked against the family's record before
anything leaves; the agencies asked see the alias and the texts, never the family, until
the project names it to one of them with the family's consent; the trail records both."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from conferences import actions
from conferences.identifying import ADDRESS, BIRTH_DATE, NAME, PHONE, Identifiers, found_in
from conferences.models import Consultation, ConsultationAnswer
from dienstweg import actions as core
from dienstweg.actions import ActionError, NotAllowed
from dienstweg.models import Consent, Family, Notification, Purpose
from tests.conftest import Network, consent_data, verified_client

QUESTION = (
    "Alleinerziehende Mutter, zwei Kinder (3 und 8 Jahre), Schulden bei den Stadtwerken. "
    "Wer kennt ein Angebot für eine Schuldnerberatung mit Kinderbetreuung?"
)
YILMAZ = Identifiers(
    ("Ayşe", "Yılmaz", "Leyla", "Yılmaz", "Emre", "Yılmaz"),
    (date(1988, 4, 12), date(2010, 1, 20), date(2016, 9, 1)),
    "Horster Straße 30, 45964 Gladbeck",
    "02043 123456",
)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        (QUESTION, []),
        ("Frau Yilmaz sucht Arbeit", [NAME]),
        ("AYSE braucht Hilfe", [NAME]),
        ("Emrenin Kita", []),  # a longer word is not the name
        ("geboren 12.4.88", [BIRTH_DATE]),
        ("geb. 1988-04-12", [BIRTH_DATE]),
        ("am 20. Januar 2010 geboren", [BIRTH_DATE]),
        ("Kita ab 1.9.", []),  # a day without its year names nobody
        ("wohnt in der Horster Str. 30", [ADDRESS]),
        ("Horster Strasse 30a, Hinterhaus", [ADDRESS]),
        ("Horster Straße 300", []),
        ("PLZ 45964", [ADDRESS]),
        ("Tel. 02043/123456", [PHONE]),
        ("+49 (2043) 12 34 56", [PHONE]),
        ("Schulden: 123456 Euro", []),
        ("Ayşe, Horster Straße 30, Tel 02043 123456", [NAME, ADDRESS, PHONE]),
    ],
)
def test_finds_what_names_the_family(text: str, kinds: list[str]) -> None:
    assert found_in(text, YILMAZ) == kinds


LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüşçğıłé", min_size=2, max_size=12)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    first=LETTERS,
    last=LETTERS,
    before=st.text(alphabet=" .,;:!?-abc", max_size=20),
    after=st.text(alphabet=" .,;:!?-xyz", max_size=20),
    upper=st.booleans(),
)
def test_a_household_name_is_found_wherever_it_stands(
    first: str, last: str, before: str, after: str, upper: bool
) -> None:
    identifiers = Identifiers((first, last), (date(1990, 1, 1),), "", "")
    name = last.upper() if upper else last.capitalize()
    text = f"{before} {name} {after}"
    assert NAME in found_in(text, identifiers)


@settings(max_examples=200, deadline=None)
@given(born=st.dates(min_value=date(1930, 1, 1), max_value=date(2026, 12, 31)))
def test_a_birth_date_is_found_as_people_write_it(born: date) -> None:
    identifiers = Identifiers(("Xq",), (born,), "", "")
    for written in (
        f"{born.day}.{born.month}.{born.year}",
        f"{born.day:02d}.{born.month:02d}.{born.year}",
        f"{born.day}.{born.month}.{born.year % 100:02d}",
        born.isoformat(),
    ):
        assert found_in(f"geboren am {written} in Essen", identifiers) == [BIRTH_DATE], written


@pytest.fixture
def asked(network: Network, family: Family) -> Consultation:
    return actions.ask_network(
        family, question=QUESTION, agencies=[network.jobcenter, network.migration], by=network.anna
    )


def test_asks_the_agencies_without_naming_the_family(
    network: Network, family: Family, asked: Consultation
) -> None:
    assert asked.alias.startswith("Fallberatung ")
    assert family.reference not in asked.alias
    told = Notification.objects.filter(kind="consultation.asked")
    assert {n.user for n in told} == {network.ben, network.dirk}
    assert all(n.family_ref == "" for n in told)
    event = AuditEvent.objects.get(action="consultation.shared")
    assert event.family_id == str(family.pk)  # the trail knows whose case it is
    assert "Schulden" not in json.dumps(event.details)


def test_refuses_a_text_that_names_the_family_and_sends_nothing(
    network: Network, family: Family
) -> None:
    with pytest.raises(ActionError, match="Name aus dem Haushalt, Anschrift") as refused:
        actions.ask_network(
            family,
            question="Frau Yılmaz aus der Horster Straße 30 braucht Hilfe.",
            agencies=[network.jobcenter],
            by=network.anna,
        )
    assert "Yılmaz" not in str(refused.value)
    assert not Consultation.objects.exists()
    assert not Notification.objects.filter(kind="consultation.asked").exists()
    event = AuditEvent.objects.get(action="consultation.refused")
    assert "Yılmaz" not in json.dumps(event.details) and "Horster" not in json.dumps(event.details)


def test_the_refusal_names_the_kinds_in_the_readers_language(
    network: Network, family: Family
) -> None:
    with (
        translation.override("en"),
        pytest.raises(ActionError, match=r"\(Name from the household, Address\)"),
    ):
        actions.ask_network(
            family,
            question="Frau Yılmaz aus der Horster Straße 30 braucht Hilfe.",
            agencies=[network.jobcenter],
            by=network.anna,
        )


def test_only_the_project_asks(network: Network, family: Family) -> None:
    with pytest.raises(NotAllowed):
        actions.ask_network(family, question=QUESTION, agencies=[network.jobcenter], by=network.ben)


def test_recipients_see_alias_and_text_never_the_family(
    network: Network, family: Family, asked: Consultation
) -> None:
    url = reverse("consultation_detail", args=[asked.pk])
    page = verified_client(network.ben).get(url).text
    assert asked.alias in page and "Schuldnerberatung" in page
    for secret in (family.reference, "Ayşe", "Yılmaz", "Horster"):
        assert secret not in page
    assert verified_client(network.clara).get(url).status_code == 404  # not asked
    assert verified_client(network.dora).get(url).status_code == 404
    assert family.reference in verified_client(network.anna).get(url).text
    assert AuditEvent.objects.filter(action="consultation.access_denied").count() == 2


def test_answers_reach_the_coach(network: Network, family: Family, asked: Consultation) -> None:
    ben = verified_client(network.ben)
    response = ben.post(
        reverse("consultation_answer", args=[asked.pk]),
        {"text": "Die Schuldnerberatung der Caritas hat eine Kinderecke."},
    )
    assert response.status_code == 302
    answer = ConsultationAnswer.objects.get()
    assert answer.agency == network.jobcenter
    assert Notification.objects.filter(kind="consultation.answered", user=network.anna).exists()
    page = verified_client(network.dirk).get(reverse("consultation_detail", args=[asked.pk]))
    assert "Caritas hat eine Kinderecke" in page.text
    # The coach's own follow-up is checked like the question.
    with pytest.raises(ActionError):
        actions.answer_consultation(asked, text="Es geht um Emre.", by=network.anna)
    with pytest.raises(NotAllowed):
        actions.answer_consultation(asked, text="Hallo", by=network.clara)


def test_naming_the_family_needs_consent_and_ends_with_it(
    network: Network, family: Family, asked: Consultation, consent: Consent
) -> None:
    # tests/conftest.py's consent covers the Jobcenter for referral, not case coordination.
    with pytest.raises(ActionError, match="Keine gültige Einwilligung"):
        actions.reidentify(asked, agency=network.jobcenter, by=network.anna)
    url = reverse("consultation_detail", args=[asked.pk])
    assert family.reference not in verified_client(network.ben).get(url).text
    coordination = core.grant_consent(
        family,
        data=consent_data(network, family, purposes=[Purpose.CASE_COORDINATION]),
        by=network.anna,
    )
    name = reverse("consultation_name", args=[asked.pk, network.jobcenter.pk])
    anna = verified_client(network.anna)
    assert "die Familie nennen?" in anna.get(name).text
    assert anna.post(name).status_code == 302
    assert family.reference in verified_client(network.ben).get(url).text
    assert family.reference not in verified_client(network.dirk).get(url).text
    assert AuditEvent.objects.filter(action="consultation.reidentified").count() == 1
    core.revoke_consent(coordination, note="", by=network.anna)
    assert family.reference not in verified_client(network.ben).get(url).text
    assert AuditEvent.objects.filter(action="consultation.reidentification_ended").count() == 1
    assert verified_client(network.ben).post(name).status_code == 404


def test_the_form_end_to_end(network: Network, family: Family) -> None:
    anna = verified_client(network.anna)
    url = reverse("consultation_new", args=[family.pk])
    refused = anna.post(url, {"agencies": [network.jobcenter.pk], "question": "Emre braucht Hilfe"})
    assert refused.status_code == 200
    assert "Der Text nennt die Familie" in refused.text
    assert "Emre braucht Hilfe" in refused.text  # her text stays to be corrected
    assert not Consultation.objects.exists()
    sent = anna.post(url, {"agencies": [network.jobcenter.pk], "question": QUESTION})
    assert sent.status_code == 302
    assert Consultation.objects.count() == 1
    assert verified_client(network.ben).get(url).status_code == 404


def test_restriction_hides_it_from_the_agencies(
    network: Network, family: Family, asked: Consultation
) -> None:
    Family.objects.filter(pk=family.pk).update(restricted_at=timezone.now())
    url = reverse("consultation_detail", args=[asked.pk])
    assert verified_client(network.ben).get(url).status_code == 404
    assert verified_client(network.anna).get(url).status_code == 200
    with pytest.raises(ActionError, match=r"Art\. 18"):
        actions.ask_network(
            family, question=QUESTION, agencies=[network.jobcenter], by=network.anna
        )
