"""One message as HTML, the same for the page and the socket: the page includes
message.html for each message it shows, a socket renders it through message_html for its
user. So a message offers the same actions live as after a reload."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.dateparse import parse_datetime

from messaging.actions import MessagePayload

# Longer texts show their start; the rest unfolds (<details>, without JavaScript).
FOLD_CHARS = 600
FOLD_LINES = 8


def shown(message: MessagePayload, *, me: int) -> dict[str, Any]:
    """The template's view of a message for reader ME."""
    head, tail = fold(message["body"])
    return {
        **message,
        "at": parse_datetime(message["created_at"]),
        "own": message["author"] == me,
        "head": head,
        "tail": tail,
    }


def fold(body: str) -> tuple[str, str]:
    """The text split where it is folded: (all of it, "") when it is short."""
    cut = len(body)
    if len(body) > FOLD_CHARS:
        cut = FOLD_CHARS
    lines = body.split("\n")
    if len(lines) > FOLD_LINES:
        cut = min(cut, len("\n".join(lines[:FOLD_LINES])))
    if cut >= len(body):
        return body, ""
    # At a blank, not in the middle of a word.
    space = max(body.rfind(" ", 0, cut), body.rfind("\n", 0, cut))
    if space > cut // 2:
        cut = space
    return body[:cut].rstrip(), body[cut:].lstrip()


def message_html(message: MessagePayload, *, me: int) -> str:
    """The message's list item for reader ME, for a socket. Its forms' CSRF fields are
    empty: live.js fills in the page's token (a socket has no request to take one from)."""
    return render_to_string(
        "messaging/message.html",
        {
            "message": shown(message, me=me),
            "max_chars": settings.MESSAGE_MAX_CHARS,
        },
    )
