"""Fixtures for the audit trail's tests.

Sealing needs committed events (on PostgreSQL the sealer never seals a running
transaction's events, the test's own included), so those tests use `trail`: a
transactional database whose audit tables are emptied afterwards with the append-only
triggers lifted, before Django's flush truncates every table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audit import signing
from audit.registry import declare
from tests.audit.helpers import empty_audit_tables

# The trail's own tests record actions of their own, declared like any app's.
for name in (
    "group.created",
    "test.first",
    "test.second",
    "test.older",
    "test.before",
    "test.younger",
    "retention.ran",
    "audit.sealed",
):
    declare(name, "Test", module=__name__)


@pytest.fixture
def trail(transactional_db: None) -> Iterator[None]:
    yield
    empty_audit_tables()


@pytest.fixture
def signing_key(settings) -> str:
    """A fresh raw Ed25519 key (base64), as production configures it."""
    settings.AUDIT_SIGNING_KEY = signing.new_private_key()
    return settings.AUDIT_SIGNING_KEY
