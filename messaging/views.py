"""Pages of messaging: the overview of one's threads, a thread (live through /ws/, and
working without JavaScript through plain forms), direct threads, attachments."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from applications.access import TagLookupThrottled, TagRefused, access_tag_by_code
from dienstweg.access import reach_of, staff
from dienstweg.actions import ActionError
from dienstweg.compiled import planned_once
from dienstweg.models import User
from dienstweg.paging import numbered_page
from dienstweg.uploads import accepts_uploads, attachment_response
from messaging import actions
from messaging.access import (
    access_message_by_id,
    access_thread_by_id,
    recent_threads_of,
    referral_thread_of,
    tag_thread_of,
    threads_of,
)
from messaging.forms import MessageForm
from messaging.models import MessageAttachment, Participant, Thread
from messaging.people import direct_partners, label, with_partners
from messaging.rendering import shown as shown_message
from messaging.subjects import subject_of
from referrals.access import access_referral_by_id

SHOWN = 50  # messages on a page; older ones on pages of their own (`?vor=`)


@require_GET
def thread_list(request: HttpRequest) -> HttpResponse:
    """The user's threads, newest first, with their unread counts."""
    user = staff(request)
    page = numbered_page(with_partners(threads_of(user)), request, settings.REFERRAL_PAGE_SIZE)
    page.object_list = titled(page.object_list)
    return render(request, "messaging/thread_list.html", {"page": page})


def titled(participants: Iterable[Participant]) -> list[Participant]:
    """The rows of an overview (annotated by with_partners), each direct thread named by
    the other person and her agency."""
    rows = list(participants)
    for row in rows:
        row.partner_label = label(row.partner_name, row.partner_agency)  # type: ignore[attr-defined]
    return rows


@require_GET
@planned_once()
def thread_detail(request: HttpRequest, thread_id: str) -> HttpResponse:
    user = staff(request)
    thread = access_thread_by_id(user, thread_id)
    # "Antworten" without JavaScript: the link names the message to quote.
    form = MessageForm(initial={"client_id": uuid.uuid4()})
    return _thread_page(
        request,
        thread,
        form,
        answering=request.GET.get("antwort", ""),
        before=_before(request.GET.get("vor", "")),
    )


def _before(value: str) -> int | None:
    """The `?vor=N` of a page of older messages (those before number N); anything else
    shows the newest, as a wrong `?page=` shows the first page of a list."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    number = int(value)
    return number if number > 1 else None


def _thread_page(
    request: HttpRequest,
    thread: Thread,
    form: MessageForm,
    *,
    editing: dict[str, str] | None = None,
    answering: str = "",
    before: int | None = None,
) -> HttpResponse:
    """The thread with FORM in its composer: a fresh one, or one refused with everything
    that was typed in it (files chosen cannot be refilled: form_field.html says so);
    EDITING: the id, text and refusal of a change to one of the user's messages;
    ANSWERING: the id of the message to quote (a refused form names its own); BEFORE: a
    page of the SHOWN messages before that number instead of the newest (read only: no
    composer, not live)."""
    user = staff(request)
    if before is not None and before <= thread.last_seq:
        read = actions.messages_before(thread, before=before, count=SHOWN, by=user)
    else:
        before = None
        read = actions.messages_after(
            thread, after=max(0, thread.last_seq - SHOWN), by=user, mark=True
        )
    shown = [shown_message(m, me=user.pk) for m in read]
    for message in shown:
        # The change that was refused, shown again in its message's form.
        if editing and message["id"] == editing.get("id"):
            message["editing"] = editing
    # The message being answered, if it is on the page (an older one is not offered).
    if form.is_bound:
        answering = str(form.data.get("reply_to") or "")
    replying = next((m for m in shown if m["id"] == answering and not m["deleted"]), None)
    if not form.is_bound:
        form.initial["reply_to"] = replying["id"] if replying else ""
    beside = titled(recent_threads_of(user, reach_of(user)))
    partner = direct_partners([thread.pk], of=user).get(thread.pk, "") if _direct(thread) else ""
    people = actions.thread_people(thread, by=user)
    return render(
        request,
        "messaging/thread_detail.html",
        {
            "thread": thread,
            "partner": partner,
            "shown": shown,
            "replying": replying,
            "beside": beside,
            "last_seq": shown[-1]["seq"] if shown else thread.last_seq,
            "markers": {str(u): seq for u, seq in people.markers.items()},
            "reader_labels": {str(u): name for u, name in people.labels.items()},
            "mentionable": people.mentionable,
            "form": form,
            "subject_url": _subject_url(thread),
            "max_chars": settings.MESSAGE_MAX_CHARS,
            "older": before is not None,
            # Messages are numbered from 1 (a deleted one keeps its place).
            "earlier": shown[0]["seq"] if shown and shown[0]["seq"] > 1 else None,
        },
    )


def _direct(thread: Thread) -> bool:
    return thread.kind == Thread.Kind.DIRECT


def _subject_url(thread: Thread) -> str:
    if thread.referral_id:
        return reverse("referral_detail", args=[thread.referral_id])
    if thread.application_tag is not None:
        return reverse("tag_detail", args=[thread.application_tag.code])
    subject = subject_of(thread.kind) if thread.subject_id is not None else None
    if subject is not None:
        return subject.url(thread.subject_id)  # type: ignore[arg-type]
    return ""


@accepts_uploads
@require_POST
def thread_post(request: HttpRequest, thread_id: str) -> HttpResponse:
    """Send a message with the form (without JavaScript, or with attachments). Refused,
    the page comes back with the text as typed and the reason beside it."""
    user = staff(request)
    thread = access_thread_by_id(user, thread_id)
    form = MessageForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            actions.post_message(
                thread,
                body=form.cleaned_data["body"],
                client_id=form.cleaned_data["client_id"],
                attachments=form.cleaned_data["attachments"],
                reply_to=form.cleaned_data["reply_to"],
                by=user,
            )
        except ActionError as error:
            form.add_error(None, str(error))
        else:
            return redirect(reverse("thread_detail", args=[thread.pk]))
    return _thread_page(request, thread, form)


@require_POST
def message_delete(request: HttpRequest, message_id: str) -> HttpResponse:
    message = access_message_by_id(staff(request), message_id)
    try:
        actions.delete_message(message, by=staff(request))
    except ActionError as error:
        messages.error(request, str(error))
    return redirect(reverse("thread_detail", args=[message.thread_id]))


@require_POST
def message_edit(request: HttpRequest, message_id: str) -> HttpResponse:
    """Change one's message; refused, the page comes back with the new text in its box."""
    message = access_message_by_id(staff(request), message_id)
    body = request.POST.get("body", "")
    try:
        actions.edit_message(message, body=body, by=staff(request))
    except ActionError as error:
        editing = {"id": str(message.pk), "body": body, "error": str(error)}
        return _thread_page(
            request,
            message.thread,
            MessageForm(initial={"client_id": uuid.uuid4()}),
            editing=editing,
        )
    return redirect(reverse("thread_detail", args=[message.thread_id]))


