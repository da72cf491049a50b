"""The actions the trail records about itself."""

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

AUDIT_VERIFIED = declare("audit.verified", _("Protokoll geprüft"), module=__name__)
AUDIT_EVENTS_REMOVED = declare(
    "audit.events_removed", _("Abgelaufene Protokolleinträge entfernt"), module=__name__
)
AUDIT_EVENT_REFUSED = declare(
    "audit.event_refused",
    _("Protokolleintrag bei der Versiegelung abgewiesen (falsch datiert)"),
    module=__name__,
)
