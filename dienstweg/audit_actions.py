"""The audit actions the core records, each with its German label (audit.registry)."""

from functools import partial

from django.utils.translation import gettext_lazy as _

from audit.registry import declare

_declare = partial(declare, module=__name__)


# Sign-in and accounts (security events: kept for AUDIT_SECURITY_RETENTION_DAYS)
AUTH_LOGIN = _declare("auth.login", _("Angemeldet"))
AUTH_LOGIN_FAILED = _declare("auth.login_failed", _("Anmeldung fehlgeschlagen"))
AUTH_LOCKED_OUT = _declare("auth.locked_out", _("Anmeldung gesperrt (zu viele Fehlversuche)"))
AUTH_SECOND_FACTOR_FAILED = _declare(
    "auth.second_factor_failed", _("Zweiter Faktor fehlgeschlagen")
)
AUTH_SECOND_FACTOR_PASSED = _declare("auth.second_factor_passed", _("Zweiter Faktor bestätigt"))
AUTH_LOGOUT = _declare("auth.logout", _("Abgemeldet"))
SESSION_ENDED = _declare("session.ended", _("Sitzung beendet"))
ACCOUNT_DEACTIVATED = _declare("account.deactivated", _("Konto deaktiviert"))
ACCOUNT_SECOND_FACTOR_RESET = _declare(
    "account.second_factor_reset", _("Zweiter Faktor zurückgesetzt")
)
ACCOUNT_BACKUP_CODES_ISSUED = _declare(
    "account.backup_codes_issued", _("Backup-Codes neu ausgegeben")
)
AUTH_LOGIN_NOT_ENROLLED = _declare(
    "auth.login_not_enrolled", _("Anmeldung abgewiesen: Zugang noch nicht eingerichtet")
)
AUTH_REAUTHENTICATED = _declare(
    "auth.reauthenticated", _("Anmeldung bestätigt (Passwort und Code erneut)")
)
AUTH_REAUTHENTICATION_FAILED = _declare(
    "auth.reauthentication_failed", _("Bestätigung der Anmeldung fehlgeschlagen")
)
# Account lifecycle (kept like every other event, not only as long as security events)
ACCOUNT_CREATED = _declare("account.created", _("Konto angelegt"))
ACCOUNT_ENROLMENT_LINK_SENT = _declare(
    "account.enrolment_link_sent", _("Einrichtungslink gesendet")
)
ACCOUNT_PASSWORD_SET = _declare(
    "account.password_set", _("Passwort über den Einrichtungslink selbst festgelegt")
)
ACCOUNT_PASSWORD_CHANGED = _declare(
    "account.password_changed", _("Passwort selbst geändert (nach bestätigter Anmeldung)")
)
ACCOUNT_ENROLLED = _declare(
    "account.enrolled", _("Zweiter Faktor über den Einrichtungslink eingerichtet")
)
ACCOUNT_SECOND_FACTOR_RENEWED = _declare(
    "account.second_factor_renewed", _("Zweiter Faktor selbst erneuert")
)
MEMBERSHIP_GRANTED = _declare("membership.granted", _("Mitgliedschaft erteilt"))
MEMBERSHIP_REMOVED = _declare("membership.removed", _("Mitgliedschaft entfernt"))
ACCOUNT_ADMIN_RIGHTS_CHANGED = _declare(
    "account.admin_rights_changed", _("Verwaltungsrechte geändert")
)

# Case and dpo roles take two people: an admin proposes, a lead (or a second admin) decides.
MEMBERSHIP_PROPOSED = _declare("membership.proposed", _("Rolle vorgeschlagen"))
MEMBERSHIP_PROPOSAL_CONFIRMED = _declare(
    "membership.proposal_confirmed", _("Rollenvorschlag bestätigt")
)
MEMBERSHIP_PROPOSAL_REFUSED = _declare(
    "membership.proposal_refused", _("Rollenvorschlag abgelehnt")
)
MEMBERSHIP_PROPOSAL_WITHDRAWN = _declare(
    "membership.proposal_withdrawn", _("Rollenvorschlag zurückgezogen")
)
MEMBERSHIP_PROPOSAL_EXPIRED = _declare(
    "membership.proposal_expired", _("Rollenvorschlag abgelaufen")
)

# Families
FAMILY_REGISTERED = _declare("family.registered", _("Familie angelegt"))
FAMILY_VIEWED = _declare("family.viewed", _("Familiendaten geöffnet"))
FAMILY_CHANGED = _declare("family.changed", _("Familiendaten geändert"))
FAMILY_HISTORY_VIEWED = _declare(
    "family.history_viewed", _("Änderungsverlauf der Familie geöffnet")
)
FAMILY_SEARCHED = _declare("family.searched", _("Familien nach Name und Geburtsdatum gesucht"))
FAMILY_DUPLICATES_CHECKED = _declare(
    "family.duplicates_checked", _("Neue Familie auf Doppelerfassung geprüft")
)
FAMILY_ACCESS_DENIED = _declare("family.access_denied", _("Zugriff auf Familiendaten verweigert"))
FAMILY_KEY_DESTROYED = _declare("family.key_destroyed", _("Datenschlüssel vernichtet (Löschung)"))
FAMILY_RECORD_ERASED = _declare("family.record_erased", _("Familienakte gelöscht"))
FAMILY_PROCESSING_RESTRICTED = _declare(
    "family.processing_restricted", _("Verarbeitung eingeschränkt (Art. 18 DSGVO)")
)
FAMILY_RESTRICTION_LIFTED = _declare(
    "family.restriction_lifted", _("Einschränkung der Verarbeitung aufgehoben")
)

# Consent
CONSENT_GRANTED = _declare("consent.granted", _("Einwilligung erfasst"))
CONSENT_REVOKED = _declare("consent.revoked", _("Einwilligung widerrufen"))
CONSENT_EVIDENCE_VIEWED = _declare(
    "consent.evidence_viewed", _("Nachweis der Einwilligung geöffnet")
)
CONSENT_VIEWED = _declare("consent.viewed", _("Einwilligung im Einzelnen gelesen"))

# Keys
VAULT_DATA_KEYS_REWRAPPED = _declare(
    "vault.data_keys_rewrapped", _("Datenschlüssel mit neuem Hauptschlüssel umverpackt")
)
