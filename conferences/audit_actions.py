"""The audit actions of conferences, each with its German label (audit.registry)."""

from functools import partial

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

_declare = partial(declare, module=__name__)

CONFERENCE_CONVENED = _declare("conference.convened", _("Familienkonferenz einberufen"))
CONFERENCE_SHARED = _declare(
    "conference.shared", _("Momentaufnahme einer Familienkonferenz übermittelt")
)
CONFERENCE_VIEWED = _declare("conference.viewed", _("Familienkonferenz geöffnet"))
CONFERENCE_CALENDAR = _declare(
    "conference.calendar_downloaded", _("Kalendereintrag einer Familienkonferenz geladen")
)
CONFERENCE_CANCELLED = _declare("conference.cancelled", _("Familienkonferenz abgesagt"))
CONFERENCE_ACCESS_DENIED = _declare(
    "conference.access_denied", _("Zugriff auf Familienkonferenz verweigert")
)
CONFERENCE_ACCESS_WITHDRAWN = _declare(
    "conference.access_withdrawn", _("Zugriff auf Familienkonferenz entzogen")
)
AGREEMENT_RECORDED = _declare("agreement.recorded", _("Vereinbarung festgehalten"))
AGREEMENT_CONFIRMED = _declare("agreement.confirmed", _("Vereinbarung verbindlich bestätigt"))
AGREEMENT_CLOSED = _declare("agreement.closed", _("Vereinbarung beendet"))
AGREEMENT_REMINDED = _declare("agreement.reminded", _("An überfällige Vereinbarung erinnert"))
AGREEMENT_ESCALATED = _declare(
    "agreement.escalated", _("Überfällige Vereinbarung an die Leitung gemeldet")
)
AGREEMENT_RECEIPT = _declare(
    "agreement.receipt_downloaded", _("Bestätigung einer Vereinbarung geladen")
)
PROTOCOL_DOWNLOADED = _declare(
    "conference.protocol_downloaded",
    _("Protokoll einer Familienkonferenz für die Familie erstellt"),
)
CONSULTATION_SHARED = _declare("consultation.shared", _("Anonyme Fallberatung an Stellen gesendet"))
CONSULTATION_REFUSED = _declare(
    "consultation.refused", _("Anonyme Fallberatung abgewiesen: Text nennt die Familie")
)
CONSULTATION_VIEWED = _declare("consultation.viewed", _("Anonyme Fallberatung geöffnet"))
CONSULTATION_ANSWERED = _declare("consultation.answered", _("Anonyme Fallberatung beantwortet"))
CONSULTATION_REIDENTIFIED = _declare(
    "consultation.reidentified", _("Familie einer Fallberatung gegenüber einer Stelle benannt")
)
CONSULTATION_ACCESS_DENIED = _declare(
    "consultation.access_denied", _("Zugriff auf Fallberatung verweigert")
)
CONSULTATION_REIDENTIFICATION_ENDED = _declare(
    "consultation.reidentification_ended",
    _("Benennung der Familie einer Fallberatung beendet (Einwilligung widerrufen)"),
)
REPORT_VIEWED = _declare("report.viewed", _("Strukturkonferenz-Bericht angesehen"))
REPORT_EXPORTED = _declare("report.exported", _("Strukturkonferenz-Bericht exportiert"))
REPORT_ACCESS_DENIED = _declare(
    "report.access_denied", _("Zugriff auf den Strukturkonferenz-Bericht verweigert")
)
