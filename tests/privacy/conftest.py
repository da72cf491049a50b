"""The console's personas. Every DPO answers for her own controller's part of the platform:
- Dora: DPO of the Jugendamt. She sees the events in which the Jugendamt acted and the
  families it owns (none: the Yılmaz family belongs to the project).
- Pia: DPO of the family-coaching project, the controller of the Yılmaz family: its access
  report, restriction and erasure are hers.
- Vera: the network's DPO (network_dpo, her membership at the Jobcenter): everything.
Every other persona is refused. Sample data for the trail is recorded through
audit.trail.record()."""

from __future__ import annotations

import pytest
from django.test import Client

from dienstweg.models import Membership, User
from tests.builders import project_dpo
from tests.conftest import Network, make_staff, verified_client


@pytest.fixture
def dora_client(network: Network) -> Client:
    return verified_client(network.dora)


@pytest.fixture
def pia(network: Network) -> User:
    return project_dpo(network)


@pytest.fixture
def pia_client(pia: User) -> Client:
    return verified_client(pia)


@pytest.fixture
def vera(network: Network) -> User:
    return make_staff(
        "vera@example.org", "Vera Vogt", network.jobcenter, Membership.Role.NETWORK_DPO
    )


@pytest.fixture
def vera_client(vera: User) -> Client:
    return verified_client(vera)
