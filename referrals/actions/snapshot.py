"""What a referral hands to the receiving agency: the snapshot of exactly the shared data."""

from __future__ import annotations

import json
from typing import Any

from dienstweg.models import DataCategory
from referrals.models import Referral


def build_snapshot(referral: Referral) -> dict[str, Any]:
    """Exactly the data shared: identity data from the family record if that category is
    shared, and the coach's notes for each shared category. Nothing else of the record."""
    notes = json.loads(referral.decrypt_field("category_notes") or "{}")
    snapshot: dict[str, Any] = {
        "notes": {c: notes[c] for c in referral.categories if notes.get(c)},
    }
    if DataCategory.IDENTITY in referral.categories:
        family = referral.family
        snapshot["identity"] = {
            "members": [
                {
                    "kind": member.kind,
                    "name": member.display_name,
                    "birth_date": member.birth_date.isoformat(),
                }
                for member in family.members.all()
            ],
            "address": family.decrypt_field("address"),
            "phone": family.decrypt_field("phone"),
        }
    return snapshot
