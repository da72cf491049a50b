"""Notifications of staff and their e-mails: the one write path every app calls.

    with transaction.atomic():
        ...  # the action
        notify(recipients, kind="referral.received", title=_("Neue Vermittlung"),
               family_ref=family.reference, url=reverse("referral_detail", args=[pk]))

Its e-mail is a row of the outbox (dienstweg/outbox.py), written in the same transaction and
sent later by `manage.py send_notifications`, never inside the request. It says no more than
the title, the family reference and a link: names and content stay behind the login.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.db import router, transaction
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext

from dienstweg import outbox, worklist
from dienstweg.models import Notification, User

KIND = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
# Pseudonymous references only ("F-2026-0042"): capitals, digits and dashes, no names.
FAMILY_REF = re.compile(r"[A-Z0-9-]{1,20}")
# A path of this site: not "//host", not "https://…", not "javascript:…".
LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\\]*")


def notify(
    users: Iterable[User], *, kind: str, title: str | Promise, family_ref: str = "", url: str
) -> list[Notification]:
    """Create a notification for each active user (each once) and queue its e-mail.

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
        # Her badges, and the start page where the news waits (answers, escalations).
        worklist.counts_changed(recipients)
        subject, body = email_text(stored_title, family_ref=family_ref, url=url)
        outbox.queue_mail(
            recipients.values(), kind=kind, subject=subject, body=body, family_ref=family_ref
        )
    return created


def email_text(title: str, *, family_ref: str, url: str) -> tuple[str, str]:
    """Subject and body of a notification's e-mail: its title, the family reference and a
    link, no more."""
    link = settings.DIENSTWEG_BASE_URL + url
    with translation.override("de"):
        title = gettext(title)
        subject = f"Dienstweg: {title}"
        lines = [title, ""]
        if family_ref:
            subject += f" ({family_ref})"
            lines.append(gettext("Familie: %(ref)s") % {"ref": family_ref})
        lines += [
            gettext("Link: %(link)s") % {"link": link},
            "",
            gettext(
                "Einzelheiten sehen Sie nur in Dienstweg, nachdem Sie sich angemeldet haben. "
                "Diese E-Mail enthält bewusst keine Namen und keine Inhalte."
            ),
        ]
    return subject, "\n".join(lines)


def mark_read(user: User, *, ids: list[int] | None) -> int:
    """Mark the user's own unread notifications read (these ids, or all); return how many."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    count = unread.update(read_at=timezone.now())
    if count:
        worklist.counts_changed([user.pk])  # the badge in her other tabs
    return count
