"""A conference as a calendar file (iCalendar, RFC 5545) for the invitees' own calendars.

It names only the family's reference, the time and the place (or video link), and links
to the conference's page behind the login: a calendar is synchronised to phones and
clouds beyond the platform, so nothing else of the family goes into it."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from conferences.models import Conference


def _escaped(text: str) -> str:
    """TEXT as an iCalendar value (RFC 5545, 3.3.11)."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _folded(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545, 3.1), never inside a character."""
    parts: list[str] = []
    current = b""
    for character in line:
        encoded = character.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_file(conference: Conference, *, now: datetime | None = None) -> str:
    """The conference as an iCalendar file (one VEVENT; cancelled if it was)."""
    place = conference.decrypt_field("place")
    link = conference.decrypt_field("video_link")
    location = " · ".join(part for part in (place, link) if part)
    page = settings.DIENSTWEG_BASE_URL.rstrip("/") + reverse(
        "conference_detail", args=[conference.pk]
    )
    cancelled = conference.state == Conference.State.CANCELLED
    summary = f"Familienkonferenz {conference.family.reference}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Dienstweg//Familienkonferenz//DE",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'PUBLISH'}",
        "BEGIN:VEVENT",
        f"UID:{conference.pk}@dienstweg",
        # Sequence: a cancellation replaces the event in a calendar that imported it.
        f"SEQUENCE:{1 if cancelled else 0}",
        f"DTSTAMP:{_utc(now or timezone.now())}",
        f"DTSTART:{_utc(conference.starts_at)}",
        f"DTEND:{_utc(conference.ends_at)}",
        f"SUMMARY:{_escaped(('Abgesagt: ' if cancelled else '') + summary)}",
        f"LOCATION:{_escaped(location)}",
        f"URL:{page}",
        f"DESCRIPTION:{_escaped('Einzelheiten nach Anmeldung: ' + page)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_folded(line) for line in lines) + "\r\n"
