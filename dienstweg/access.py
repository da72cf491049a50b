"""Who may see what in the platform core. Views derive their querysets from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from dienstweg.models import Agency, Contact, Location, Service, StaffSession, User


def staff(request: HttpRequest) -> User:
    """The signed-in user of a page behind the second-factor gate."""
    return cast(User, request.user)


@dataclass(frozen=True)
class DirectoryFilter:
    query: str = ""
    kind: str = ""
    rechtskreis: str = ""
    language: str = ""
    accepting_only: bool = False


def directory_visible_to(user: User, search: DirectoryFilter | None = None) -> QuerySet[Agency]:
    """Agencies of the directory, with what a list page shows prefetched.

    The directory holds no family data: every verified member of the network sees all of it
    (the second-factor gate in front of every page has already let only those in)."""
    search = search or DirectoryFilter()
    agencies = Agency.objects.all()
    services = Service.objects.filter(agency=OuterRef("pk"))
    if search.query:
        words = search.query.split()[:8]
        for word in words:
            agencies = agencies.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Exists(
                    services.filter(
                        Q(name__icontains=word)
                        | Q(description__icontains=word)
                        | Q(audience__icontains=word)
                        | Q(languages__icontains=word)
                    )
                )
                | Exists(
                    Contact.objects.filter(agency=OuterRef("pk")).filter(
                        Q(name__icontains=word)
                        | Q(title__icontains=word)
                        | Q(department__icontains=word)
                    )
                )
                | Exists(Location.objects.filter(agency=OuterRef("pk"), city__icontains=word))
            )
    if search.kind:
        agencies = agencies.filter(kind=search.kind)
    if search.rechtskreis:
        agencies = agencies.filter(
            Q(rechtskreis=search.rechtskreis)
            | Exists(services.filter(rechtskreis=search.rechtskreis))
        )
    if search.language:
        agencies = agencies.filter(Exists(services.filter(languages__icontains=search.language)))
    if search.accepting_only:
        agencies = agencies.filter(Exists(services.filter(accepts_new_families=True)))
    return agencies.select_related("checked_by").prefetch_related(
        "locations",
        Prefetch("services", queryset=Service.objects.select_related("checked_by", "location")),
        Prefetch("contacts", queryset=Contact.objects.select_related("checked_by")),
    )


def access_agency_by_id(user: User, agency_id: int) -> Agency:
    """Fetch one directory entry the user may see, or 404."""
    try:
        return directory_visible_to(user).get(pk=agency_id)
    except Agency.DoesNotExist:
        raise Http404 from None


def active_sessions_of(user: User) -> QuerySet[StaffSession]:
    """The user's own sessions that have not expired, newest activity first."""
    return StaffSession.objects.filter(user=user, expire_date__gt=timezone.now()).order_by(
        "-last_seen"
    )
