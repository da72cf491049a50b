"""The Django admin site, behind the second factor (django-otp's OTPAdminSite)."""

from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite


class DienstwegAdminSite(OTPAdminSite):
    site_header = _("Dienstweg – Verwaltung")
    site_title = _("Dienstweg – Verwaltung")
    index_title = _("Einrichtungen, Konten und Verzeichnis")
