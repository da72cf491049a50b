"""A change of rights reaches open sockets at once, whichever way it is made: an action,
the admin, a management command or a plain ORM save or delete of a membership or an
account. Django's model signals are the one place every such path passes; the handlers only
tell the sockets (after commit), the access rules themselves read the database each time."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from dienstweg import events
from dienstweg.models import Membership, User


def membership_changed(*, instance: Membership, **_signal: Any) -> None:
    """A membership added, changed (a new role) or removed: the user's sockets re-check
    every thread they follow (access.revoked)."""
    events.access_revoked([instance.user_id])


def account_saved(*, instance: User, **_signal: Any) -> None:
    """A deactivated account: every socket of it closes."""
    if not instance.is_active:
        events.session_ended(instance.pk)


def connect() -> None:
    post_save.connect(membership_changed, sender=Membership, dispatch_uid="rights.membership")
    post_delete.connect(membership_changed, sender=Membership, dispatch_uid="rights.membership")
    post_save.connect(account_saved, sender=User, dispatch_uid="rights.account")
