"""The reads of the blind indexes are recorded (issue 14): the family search (the families
it showed, issue 15) and the duplicate check before registering a family. Ids and counts
only: never the names or birth dates looked up."""

from __future__ import annotations

import json

from audit.models import AuditEvent
from dienstweg.models import Family
from tests.dienstweg.test_families import LIST_URL, REGISTER_URL, register, registration

TYPED = ("Ayşe", "Yılmaz", "1988-04-12", "1988", "12.04")


def assert_no_plaintext(event: AuditEvent) -> None:
    text = json.dumps(event.details, ensure_ascii=False).casefold()
    for value in TYPED:
        assert value.casefold() not in text


def test_the_search_by_name_and_birth_date_is_recorded(network, family, anna_client):
    register(network)  # another family, not found

    response = anna_client.post(LIST_URL, {"query": "ayşe YıLMAZ 12.04.1988"})

    assert family.reference in response.content.decode()
    [event] = AuditEvent.objects.filter(action="family.searched")
    assert event.actor_id == network.anna.pk
    assert (event.family_id, event.target_id) == (str(family.pk), str(family.pk))
    assert event.details == {"found": 1, "shown": 1, "page": 1}
    assert_no_plaintext(event)


def test_a_search_that_finds_nothing_is_recorded_too(network, family, anna_client):
    anna_client.post(LIST_URL, {"query": "Yılmaz 13.04.1988"})
    [event] = AuditEvent.objects.filter(action="family.searched")
    assert (event.actor_id, event.family_id) == (network.anna.pk, None)
    assert event.details == {"found": 0, "shown": 0, "page": 1}
    assert_no_plaintext(event)


def test_the_list_without_a_search_records_no_search(network, family, anna_client):
    anna_client.get(LIST_URL)
    assert not AuditEvent.objects.filter(action="family.searched").exists()
    # It shows names, though: each family shown is recorded as listed.
    [event] = AuditEvent.objects.filter(action="family.listed")
    assert (event.actor_id, event.family_ref) == (network.anna.pk, family.reference)


def test_the_duplicate_check_is_recorded(network, family, anna_client):
    again = [
        ("adult", "  AYŞE ", "yılmaz  ", "1988-04-12"),
        ("child", "Can", "Yılmaz", "2019-05-05"),
    ]
    response = anna_client.post(REGISTER_URL, registration(again, owner=network.project.pk))

    assert "Möglicherweise schon erfasst:" in response.content.decode()
    [event] = AuditEvent.objects.filter(action="family.duplicates_checked")
    assert (event.actor_id, event.family_id) == (network.anna.pk, str(family.pk))
    assert event.details == {"members": 2, "found": 1}
    assert_no_plaintext(event)


def test_a_check_that_finds_no_duplicate_is_recorded_before_the_registration(
    network, family, anna_client
):
    other = [("adult", "Murat", "Kaya", "1979-06-30")]
    response = anna_client.post(REGISTER_URL, registration(other, owner=network.project.pk))

    assert response.status_code == 302
    [event] = AuditEvent.objects.filter(action="family.duplicates_checked")
    assert (event.actor_id, event.family_id) == (network.anna.pk, None)
    assert event.details == {"members": 1, "found": 0}
    text = json.dumps(event.details, ensure_ascii=False)
    assert "Kaya" not in text and "1979" not in text
    assert Family.objects.count() == 2
