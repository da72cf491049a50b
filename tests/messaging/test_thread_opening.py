"""A referral's thread is created by a POST, recorded, never by a GET (issue 14)."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from messaging.models import Thread
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
