"""The audit actions messaging records, each with its German label (audit.registry)."""

from functools import partial

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

_declare = partial(declare, module=__name__)

THREAD_OPENED = _declare("thread.opened", _("Unterhaltung eröffnet"))
THREAD_ACCESS_DENIED = _declare("thread.access_denied", _("Zugriff auf Unterhaltung verweigert"))
MESSAGE_POSTED = _declare("message.posted", _("Nachricht geschrieben"))
MESSAGE_EDITED = _declare("message.edited", _("Nachricht bearbeitet"))
MESSAGE_DELETED = _declare("message.deleted", _("Nachricht gelöscht"))
MESSAGE_READ = _declare("message.read", _("Nachrichten gelesen"))
MESSAGE_ATTACHMENT_DOWNLOADED = _declare(
    "message.attachment_downloaded", _("Anhang einer Nachricht geöffnet")
)
FAMILY_THREADS_ERASED = _declare("family.threads_erased", _("Unterhaltungen gelöscht"))
