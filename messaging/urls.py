"""URLs of messaging (German paths, behind the second-factor gate)."""

from django.urls import path

from messaging import views

urlpatterns = [
    path("nachrichten/", views.thread_list, name="thread_list"),
    path("nachrichten/<uuid:thread_id>/", views.thread_detail, name="thread_detail"),
    path("nachrichten/<uuid:thread_id>/senden/", views.thread_post, name="thread_post"),
    path(
        "nachrichten/nachricht/<uuid:message_id>/loeschen/",
        views.message_delete,
        name="message_delete",
    ),
    path(
        "nachrichten/nachricht/<uuid:message_id>/aendern/", views.message_edit, name="message_edit"
    ),
    path(
        "nachrichten/anhang/<uuid:attachment_id>/",
        views.message_attachment,
        name="message_attachment",
    ),
    path("nachrichten/direkt/<int:user_id>/", views.direct_thread, name="direct_thread"),
    path(
        "vermittlungen/<uuid:referral_id>/nachrichten/",
        views.referral_thread,
        name="referral_thread",
    ),
    path("antraege/<str:code>/nachrichten/", views.tag_thread, name="tag_thread"),
]
