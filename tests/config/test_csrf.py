"""Every POST of the project is refused without the CSRF token, and with a valid token
from a foreign origin over HTTPS, and changes nothing: walking every URL pattern (the
admin's included) with real ids of a family's record, consent, referral, tag, thread,
message, attachments, an enrolment link and a role proposal, as verified users who could
act on them (the owning coach, the receiving lead, the DPO, an admin). A page added later
is walked too. The same POST with the token from the site's own origin does change things
(test_the_same_post_from_the_site_itself_goes_through): the refusals are CSRF's."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.models import Family, Membership, User
from tests.conftest import PASSWORD, Network, make_staff, verified_client
from tests.dienstweg.test_urls_protected import ROUTES, Route, build_url
from tests.privacy import test_dpo_sees_no_content as dpo_walk

# The DPO walk's world: a family with a consent, a referral, a tag, a thread, a message,
# attachments and an open enrolment link (its fixture, used here by name).
world = dpo_walk.world
url_of = dpo_walk.url_of

SITE = "https://dienstweg.example"  # DIENSTWEG_CSRF_TRUSTED_ORIGINS of this test
HOST = "dienstweg.example"
# Origins that are not the site: another host, a look-alike, another port, plain HTTP.
FOREIGN_ORIGINS = [
    "https://evil.example",
    "https://dienstweg.example.evil.example",
    "https://dienstweg.example:8443",
    "http://dienstweg.example",
    "null",
]
# Tables that a refused request may touch: the session's own bookkeeping.
UNRELATED = {"django_session", "dienstweg_staffsession"}


@pytest.fixture(autouse=True)
def https_site(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [SITE]
    settings.ALLOWED_HOSTS = [HOST]


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the project, but the sessions' bookkeeping."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        if table in UNRELATED or table not in connection.introspection.table_names():
            continue
        rows[table] = sorted(
            (tuple(map(repr, row)) for row in model.objects.values_list()), key=repr
        )
    return rows


def csrf_client(user: User) -> Client:
    """A verified session of USER whose browser holds a CSRF cookie (from a page of ours)."""
    verified = verified_client(user)
    client = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    client.cookies = verified.cookies
    response = client.get("/konto/", secure=True)  # a page with forms: sets the cookie
    assert response.status_code == 200
    assert settings.CSRF_COOKIE_NAME in client.cookies
    return client


def token_of(client: Client) -> str:
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def form_for(token: str | None) -> dict[str, str]:
    """A body that the view would act on with a good token: the fields of its forms."""
    data = {
        "reason": "Begründung",
        "note": "Notiz",
        "body": "Nachricht",
        "confirm": "on",
        "assignee": "",
        "reference": "",
        "language": "en",
        "next": "/",
        "action": "delete_selected",
        "post": "yes",
    }
    if token is not None:
        data["csrfmiddlewaretoken"] = token
    return data


def url_for(route: Route, world: dict[str, Any], network: Network) -> str:
    if route.name.startswith(("admin:", "otpadmin:")) or route.url_name is None:
        family: Family = world["family"]
        ids = {
            "int": str(network.project.pk),
            "path": str(network.anna.pk),
            "str": "dienstweg",
            "uuid": str(family.pk),
        }
        return build_url(route, ids)
    return url_of(route, world, network)


def post_everywhere(
    client: Client, world: dict[str, Any], network: Network, **request: Any
) -> list[str]:
    """POST every route without the token; the answers that are not a refusal by CSRF."""
    passed = []
    for route in ROUTES:
        url = url_for(route, world, network)
        response = client.post(url, form_for(None), secure=True, **request)
        if response.status_code != 403 or b"CSRF" not in response.content:
            passed.append(f"POST {url} ({route.name}): {response.status_code}")
    return passed


@pytest.fixture
def people(network: Network, world: dict[str, Any]) -> list[User]:
    """Who could act on the world's objects: Anna (the owning coach), Clara (lead of the
    Jugendamt that received the referral, who assigns it), Dora (the Jugendamt's DPO) and
    Ada (an admin: the admin site's pages, a pending role proposal to decide)."""
    ada = User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")
    nora = core.create_staff("nora@example.org", full_name="Nora Neu", password=PASSWORD)
    core.propose_membership(nora, agency=network.jugendamt, role=Membership.Role.CASEWORKER, by=ada)
    make_staff("lea@example.org", "Lea Lang", network.jugendamt, Membership.Role.CASEWORKER)
    return [network.anna, network.clara, network.dora, ada]


def assert_nothing_changed(walk: Any) -> None:
    before, events = snapshot(), AuditEvent.objects.count()
    passed = walk()
    assert not passed, "\n".join(passed)
    after = snapshot()
    assert {t for t in before if before[t] != after[t]} == set()
    # No event either: a refusal by CSRF is not recorded (it reaches no view).
    assert AuditEvent.objects.count() == events


def test_every_post_without_a_token_is_refused_and_changes_nothing(
    network: Network, world: dict[str, Any], people: list[User]
) -> None:
    clients = [csrf_client(person) for person in people]

    def walk() -> list[str]:
        return [
            problem
            for client in clients
            for problem in post_everywhere(client, world, network, HTTP_ORIGIN=SITE)
        ]

    assert_nothing_changed(walk)


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_every_post_from_a_foreign_origin_is_refused_and_changes_nothing(
    network: Network, world: dict[str, Any], people: list[User], origin: str
) -> None:
    # Everyone with the plainly foreign origin; the look-alikes with the owning coach and
    # the admin (the check does not depend on who asks).
    everyone = origin == FOREIGN_ORIGINS[0]
    clients = [csrf_client(p) for p in people if everyone or p in (network.anna, people[-1])]

    def walk() -> list[str]:
        problems = []
        for client in clients:
            for route in ROUTES:
                url = url_for(route, world, network)
                response = client.post(
                    url,
                    form_for(token_of(client)),
                    secure=True,
                    HTTP_ORIGIN=origin,
                    HTTP_REFERER=f"{origin}/",
                    HTTP_X_CSRFTOKEN=token_of(client),
                )
                if response.status_code != 403 or b"CSRF" not in response.content:
                    problems.append(f"POST {url} ({route.name}): {response.status_code}")
        return problems

    assert_nothing_changed(walk)


def test_every_post_with_a_foreign_referer_and_no_origin_is_refused(
    network: Network, world: dict[str, Any], people: list[User]
) -> None:
    """Over HTTPS without an Origin header, Django checks the Referer: a foreign one fails."""
    clients = [csrf_client(person) for person in people]

    def walk() -> list[str]:
        problems = []
        for client in clients:
            for route in ROUTES:
                url = url_for(route, world, network)
                response = client.post(
                    url,
                    form_for(token_of(client)),
                    secure=True,
                    HTTP_REFERER="https://evil.example/dienstweg/",
                )
                if response.status_code != 403 or b"CSRF" not in response.content:
                    problems.append(f"POST {url} ({route.name}): {response.status_code}")
        return problems

    assert_nothing_changed(walk)


def test_the_same_post_from_the_site_itself_goes_through(
    network: Network, world: dict[str, Any], people: list[User]
) -> None:
    """The control: with the token, from the site's own origin, the walk's requests are
    not refused, and a revocation of the consent (one of them) does happen."""
    anna = csrf_client(network.anna)
    consent = world["consent"]
    url = f"/familien/{consent.family_id}/einwilligung/{consent.pk}/widerruf/"
    response = anna.post(
        url,
        {"csrfmiddlewaretoken": token_of(anna), "note": "Widerruf am Telefon", "confirm": "on"},
        secure=True,
        HTTP_ORIGIN=SITE,
        HTTP_REFERER=f"{SITE}/",
    )
    assert response.status_code == 302, response.content.decode()[:500]
    consent.refresh_from_db()
    assert consent.revoked_at is not None
