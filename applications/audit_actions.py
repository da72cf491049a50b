"""The audit actions of the application tags, each with its German label (audit.registry)."""

from functools import partial

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

_declare = partial(declare, module=__name__)

TAG_CREATED = _declare("application_tag.created", _("Antrag markiert"))
TAG_VIEWED = _declare("application_tag.viewed", _("Antragsmarker geöffnet"))
TAG_STAMP_PRINTED = _declare("application_tag.stamp_printed", _("Stempel gedruckt"))
TAG_STATUS_CHANGED = _declare("application_tag.status_changed", _("Stand des Antrags eingetragen"))
TAG_STEP_REFUSED = _declare(
    "application_tag.step_refused", _("Schritt an einem Antragsmarker verweigert")
)
TAG_ACCESS_DENIED = _declare(
    "application_tag.access_denied", _("Zugriff auf Antragsmarker verweigert")
)
TAG_ACCESS_RESTRICTED = _declare(
    "application_tag.access_restricted", _("Zugriff wegen Einschränkung verweigert")
)
TAG_CONSENT_MISSING = _declare(
    "application_tag.consent_missing", _("Antragsmarker ohne Einwilligung")
)
TAG_LOOKUP_THROTTLED = _declare(
    "application_tag.lookup_throttled", _("Suche nach Antragsmarkern gebremst")
)
