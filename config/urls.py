"""URLs of the platform. Every page is behind the second-factor gate unless its view
is marked before_second_factor (see dienstweg/middleware.py)."""

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from dienstweg import views
from dienstweg.middleware import before_second_factor

urlpatterns = [
    path("", views.home, name="home"),
    path("anmelden/", views.login_view, name="login"),
    path("abmelden/", views.logout_view, name="logout"),
    path("zweiter-faktor/einrichten/", views.enrol, name="enrol"),
    path("zweiter-faktor/", views.verify, name="verify"),
    path("zugang/<str:token>/", views.enrolment_link, name="enrolment_link"),
    path("konto/", views.account, name="account"),
    path("konto/sitzung-beenden/", views.end_session, name="end_session"),
    path("konto/anmeldung-bestaetigen/", views.reauthenticate, name="reauthenticate"),
    path("konto/backup-codes/", views.renew_backup_codes, name="renew_backup_codes"),
    path("konto/zweiter-faktor/", views.renew_second_factor, name="renew_second_factor"),
    path("konto/passwort/", views.change_password, name="change_password"),
    path("team/", views.team, name="team"),
    path("team/<int:user_id>/zweiter-faktor/", views.team_reset, name="team_reset"),
    path("rollen/<int:proposal_id>/bestaetigen/", views.proposal_confirm, name="proposal_confirm"),
    path("rollen/<int:proposal_id>/ablehnen/", views.proposal_refuse, name="proposal_refuse"),
    path("verzeichnis/", views.directory, name="directory"),
    path("verzeichnis/<int:agency_id>/", views.agency_detail, name="agency_detail"),
    path("familien/", views.family_list, name="family_list"),
    path("familien/neu/", views.family_register, name="family_register"),
    path("familien/<uuid:family_id>/", views.family_detail, name="family_detail"),
    path("familien/<uuid:family_id>/bearbeiten/", views.family_edit, name="family_edit"),
    path("familien/<uuid:family_id>/verlauf/", views.family_history_page, name="family_history"),
    path("familien/<uuid:family_id>/einwilligung/", views.consent_new, name="consent_new"),
    path(
        "familien/<uuid:family_id>/einwilligung/<uuid:consent_id>/",
        views.consent_detail,
        name="consent_detail",
    ),
    path(
        "familien/<uuid:family_id>/einwilligung/<uuid:consent_id>/widerruf/",
        views.consent_revoke,
        name="consent_revoke",
    ),
    path(
        "familien/<uuid:family_id>/einwilligung/<uuid:consent_id>/nachweis/",
        views.consent_evidence,
        name="consent_evidence",
    ),
    path("benachrichtigungen/", views.notification_list, name="notifications"),
    path("benachrichtigungen/gelesen/", views.notifications_read, name="notifications_read"),
    path("", include("referrals.urls")),
    path("", include("applications.urls")),
    path("", include("messaging.urls")),
    path("", include("conferences.urls")),
    path("datenschutz/", include("privacy.urls")),
    path("sprache/", before_second_factor(set_language), name="set_language"),
    path("healthz", views.health, name="health"),
    path("admin/", admin.site.urls),
]
