"""Every console page is closed to all but the DPO, by the gate in privacy/urls.py.

The test walks every pattern the console's URL configuration resolves, so a page added
later without the gate fails here: a coach, a caseworker, a lead and an admin, each past
the second factor, get 403 for GET and POST, and each refusal is audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter

from audit.models import AuditEvent
from dienstweg.models import Family, Membership, User
from tests.conftest import Network, make_staff, verified_client

# Plausible values for the console's path parameters, by name: a real family's reference
# is filled in by the test, so a page that looked the family up first would answer.
SAMPLES = {"fmt": "json", "flag_id": "1"}


def console_patterns() -> Iterator[URLPattern]:
    """Every pattern under the console's namespace, as the root URL configuration has it."""

    def walk(resolver: URLResolver, inside: bool) -> Iterator[URLPattern]:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry, inside or entry.namespace == "console")
            elif inside:
                yield entry

    return walk(get_resolver(), False)


PATTERNS = list(console_patterns())


def url_of(pattern: URLPattern, reference: str) -> str:
    kwargs = {}
    for name, converter in getattr(pattern.pattern, "converters", {}).items():
        if name == "reference":
            kwargs[name] = reference
        elif name in SAMPLES:
            kwargs[name] = SAMPLES[name]
        else:
            kwargs[name] = "1" if isinstance(converter, IntConverter) else "x"
    return reverse(f"console:{pattern.name}", kwargs=kwargs)


def test_the_walk_finds_the_console() -> None:
    names = {pattern.name for pattern in PATTERNS}
    assert {"home", "search", "subject", "erase", "restrict", "flags"} <= names


@pytest.fixture
def refused(network: Network) -> dict[str, User]:
    """A coach, a caseworker, a lead, and an operator (admin) of the DPO's own agency."""
    return {
        "coach": network.anna,
        "caseworker": network.ben,
        "lead": network.clara,
        "admin": make_staff("olaf@example.org", "Olaf Ott", network.jugendamt, "admin"),
    }


@pytest.mark.parametrize("persona", ["coach", "caseworker", "lead", "admin"])
def test_every_console_url_refuses_a_non_dpo_and_records_it(
    refused: dict[str, User], family: Family, persona: str
) -> None:
    user = refused[persona]
    assert not Membership.objects.filter(user=user, role=Membership.Role.DPO).exists()
    client: Client = verified_client(user)
    for pattern in PATTERNS:
        url = url_of(pattern, family.reference)
        for method in ("get", "post"):
            before = AuditEvent.objects.filter(action="console.access_denied").count()
            response = getattr(client, method)(url)
            assert response.status_code == 403, (method, url, response.status_code)
            denied = AuditEvent.objects.filter(action="console.access_denied")
            assert denied.count() == before + 1, (method, url)
            event = denied.latest("pk")
            assert event.actor_id == user.pk
            assert event.target_id == pattern.name
    # Nothing but refusals was recorded: no console page ran.
    assert not AuditEvent.objects.filter(actor_id=user.pk, action__startswith="console.").exclude(
        action="console.access_denied"
    )


def test_every_console_pattern_carries_the_gate() -> None:
    ungated = [pattern.name for pattern in PATTERNS if not getattr(pattern.callback, "dpo_only", 0)]
    assert ungated == []
