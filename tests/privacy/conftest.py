"""The console's personas: Dora is the DPO (at the Jugendamt); every other persona is
refused. Sample data for the trail is recorded through audit.trail.record()."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Network, verified_client


@pytest.fixture
def dora_client(network: Network) -> Client:
    return verified_client(network.dora)
