"""Notifications of staff and their e-mails: the one write path every app calls.

    with transaction.atomic():
        ...  # the action
        notify(recipients, kind="referral.received", title=_("Neue Vermittlung"),
               family_ref=family.reference, url=reverse("referral_detail", args=[pk]))

The e-mail goes out only once the action committed, and it says no more than the title,
the family reference and a link: names and content stay behind the login.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext

from dienstweg.models import Notification, User

logger = logging.getLogger(__name__)

# A failing address or server is tried this often (each run of send_notifications once).
MAX_EMAIL_ATTEMPTS = 5
KIND = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
# Pseudonymous references only ("F-2026-0042"): capitals, digits and dashes, no names.
FAMILY_REF = re.compile(r"[A-Z0-9-]{1,20}")
# A path of this site: not "//host", not "https://…", not "javascript:…".
LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\\]*")


def notify(
    users: Iterable[User], *, kind: str, title: str | Promise, family_ref: str = "", url: str
) -> list[Notification]:
    """Create a notification for each active user (each once) and e-mail them after commit.

    Call inside the transaction of the action: a rolled-back action notifies nobody. Raises
    RuntimeError outside a transaction, ValueError for a malformed kind, reference or url."""
    if not transaction.get_connection(router.db_for_write(Notification)).in_atomic_block:
        raise RuntimeError(
            "notify() must run inside the transaction of the action it reports "
            "(transaction.atomic)."
        )
    if not KIND.fullmatch(kind) or len(kind) > 64:
        raise ValueError(f"kind must look like 'referral.received', not {kind!r}")
    if family_ref and not FAMILY_REF.fullmatch(family_ref):
        raise ValueError("family_ref must be a pseudonymous reference such as F-2026-0042")
    if len(url) > 300 or not LOCAL_PATH.fullmatch(url):
        raise ValueError(f"url must be a local path such as /familien/, not {url!r}")
    # The German msgid is stored; pages translate it for each reader.
    with translation.override("de"):
        stored_title = str(title)
    if not stored_title or len(stored_title) > 200:
        raise ValueError("title must be a text of 1 to 200 characters")
    recipients = {user.pk: user for user in users if user.is_active}
    now = timezone.now()
    created = Notification.objects.bulk_create(
        Notification(
            user=user,
            kind=kind,
            title=stored_title,
            family_ref=family_ref,
            url=url,
            created_at=now,
        )
        for user in recipients.values()
    )
    if created:
        ids = [notification.pk for notification in created]
        transaction.on_commit(
            partial(_deliver_after_commit, ids), using=router.db_for_write(Notification)
        )
    return created


def _deliver_after_commit(ids: list[int]) -> None:
    # The action has committed: nothing may raise into the caller now. What fails here
    # stays pending, and `manage.py send_notifications` tries it again.
    try:
        deliver(ids)
    except Exception as error:
        logger.error("Notification e-mails %s not sent: %s", ids, type(error).__name__)


def deliver(ids: list[int] | None = None) -> int:
    """Send the pending e-mails (of these notifications, or all) and return how many went.

    A failure counts an attempt; after MAX_EMAIL_ATTEMPTS a notification is not tried again."""
    pending = Notification.objects.filter(
        emailed_at__isnull=True,
        email_attempts__lt=MAX_EMAIL_ATTEMPTS,
        user__is_active=True,
    ).order_by("pk")
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    return sum(_deliver_one(pk) for pk in list(pending.values_list("pk", flat=True)))


def _deliver_one(pk: int) -> bool:
    with transaction.atomic():
        # The row stays locked while its e-mail is sent, so that the on-commit delivery and
        # the periodic command never send it twice; a row being sent elsewhere is skipped.
        # (SQLite has no row locks: its IMMEDIATE transactions queue the senders instead.)
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .filter(pk=pk, emailed_at__isnull=True, email_attempts__lt=MAX_EMAIL_ATTEMPTS)
            .first()
        )
        if notification is None:
            return False
        try:
            _email(notification).send()
        except Exception as error:
            Notification.objects.filter(pk=pk).update(email_attempts=F("email_attempts") + 1)
            # Only the id: the error text may contain the recipient's address.
            logger.warning(
                "Notification %s: e-mail not sent (%s), attempt %d of %d",
                pk,
                type(error).__name__,
                notification.email_attempts + 1,
                MAX_EMAIL_ATTEMPTS,
            )
            return False
        Notification.objects.filter(pk=pk).update(emailed_at=timezone.now())
        return True


def _email(notification: Notification) -> EmailMessage:
    """The e-mail of a notification: its title, the family reference and a link, no more."""
    link = settings.DIENSTWEG_BASE_URL + notification.url
    with translation.override("de"):
        title = gettext(notification.title)
        subject = f"Dienstweg: {title}"
        lines = [title, ""]
        if notification.family_ref:
            subject += f" ({notification.family_ref})"
            lines.append(gettext("Familie: %(ref)s") % {"ref": notification.family_ref})
        lines += [
            gettext("Link: %(link)s") % {"link": link},
            "",
            gettext(
                "Einzelheiten sehen Sie nur in Dienstweg, nachdem Sie sich angemeldet haben. "
                "Diese E-Mail enthält bewusst keine Namen und keine Inhalte."
            ),
        ]
    return _message(notification.user, subject=subject, body="\n".join(lines))


def _message(user: User, *, subject: str, body: str) -> EmailMessage:
    # Auto-Submitted (RFC 3834): out-of-office replies are not sent back to noreply.
    return EmailMessage(
        subject, body, to=[user.email], headers={"Auto-Submitted": "auto-generated"}
    )


def mark_read(user: User, *, ids: list[int] | None) -> int:
    """Mark the user's own unread notifications read (these ids, or all); return how many."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


def send_mail_to(users: Iterable[User], *, subject: str, body: str) -> int:
    """E-mail each active user (each once), e.g. a digest; return how many were sent.

    The caller guarantees that subject and body hold no personal data. A failure is logged
    with the user id only and does not stop the others."""
    sent = 0
    recipients = {user.pk: user for user in users if user.is_active and user.email}
    for user in recipients.values():
        try:
            _message(user, subject=subject, body=body).send()
        except Exception as error:
            logger.warning("E-mail to user %s not sent (%s)", user.pk, type(error).__name__)
        else:
            sent += 1
    return sent
