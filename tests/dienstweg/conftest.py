"""Fixtures shared by the tests of the platform core."""

import pytest

from dienstweg.models import AuthenticatorDevice
from tests.conftest import enrol


@pytest.fixture
def slow_throttle(settings):
    """A wait of a minute after a wrong code: no test depends on how fast requests run."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 60


@pytest.fixture
def device(network) -> AuthenticatorDevice:
    """Anna's confirmed authenticator."""
    return enrol(network.anna)
