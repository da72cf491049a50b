"""Fixtures of the application-tag tests: an empty cache and the project's public phone
(modules opt in with `usefixtures`), and the Jobcenter tag most tests open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from applications.models import ApplicationTag
from dienstweg.models import Consent, Family
from tests.applications.helpers import PROJECT_PHONE, tag
from tests.conftest import Network


@pytest.fixture
def empty_cache() -> Iterator[None]:
    """The look-up throttle lives in the cache: every test starts with no failures."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def project_phone(network: Network) -> None:
    network.project.public_phone = PROJECT_PHONE
    network.project.save(update_fields=["public_phone"])


@pytest.fixture
def jobcenter_tag(network: Network, family: Family, consent: Consent) -> ApplicationTag:
    """Ayşe's Bürgergeld application at the Jobcenter (category household: covered)."""
    return tag(network, family)
