"""URLs of Familienkonferenzen (German paths, behind the second-factor gate)."""

from django.urls import path

from conferences import views

urlpatterns = [
    path("konferenzen/", views.conference_list, name="conference_list"),
    path("familien/<uuid:family_id>/konferenz/", views.conference_new, name="conference_new"),
    path("konferenzen/<uuid:conference_id>/", views.conference_detail, name="conference_detail"),
    path(
        "konferenzen/<uuid:conference_id>/termin.ics",
        views.conference_calendar,
        name="conference_calendar",
    ),
    path(
        "konferenzen/<uuid:conference_id>/absagen/",
        views.conference_cancel,
        name="conference_cancel",
    ),
    path(
        "konferenzen/<uuid:conference_id>/protokoll.pdf",
        views.conference_protocol,
        name="conference_protocol",
    ),
    path(
        "konferenzen/<uuid:conference_id>/vereinbarungen/",
        views.agreement_new,
        name="agreement_new",
    ),
    path(
        "konferenzen/<uuid:conference_id>/vereinbarungen/<uuid:agreement_id>/bestaetigen/",
        views.agreement_confirm,
        name="agreement_confirm",
    ),
    path(
        "konferenzen/<uuid:conference_id>/vereinbarungen/<uuid:agreement_id>/beenden/",
        views.agreement_close,
        name="agreement_close",
    ),
    path(
        "konferenzen/<uuid:conference_id>/vereinbarungen/<uuid:agreement_id>/bestaetigung.json",
        views.agreement_receipt,
        name="agreement_receipt",
    ),
    path(
        "familien/<uuid:family_id>/fallberatung/",
        views.consultation_new,
        name="consultation_new",
    ),
    path(
        "fallberatungen/<uuid:consultation_id>/",
        views.consultation_detail,
        name="consultation_detail",
    ),
    path(
        "fallberatungen/<uuid:consultation_id>/antworten/",
        views.consultation_answer,
        name="consultation_answer",
    ),
    path(
        "fallberatungen/<uuid:consultation_id>/benennen/<int:agency_id>/",
        views.consultation_name,
        name="consultation_name",
    ),
    path(
        "konferenzen/<uuid:conference_id>/unterhaltung/",
        views.conference_thread,
        name="conference_thread",
    ),
    path("strukturkonferenz/", views.structure_report, name="structure_report"),
    path(
        "strukturkonferenz/bericht.<str:fmt>",
        views.structure_report_export,
        name="structure_report_export",
    ),
]
