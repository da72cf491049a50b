"""A referral's or an application tag's thread is created by a POST, recorded, never by a
GET (issue 14)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from applications.models import ApplicationTag
from audit.models import AuditEvent
from messaging.actions import NoAccess, open_tag_thread
from messaging.models import Thread
from tests.builders import build_tag
from tests.conftest import verified_client


def opened_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="thread.opened"))


def csrf_client(user) -> Client:
    """A verified browser that has to send the CSRF token, as a real one does."""
    client = verified_client(user)
    client.handler.enforce_csrf_checks = True
    return client


def test_a_get_offers_to_open_the_thread_and_creates_nothing(network, referral):
    url = reverse("referral_thread", args=[referral.pk])
    response = verified_client(network.anna).get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Unterhaltung eröffnen" in page
    assert f'action="{url}"' in page and 'name="csrfmiddlewaretoken"' in page
    assert not Thread.objects.exists()
    assert opened_events() == []


def test_a_post_with_the_token_creates_and_records_the_thread(network, referral):
    url = reverse("referral_thread", args=[referral.pk])
    anna = csrf_client(network.anna)
    page = anna.get(url).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = anna.post(url, {"csrfmiddlewaretoken": token})

    thread = Thread.objects.get(referral=referral)
    assert response.status_code == 302
    assert response["Location"] == reverse("thread_detail", args=[thread.pk])
    [event] = opened_events()
    assert event.actor_id == network.anna.pk
    assert (event.target_type, event.target_id) == ("messaging.thread", str(thread.pk))
    assert event.family_id == str(referral.family_id)
    assert event.details == {"referral": str(referral.pk)}


def test_a_post_without_the_token_is_refused_and_creates_nothing(network, referral):
    response = csrf_client(network.anna).post(reverse("referral_thread", args=[referral.pk]))
    assert response.status_code == 403
    assert not Thread.objects.exists()
    assert opened_events() == []


def test_once_opened_a_get_goes_to_the_thread_and_a_second_post_records_nothing(network, referral):
    url = reverse("referral_thread", args=[referral.pk])
    verified_client(network.anna).post(url)
    thread = Thread.objects.get(referral=referral)

    ben = verified_client(network.ben)
    response = ben.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("thread_detail", args=[thread.pk])
    assert ben.post(url)["Location"] == reverse("thread_detail", args=[thread.pk])
    assert Thread.objects.count() == 1
    assert len(opened_events()) == 1


def test_nobody_outside_the_referral_opens_its_thread(network, referral):
    url = reverse("referral_thread", args=[referral.pk])
    dirk = verified_client(network.dirk)
    assert dirk.get(url).status_code == 404
    assert dirk.post(url).status_code == 404
    assert not Thread.objects.exists()
    assert opened_events() == []


# An application tag's thread, the same way (Anna's Bürgergeld tag at the Jobcenter).


@pytest.fixture
def tag(network, family, consent) -> ApplicationTag:
    return build_tag(network, family)


@pytest.mark.parametrize("who", ["anna", "ben"])  # the project, the processing office
def test_a_get_of_a_tag_thread_offers_to_open_it_and_creates_nothing(network, tag, who):
    url = reverse("tag_thread", args=[tag.code])
    response = verified_client(getattr(network, who)).get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Unterhaltung eröffnen" in page and tag.code in page
    assert f'action="{url}"' in page and 'name="csrfmiddlewaretoken"' in page
    assert not Thread.objects.exists()
    assert opened_events() == []


def test_a_post_with_the_token_creates_and_records_the_tag_thread(network, tag):
    url = reverse("tag_thread", args=[tag.code])
    ben = csrf_client(network.ben)
    page = ben.get(url).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = ben.post(url, {"csrfmiddlewaretoken": token})

    thread = Thread.objects.get(application_tag=tag)
    assert response.status_code == 302
    assert response["Location"] == reverse("thread_detail", args=[thread.pk])
    [event] = opened_events()
    assert event.actor_id == network.ben.pk
    assert (event.target_type, event.target_id) == ("messaging.thread", str(thread.pk))
    assert event.family_id == str(tag.family_id)
    assert event.details == {"application_tag": str(tag.pk)}


def test_a_tag_thread_post_without_the_token_is_refused_and_creates_nothing(network, tag):
    response = csrf_client(network.anna).post(reverse("tag_thread", args=[tag.code]))
    assert response.status_code == 403
    assert not Thread.objects.exists()
    assert opened_events() == []


def test_once_a_tag_thread_is_opened_a_get_goes_to_it_and_a_second_post_records_nothing(
    network, tag
):
    url = reverse("tag_thread", args=[tag.code])
    verified_client(network.anna).post(url)
    thread = Thread.objects.get(application_tag=tag)

    ben = verified_client(network.ben)
    assert ben.get(url)["Location"] == reverse("thread_detail", args=[thread.pk])
    assert ben.post(url)["Location"] == reverse("thread_detail", args=[thread.pk])
    assert Thread.objects.count() == 1
    assert len(opened_events()) == 1


def test_nobody_outside_the_tag_opens_its_thread(network, tag):
    url = reverse("tag_thread", args=[tag.code])
    dirk = verified_client(network.dirk)
    assert dirk.get(url).status_code == 404
    assert dirk.post(url).status_code == 404
    assert not Thread.objects.exists()
    assert opened_events() == []


def test_the_action_refuses_whoever_may_not_use_the_thread_and_keeps_nothing(network, tag):
    with pytest.raises(NoAccess):
        open_tag_thread(tag, by=network.dirk)
    assert not Thread.objects.exists()
    assert opened_events() == []
