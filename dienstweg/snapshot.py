"""A shared snapshot of a family (a referral's, a conference's): what it takes from the
record, and how a page shows it."""

from __future__ import annotations

from datetime import date
from typing import Any

from dienstweg.models import Family


def identity_snapshot(family: Family) -> dict[str, Any]:
    """The record's identity data as a snapshot holds them (the category "Identität und
    Kontakt"): the household's names and birth dates, the address and the phone."""
    return {
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
