"""What a referral hands to the receiving agency: the snapshot of exactly the shared data."""

from __future__ import annotations

import json
from typing import Any

from dienstweg.models import DataCategory
from dienstweg.snapshot import identity_snapshot
from referrals.models import Referral


def build_snapshot(referral: Referral) -> dict[str, Any]:
    """Exactly the data shared: identity data from the family record if that category is
    shared, and the coach's notes for each shared category. Nothing else of the record."""
    notes = json.loads(referral.decrypt_field("category_notes") or "{}")
    snapshot: dict[str, Any] = {
        "notes": {c: notes[c] for c in referral.categories if notes.get(c)},
    }
    if DataCategory.IDENTITY in referral.categories:
        snapshot["identity"] = identity_snapshot(referral.family)
    return snapshot
