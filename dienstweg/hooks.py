"""Where the apps above the core plug into it. Each app registers in its
`AppConfig.ready()`; the core calls the hooks and never imports the apps (STYLE.md, floors).
config/navigation.py wires the main menu; everything else an app adds to the core is here.

- `colleague_actions`: what a user can do with a colleague listed in the directory.
- `family_sections`: sections of the family page below the record (referrals sent,
  applications tagged), each read through its app's own access rules.
- `consent_revoked`: what a revocation withdraws (dienstweg.actions.revoke_consent).
- `revocation_losses`: what a revocation would withdraw, for the page that asks first.
- `processing_restricted`: who must be told that a family is restricted (GDPR Art. 18).
- `before_sending`: what the outbox's sender runs before each round, outside any
  transaction (messaging's notices of unread messages, which queue their e-mails).

Erasure (GDPR Art. 17) is no hook: privacy/, on top of every app, calls each app's erasure
action itself, because its one `family.erased` event counts what each of them removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.functional import Promise

from dienstweg.access import Reach
from dienstweg.models import Consent, Family, User


@dataclass(frozen=True)
class ColleagueAction:
    """A button beside a colleague in the directory: POSTs to `url_name` with her user id."""

    label: Promise
    url_name: str


colleague_actions: list[ColleagueAction] = []


def add_colleague_action(action: ColleagueAction) -> None:
    if action not in colleague_actions:  # ready() may run more than once in tests
        colleague_actions.append(action)


@dataclass(frozen=True)
class FamilySection:
    """A section of the family page: the template and the function that gives its context
    for this family as this user may see it (her memberships read once for the page)."""

    template: str
    context: Callable[[Family, User, Reach], dict[str, Any]]


family_sections: list[FamilySection] = []


def add_family_section(section: FamilySection) -> None:
    if section not in family_sections:
        family_sections.append(section)


@dataclass(frozen=True)
class Loss:
    """Something an agency would lose if a consent were revoked (the confirmation page)."""

    agency: str  # the agency's name
    what: str  # e.g. "Vermittlung F-2026-0001 vom 01.12.2026 (angenommen)"


# Each returns what revoking the consent would withdraw, in its app, in a fixed number of
# queries however much there is (referrals, application tags, threads).
revocation_losses: list[Callable[[Consent], list[Loss]]] = []


def add_revocation_losses(losses: Callable[[Consent], list[Loss]]) -> None:
    if losses not in revocation_losses:
        revocation_losses.append(losses)


def losses_of(consent: Consent) -> list[Loss]:
    """What revoking CONSENT would withdraw, every app's, by agency."""
    return sorted(
        (loss for losses in revocation_losses for loss in losses(consent)),
        key=lambda loss: (loss.agency, loss.what),
    )


before_sending: list[Callable[[], object]] = []


def add_before_sending(producer: Callable[[], object]) -> None:
    if producer not in before_sending:
        before_sending.append(producer)


class Hook:
    """Handlers the apps register; the core runs them in registration order inside the
    transaction of its own action, so a handler that fails rolls the action back and
    nothing half-done remains."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: list[Callable[..., None]] = []

    def register(self, handler: Callable[..., None]) -> None:
        if handler not in self.handlers:  # ready() may run more than once in tests
            self.handlers.append(handler)

    def run(self, **arguments: Any) -> None:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError(f"the hook {self.name} runs inside its action's transaction")
        for handler in self.handlers:
            handler(**arguments)


def revoked(consent: Consent, *, by: User) -> None:
    """Run by revoke_consent with the consent row locked: the apps withdraw what they
    derived from it (the receiving agencies' access, the recipients' threads) and tell
    the sockets of those who lose sight of it."""
    consent_revoked.run(consent=consent, by=by)


def restricted(family: Family, *, by: User) -> None:
    """Run by restrict_processing with the family row locked. The access rules already hide
    the family's objects beyond the owning project (they ask Family.restricted_at); the
    handlers only tell the open sockets of those who lose sight of them. Lifting needs no
    hook: the rules show them again."""
    processing_restricted.run(family=family, by=by)


consent_revoked = Hook("consent_revoked")
processing_restricted = Hook("processing_restricted")
