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
from typing import Any

from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
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


class ConsentMissing(Exception):
    """No consent covers the transmission; nothing may leave the owning project."""

    def __init__(self, missing: set[str]) -> None:
        super().__init__(f"no consent covers: {', '.join(sorted(missing))}")
        self.missing = missing


class ProcessingRestricted(ConsentMissing):
    """The family's processing is restricted (GDPR Art. 18, SGB X § 84): nothing leaves the
    owning project, whatever its consents say. A ConsentMissing, so that every caller of
    the gate refuses it; callers that tell the user why catch it first."""

    def __init__(self) -> None:
        super().__init__(set())
        self.args = ("processing of the family is restricted (GDPR Art. 18)",)


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


def covering_consents(
    *, family: Any, agency: Any, category: Any, purpose: str, on: date
) -> QuerySet[Consent]:
    """The consents that alone allow CATEGORY for AGENCY and PURPOSE on ON
    (Terms.allows, and the category among the consent's), as a filter for a list that asks
    it of many rows in one query. FAMILY and AGENCY may be expressions of an outer query
    (OuterRef); CATEGORY is the category's quoted form (quoted()), or an expression that
    gives it.

    The JSON lists are matched as text: a category or purpose is a validated slug
    (check_consent_data admits no other), so its quoted form appears in the list's text
    exactly when the list holds it; PostgreSQL and SQLite alike. One category needs one
    consent: consents add up only across categories (uncovered).
    tests/applications/test_tag_visibility_rule.py holds it equal to has_consent."""
    as_text = Consent.objects.annotate(
        categories_text=Cast("categories", TextField()),
        purposes_text=Cast("purposes", TextField()),
    )
    return as_text.filter(
        family=family,
        recipients=agency,
        revoked_at__isnull=True,
        valid_from__lte=on,
        valid_until__gte=on,
        purposes_text__contains=quoted(purpose),
        categories_text__contains=category,
    )


def quoted(slug: str) -> str:
    """A slug as a JSON list's text holds it."""
    if not slug.replace("_", "").isalpha() or not slug.islower():
        raise ValueError(f"not a slug: {slug!r}")
    return f'"{slug}"'


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
    """Whether the family's consents cover this now (for showing choices and the rules of
    who sees what; no lock). Never while the family's processing is restricted."""
    if family.is_restricted:
        return False
    categories = list(categories)
    on = timezone.localdate()
    consents = _candidates(family, to_agency, on, lock=False)
    _used, missing = _decide(
        consents, agency=to_agency, categories=categories, purpose=purpose, on=on
    )
    return not missing


@dataclass(frozen=True)
class ConsentScope:
    """What a family's consents cover today for one purpose: per recipient agency, the
    categories (for offering choices; a transmission still asks require_consent)."""

    by_agency: dict[int, frozenset[str]]

    @property
    def agency_ids(self) -> set[int]:
        return set(self.by_agency)

    @property
    def categories(self) -> set[str]:
        """The categories covered for some agency."""
        return set().union(*self.by_agency.values())

    def categories_for(self, agency_id: int) -> frozenset[str]:
        return self.by_agency.get(agency_id, frozenset())


def consent_scope(family: Family, *, purpose: str, today: date | None = None) -> ConsentScope:
    """The agencies, and the categories per agency, that the family's consents cover for
    PURPOSE on TODAY (default: today), by the rule of uncovered() (consents add up). No
    lock; a restriction of processing is not asked here (require_unrestricted is)."""
    on = today or timezone.localdate()
    consents = family.consents.filter(
        revoked_at__isnull=True, valid_from__lte=on, valid_until__gte=on
    ).prefetch_related("recipients")
    by_agency: dict[int, frozenset[str]] = {}
    for consent in consents:
        recipients = [agency.pk for agency in consent.recipients.all()]
        terms = Terms.of(consent, recipients)
        for agency_id in recipients:
            if terms.allows(agency_id=agency_id, purpose=purpose, on=on):
                by_agency[agency_id] = by_agency.get(agency_id, frozenset()) | terms.categories
    return ConsentScope(by_agency)


def require_consent(
    family: Family, *, to_agency: Agency, categories: Iterable[str], purpose: str
) -> list[Consent]:
    """Lock and return the consents that cover this transmission, or raise ConsentMissing
    (ProcessingRestricted while the family's processing is restricted).

    Must run inside the transaction that transmits (transaction.atomic)."""
    if not connection.in_atomic_block:
        raise RuntimeError("require_consent() must run inside the transmitting transaction")
    require_unrestricted(family)
    categories = list(categories)
    on = timezone.localdate()
    consents = _candidates(family, to_agency, on, lock=True)
    used, missing = _decide(
        consents, agency=to_agency, categories=categories, purpose=purpose, on=on
    )
    if missing or not categories:
        raise ConsentMissing(missing or {"(keine Kategorie)"})
    return used


def require_unrestricted(family: Family) -> None:
    """Lock the family row and raise ProcessingRestricted if its processing is restricted.

    For a transmission, inside its transaction: the row stays locked until it commits, so a
    restriction at the same moment either comes first (and the transmission is refused) or
    waits for it (and then hides what was sent). Read from the row, not from FAMILY, which
    may have been loaded before the restriction."""
    if not connection.in_atomic_block:
        raise RuntimeError("require_unrestricted() must run inside the transmitting transaction")
    # By the primary key alone: PostgreSQL locks (and waits for) only rows that match the
    # WHERE in its snapshot, so a condition on restricted_at would skip a row being restricted.
    restricted_at = list(
        Family.objects.select_for_update(of=("self",))
        .filter(pk=family.pk)
        .values_list("restricted_at", flat=True)
    )
    if restricted_at and restricted_at[0] is not None:
        raise ProcessingRestricted


def lock_family(family: Family) -> Family:
    """Lock the family row for a change of its restriction (or erasure); waits for the
    transmissions in flight (require_unrestricted) to commit."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_family() must run inside a transaction")
    locked = Family.objects.select_for_update(of=("self",)).select_related("data_key")
    return locked.get(pk=family.pk)


def lock_consent(consent: Consent) -> Consent:
    """Lock one consent row for a change of state (revocation); waits for transmissions
    that rely on it to commit."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_consent() must run inside a transaction")
    return Consent.objects.select_for_update(of=("self",)).get(pk=consent.pk)
