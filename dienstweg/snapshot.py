"""What a shared snapshot of a family (a referral's, a conference's) looks like on a page."""

from __future__ import annotations

from datetime import date
from typing import Any


def readable_identity(identity: dict[str, Any] | None) -> dict[str, Any] | None:
    """The snapshot's identity with each birth date as a date, so the page writes it in
    the reader's locale (12.04.1988), not as stored (1988-04-12)."""
    if not identity:
        return identity
    members = [
        {**person, "birth_date": _day(person.get("birth_date", ""))}
        for person in identity.get("members", [])
    ]
    return {**identity, "members": members}


def _day(value: str) -> date | str:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return value
