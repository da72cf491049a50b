"""The audit actions the referrals record, each with its German label (audit.registry)."""

from functools import partial

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

_declare = partial(declare, module=__name__)

REFERRAL_DRAFTED = _declare("referral.drafted", _("Vermittlung angelegt"))
# The steps of transition() (referrals.actions.RULES)
REFERRAL_SENT = _declare("referral.sent", _("Vermittlung gesendet"))
REFERRAL_SUBMITTED = _declare("referral.submitted", _("Vermittlung zur Freigabe vorgelegt"))
REFERRAL_APPROVED = _declare("referral.approved", _("Vermittlung freigegeben"))
REFERRAL_REFUSED = _declare("referral.refused", _("Freigabe der Vermittlung verweigert"))
REFERRAL_WITHDRAWN = _declare("referral.withdrawn", _("Vermittlung zurückgezogen"))
REFERRAL_ASSIGNED = _declare("referral.assigned", _("Vermittlung zugewiesen"))
REFERRAL_ACCEPTED = _declare("referral.accepted", _("Vermittlung angenommen"))
REFERRAL_DECLINED = _declare("referral.declined", _("Vermittlung abgelehnt"))
REFERRAL_COMPLETED = _declare("referral.completed", _("Vermittlung abgeschlossen"))
REFERRAL_STEP_REFUSED = _declare("referral.step_refused", _("Schritt einer Vermittlung verweigert"))
REFERRAL_DELIVERED = _declare("referral.delivered", _("Vermittlung übermittelt"))
REFERRAL_VIEWED = _declare("referral.viewed", _("Vermittlung geöffnet"))
REFERRAL_ACCESS_DENIED = _declare("referral.access_denied", _("Zugriff auf Vermittlung verweigert"))
REFERRAL_ACCESS_WITHDRAWN = _declare(
    "referral.access_withdrawn", _("Zugriff der empfangenden Stelle entzogen")
)
REFERRAL_ATTACHMENT_DOWNLOADED = _declare(
    "referral.attachment_downloaded", _("Anhang einer Vermittlung geöffnet")
)
REFERRAL_ESCALATED = _declare("referral.escalated", _("Vermittlung an die Leitung eskaliert"))
FAMILY_CASES_ERASED = _declare("family.cases_erased", _("Vermittlungen der Familie gelöscht"))
