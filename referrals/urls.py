"""URLs of referrals (German paths, behind the second-factor gate)."""

from django.urls import path

from referrals import views

# The steps of a referral (POST), one path each: referrals.views.STEPS runs them.
STEP_PATHS = [
    ("senden", "send"),
    ("freigeben", "approve"),
    ("freigabe-verweigern", "refuse"),
    ("zurueckziehen", "withdraw"),
    ("zuweisen", "assign"),
    ("annehmen", "accept"),
    ("ablehnen", "decline"),
    ("abschliessen", "complete"),
]

urlpatterns = [
    path("vermittlungen/eingang/", views.inbox, name="referral_inbox"),
    path("vermittlungen/eingang/zuweisen/", views.inbox_assign, name="referral_inbox_assign"),
    path("vermittlungen/ausgang/", views.outbox, name="referral_outbox"),
    path("familien/<uuid:family_id>/vermitteln/", views.referral_new, name="referral_new"),
    path("vermittlungen/<uuid:referral_id>/", views.referral_detail, name="referral_detail"),
    *[
        path(
            f"vermittlungen/<uuid:referral_id>/{segment}/",
            views.referral_step,
            {"verb": verb},
            name=f"referral_{verb}",
        )
        for segment, verb in STEP_PATHS
    ],
    path(
        "vermittlungen/<uuid:referral_id>/anhang/<uuid:attachment_id>/",
        views.referral_attachment,
        name="referral_attachment",
    ),
]
