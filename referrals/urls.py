"""URLs of referrals and application tags (German paths, behind the second-factor gate)."""

from django.urls import path

from referrals import views

urlpatterns = [
    path("vermittlungen/eingang/", views.inbox, name="referral_inbox"),
    path("vermittlungen/ausgang/", views.outbox, name="referral_outbox"),
    path("familien/<uuid:family_id>/vermitteln/", views.referral_new, name="referral_new"),
    path("vermittlungen/<uuid:referral_id>/", views.referral_detail, name="referral_detail"),
    path("vermittlungen/<uuid:referral_id>/senden/", views.referral_send, name="referral_send"),
    path(
        "vermittlungen/<uuid:referral_id>/freigeben/",
        views.referral_approve,
        name="referral_approve",
    ),
    path(
        "vermittlungen/<uuid:referral_id>/freigabe-verweigern/",
        views.referral_refuse,
        name="referral_refuse",
    ),
    path(
        "vermittlungen/<uuid:referral_id>/zurueckziehen/",
        views.referral_withdraw,
        name="referral_withdraw",
    ),
    path(
        "vermittlungen/<uuid:referral_id>/zuweisen/", views.referral_assign, name="referral_assign"
    ),
    path(
        "vermittlungen/<uuid:referral_id>/annehmen/", views.referral_accept, name="referral_accept"
    ),
    path(
        "vermittlungen/<uuid:referral_id>/ablehnen/",
        views.referral_decline,
        name="referral_decline",
    ),
    path(
        "vermittlungen/<uuid:referral_id>/abschliessen/",
        views.referral_complete,
        name="referral_complete",
    ),
    path(
        "vermittlungen/<uuid:referral_id>/anhang/<uuid:attachment_id>/",
        views.referral_attachment,
        name="referral_attachment",
    ),
    path("antraege/", views.tag_list, name="tag_list"),
    path("antraege/code/", views.tag_lookup, name="tag_lookup"),
    path("familien/<uuid:family_id>/antrag/", views.tag_new, name="tag_new"),
    path("antraege/<str:code>/", views.tag_detail, name="tag_detail"),
    path("antraege/<str:code>/stand/", views.tag_status, name="tag_status"),
    path("antraege/<str:code>/stempel.pdf", views.tag_stamp, name="tag_stamp"),
]
