"""The audit actions of the DPO console and the data-subject rights, each with its German
label (audit.registry)."""

from functools import partial

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

_declare = partial(declare, module=__name__)

CONSOLE_ACCESS_DENIED = _declare("console.access_denied", _("Datenschutz: Zugang verweigert"))
CONSOLE_VIEWED = _declare("console.viewed", _("Datenschutz: Konsole geöffnet"))
CONSOLE_SEARCHED = _declare("console.searched", _("Datenschutz: Protokoll durchsucht"))
CONSOLE_EXPORTED = _declare("console.exported", _("Datenschutz: Protokoll exportiert"))
CONSOLE_RECEIPT_DOWNLOADED = _declare(
    "console.receipt_downloaded", _("Datenschutz: Prüfquittung des Protokolls heruntergeladen")
)
CONSOLE_SUBJECT_LOOKUP = _declare("console.subject_lookup", _("Datenschutz: Familie gesucht"))
CONSOLE_FAMILY_NOT_FOUND = _declare(
    "console.family_not_found", _("Datenschutz: Familie nicht gefunden")
)
CONSOLE_FAMILY_OUT_OF_SCOPE = _declare(
    "console.family_out_of_scope",
    _("Datenschutz: Familie einer anderen verantwortlichen Stelle verweigert"),
)
CONSOLE_SUBJECT_VIEWED = _declare("console.subject_viewed", _("Datenschutz: Übersicht geöffnet"))
CONSOLE_ACCESS_REPORT = _declare("console.access_report", _("Datenschutz: Auskunft erstellt"))
CONSOLE_RESTRICTION_REFUSED = _declare(
    "console.restriction_refused", _("Datenschutz: Einschränkung nicht möglich")
)
CONSOLE_ERASURE_PREPARED = _declare(
    "console.erasure_prepared", _("Datenschutz: Löschung vorbereitet")
)
CONSOLE_PROCESSING_RECORD_VIEWED = _declare(
    "console.processing_record_viewed", _("Datenschutz: Verarbeitungsverzeichnis geöffnet")
)
CONSOLE_FLAGS_VIEWED = _declare("console.flags_viewed", _("Datenschutz: Auffälligkeiten geöffnet"))
CONSOLE_FLAG_VIEWED = _declare("console.flag_viewed", _("Datenschutz: Auffälligkeit geöffnet"))
CONSOLE_GRANTS_VIEWED = _declare("console.grants_viewed", _("Datenschutz: Rollenvergaben geöffnet"))
CONSOLE_ACCESS_FLAGGED = _declare("console.access_flagged", _("Auffälliger Zugriff gemeldet"))
CONSOLE_FLAG_REVIEWED = _declare("console.flag_reviewed", _("Auffälligkeit geprüft"))
FAMILY_ERASED = _declare("family.erased", _("Daten der Familie gelöscht (Art. 17 DSGVO)"))
RETENTION_APPLIED = _declare("retention.applied", _("Aufbewahrungsfristen angewandt"))
REFERRAL_REMOVED_BY_RETENTION = _declare(
    "referral.removed_by_retention", _("Vermittlung nach Ablauf der Frist gelöscht")
)
TAG_REMOVED_BY_RETENTION = _declare(
    "application_tag.removed_by_retention", _("Antragsmarker nach Ablauf der Frist gelöscht")
)
THREAD_REMOVED_BY_RETENTION = _declare(
    "thread.removed_by_retention", _("Unterhaltung nach Ablauf der Frist gelöscht")
)
BACKUP_CREATED = _declare("backup.created", _("Sicherung der Datenbank erstellt"))
BACKUP_FAILED = _declare("backup.failed", _("Sicherung der Datenbank fehlgeschlagen"))
BACKUP_RESTORED = _declare("backup.restored", _("Sicherung der Datenbank zurückgespielt"))
BACKUPS_REMOVED = _declare("backup.removed", _("Abgelaufene Sicherungen entfernt"))