@require_GET
def message_attachment(request: HttpRequest, attachment_id: str) -> HttpResponse:
    user = staff(request)
    try:
        file = MessageAttachment.objects.get(pk=attachment_id)
    except (MessageAttachment.DoesNotExist, ValidationError):
        raise Http404 from None
    file.message = access_message_by_id(user, file.message_id)
    thread = file.message.thread
    content = file.decrypt_field_bytes("content")
    actions.record_attachment_download(file, by=user)
    stem = f"nachricht-{thread.family.reference}" if thread.family is not None else "nachricht"
    return attachment_response(content, file.content_type, stem)


@require_http_methods(["GET", "POST"])
def referral_thread(request: HttpRequest, referral_id: str) -> HttpResponse:
    """The referral's thread: a GET goes to it if it exists and otherwise offers to open it;
    only a POST creates it (recorded)."""
    user = staff(request)
    referral = access_referral_by_id(user, referral_id)
    if request.method == "POST":
        try:
            thread: Thread | None = actions.open_referral_thread(referral, by=user)
        except ActionError as error:
            messages.error(request, str(error))
            return redirect(reverse("referral_detail", args=[referral.pk]))
    else:
        thread = referral_thread_of(referral.pk)
    if thread is None:
        return render(request, "messaging/thread_open.html", {"referral": referral})
    return redirect(reverse("thread_detail", args=[thread.pk]))


@require_http_methods(["GET", "POST"])
def tag_thread(request: HttpRequest, code: str) -> HttpResponse:
    """The application tag's thread: a GET goes to it if it exists and otherwise offers to
    open it; only a POST creates it (recorded)."""
    user = staff(request)
    try:
        tag, _side = access_tag_by_code(user, code, action=None)
    except (TagLookupThrottled, TagRefused):  # the tag's own page says why
        return redirect(reverse("tag_detail", args=[code]))
    if request.method == "POST":
        try:
            thread: Thread | None = actions.open_tag_thread(tag, by=user)
        except ActionError as error:
            messages.error(request, str(error))
            return redirect(reverse("tag_detail", args=[tag.code]))
    else:
        thread = tag_thread_of(tag.pk)
    if thread is None:
        return render(request, "messaging/thread_open.html", {"tag": tag})
    return redirect(reverse("thread_detail", args=[thread.pk]))


@require_POST
def direct_thread(request: HttpRequest, user_id: int) -> HttpResponse:
    """Open (or find) the direct thread with a colleague from the directory."""
    colleague = User.objects.filter(pk=user_id).first()
    try:
        if colleague is None:
            raise ActionError(_("Mit dieser Person ist keine Direktnachricht möglich."))
        thread = actions.open_direct_thread(colleague, by=staff(request))
    except ActionError as error:
        messages.error(request, str(error))
        return redirect(reverse("directory"))
    return redirect(reverse("thread_detail", args=[thread.pk]))
