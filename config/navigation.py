"""The main navigation. config wires the apps' pages into one menu; the core's base
template only renders the entries it is given, so it names no page of an app above it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Entry:
    label: Promise
    url_name: str
    # The pages (URL names, or "namespace:" for a whole app) on which this entry is current.
    current: tuple[str, ...]
    dpo_only: bool = False
    # The number shown beside the label, live (dienstweg/worklist.py): "notifications" (the
    # core's) or a badge an app registers ("messages").
    badge: str = ""


MAIN: tuple[Entry, ...] = (
    Entry(_("Übersicht"), "home", ("home",)),
    Entry(_("Familien"), "family_list", ("family_list",)),
    Entry(_("Vermittlungen"), "referral_inbox", ("referral_inbox", "referral_outbox")),
    Entry(_("Anträge"), "tag_list", ("tag_list",)),
    Entry(_("Konferenzen"), "conference_list", ("conference_list", "conference_detail")),
    Entry(_("Nachrichten"), "thread_list", ("thread_list", "thread_detail"), badge="messages"),
    Entry(_("Verzeichnis"), "directory", ("directory",)),
    Entry(_("Benachrichtigungen"), "notifications", ("notifications",), badge="notifications"),
    Entry(_("Datenschutz"), "console:home", ("console:",), dpo_only=True),
    Entry(_("Mein Konto"), "account", ("account",)),
)


@dataclass(frozen=True)
class Link:
    label: Promise
    url: str
    is_current: bool
    dpo_only: bool
    badge: str


@cache
def _url(name: str) -> str:
    # The menu's pages take no arguments and the URL configuration never changes while
    # the process runs: reversed once, not on every page.
    return reverse(name)


def main_navigation(request: HttpRequest) -> dict[str, Any]:
    """The menu's links, with the one for the page shown marked current (no query: whether
    to show the DPO's entry and the unread count come from the core's context processor)."""
    match = getattr(request, "resolver_match", None)
    here = {match.url_name, f"{match.namespace}:"} if match is not None else set()
    return {
        "main_navigation": [
            Link(
                label=entry.label,
                url=_url(entry.url_name),
                is_current=bool(here.intersection(entry.current)),
                dpo_only=entry.dpo_only,
                badge=entry.badge,
            )
            for entry in MAIN
        ]
    }
