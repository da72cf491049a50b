"""The consent gate (DESIGN.md, "The three gates", 3): does the family's consent cover this
recipient agency, these data categories and this purpose today?

Every transmission of family data goes through require_consent() inside the transaction
that transmits: it locks the consent rows it relies on, so a revocation at the same moment
either comes first (and the transmission is refused) or waits until the transmission has
committed (and then withdraws the access)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.dispatch import Signal
from django.utils import timezone

from dienstweg.models import Agency, Consent, Family


@dataclass(frozen=True)
class Terms:
    """What one consent allows, as plain values (the pure core below works on these)."""

    recipients: frozenset[int]
    categories: frozenset[str]
    purposes: frozenset[str]
    valid_from: date
    valid_until: date
    revoked: bool

    @classmethod
    def of(cls, consent: Consent, recipient_ids: Iterable[int]) -> Terms:
        return cls(
            recipients=frozenset(recipient_ids),
            categories=frozenset(consent.categories),
            purposes=frozenset(consent.purposes),
            valid_from=consent.valid_from,
            valid_until=consent.valid_until,
            revoked=consent.revoked_at is not None,
        )

    def allows(self, *, agency_id: int, purpose: str, on: date) -> bool:
        return (
            not self.revoked
            and self.valid_from <= on <= self.valid_until
            and agency_id in self.recipients
            and purpose in self.purposes
        )


def uncovered(
    terms: Sequence[Terms], *, agency_id: int, categories: Iterable[str], purpose: str, on: date
) -> set[str]:
    """The requested categories that no valid consent allows for this agency and purpose.

    Consents add up: each category must be allowed by some consent that is valid on the
    day, names the agency and the purpose, and is not revoked."""
    allowed: set[str] = set()
    for term in terms:
        if term.allows(agency_id=agency_id, purpose=purpose, on=on):
            allowed |= term.categories
    return set(categories) - allowed


# Sent by actions.revoke_consent inside the revoking transaction, with consent= and by=.
# Apps above the core (referrals, messaging) withdraw what they derived from the consent;
# a receiver that fails rolls the revocation back, so nothing half-withdrawn remains.
consent_revoked = Signal()


class ConsentMissing(Exception):
    """No consent covers the transmission; nothing may leave the owning project."""

    def __init__(self, missing: set[str]) -> None:
        super().__init__(f"no consent covers: {', '.join(sorted(missing))}")
        self.missing = missing


def _candidates(family: Family, agency: Agency, on: date, *, lock: bool) -> list[Consent]:
    consents = Consent.objects.filter(
        family=family,
        recipients=agency,
        revoked_at__isnull=True,
        valid_from__lte=on,
        valid_until__gte=on,
    ).order_by("id")
    if lock:
        # The rows the decision rests on stay locked until the transmission commits.
        consents = consents.select_for_update(of=("self",))
    return list(consents)


def _decide(
    consents: list[Consent], *, agency: Agency, categories: Iterable[str], purpose: str, on: date
) -> tuple[list[Consent], set[str]]:
    terms = [Terms.of(consent, [agency.pk]) for consent in consents]
    missing = uncovered(terms, agency_id=agency.pk, categories=categories, purpose=purpose, on=on)
    used = [
        consent
        for consent, term in zip(consents, terms, strict=True)
        if term.allows(agency_id=agency.pk, purpose=purpose, on=on)
        and term.categories & set(categories)
    ]
    return used, missing


def has_consent(
    family: Family, *, to_agency: Agency, categories: Iterable[str], purpose: str
) -> bool:
    """Whether the family's consents cover this now (for showing choices; no lock)."""
    categories = list(categories)
    on = timezone.localdate()
    consents = _candidates(family, to_agency, on, lock=False)
    _used, missing = _decide(
        consents, agency=to_agency, categories=categories, purpose=purpose, on=on
    )
    return not missing


def require_consent(
    family: Family, *, to_agency: Agency, categories: Iterable[str], purpose: str
) -> list[Consent]:
    """Lock and return the consents that cover this transmission, or raise ConsentMissing.

    Must run inside the transaction that transmits (transaction.atomic)."""
    if not connection.in_atomic_block:
        raise RuntimeError("require_consent() must run inside the transmitting transaction")
    categories = list(categories)
    on = timezone.localdate()
    consents = _candidates(family, to_agency, on, lock=True)
    used, missing = _decide(
        consents, agency=to_agency, categories=categories, purpose=purpose, on=on
    )
    if missing or not categories:
        raise ConsentMissing(missing or {"(keine Kategorie)"})
    return used


def lock_consent(consent: Consent) -> Consent:
    """Lock one consent row for a change of state (revocation); waits for transmissions
    that rely on it to commit."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_consent() must run inside a transaction")
    return Consent.objects.select_for_update(of=("self",)).get(pk=consent.pk)
