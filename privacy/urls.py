"""The console's pages, under /datenschutz/. Every pattern passes the DPO gate
(privacy.access.dpo_only), applied below to the whole list."""

from django.urls import URLPattern, path

from privacy.access import dpo_only
from privacy.views import erasure, flags, grants, records, restriction, subjects, trail

app_name = "console"

urlpatterns = [
    path("", trail.home, name="home"),
    # The trail: search, export, verification
    path("protokoll/", trail.search, name="search"),
    path("protokoll/export.<str:fmt>", trail.export, name="export"),
    path("protokoll/pruefen/", trail.verify_now, name="verify"),
    # Data subjects: access report (Art. 15), restriction (Art. 18), erasure (Art. 17)
    path("familien/", subjects.lookup, name="subject_lookup"),
    path("familien/<str:reference>/", subjects.detail, name="subject"),
    path("familien/<str:reference>/auskunft/", subjects.access_report, name="access_report"),
    path(
        "familien/<str:reference>/auskunft.<str:fmt>",
        subjects.access_report_download,
        name="access_report_download",
    ),
    path("familien/<str:reference>/einschraenken/", restriction.restrict, name="restrict"),
    path("familien/<str:reference>/freigeben/", restriction.lift, name="lift_restriction"),
    path("familien/<str:reference>/loeschen/", erasure.erase, name="erase"),
    # Record of processing activities (Art. 30)
    path("verzeichnis/", records.processing_record, name="processing_record"),
    path("verzeichnis.json", records.processing_record_json, name="processing_record_json"),
    # Unusual access
    path("auffaelligkeiten/", flags.flag_list, name="flags"),
    path("auffaelligkeiten/<int:flag_id>/", flags.review, name="flag_review"),
    # Grants of case and dpo roles (four-eyes principle, separation of duties)
    path("rollen/", grants.grant_list, name="grants"),
]

# The gate goes on every pattern here rather than in each view, so a page added to the
# list above cannot forget it (tests/privacy/test_console_gate.py walks them all).
urlpatterns = [
    URLPattern(pattern.pattern, dpo_only(pattern.callback), pattern.default_args, pattern.name)
    for pattern in urlpatterns
]
