"""URLs of application tags (German paths, behind the second-factor gate)."""

from django.urls import path

from applications import views

urlpatterns = [
    path("antraege/", views.tag_list, name="tag_list"),
    path("antraege/code/", views.tag_lookup, name="tag_lookup"),
    path("familien/<uuid:family_id>/antrag/", views.tag_new, name="tag_new"),
    path("antraege/<str:code>/", views.tag_detail, name="tag_detail"),
    path("antraege/<str:code>/stand/", views.tag_status, name="tag_status"),
    path("antraege/<str:code>/stempel.pdf", views.tag_stamp, name="tag_stamp"),
]
