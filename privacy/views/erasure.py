"""Erasure of a family (GDPR Art. 17): the confirmation page with the plan, and the
erasure once the DPO has typed the family's reference, given the reason and confirmed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from dienstweg.actions import ActionError
from dienstweg.models import Family
from privacy import erasure
from privacy.access import console_dpo, console_scope, record_dpo
from privacy.audit_actions import CONSOLE_ERASURE_PREPARED, CONSOLE_FAMILY_NOT_FOUND
from privacy.views.subjects import UnknownFamily, family_by_reference


class ErasureForm(forms.Form):
    reference = forms.CharField(
        label=gettext_lazy("Kennung der Familie zur Bestätigung"),
        max_length=40,
        error_messages={"required": gettext_lazy("Bitte tippen Sie die Kennung der Familie ein.")},
    )
    reason = forms.CharField(
        label=gettext_lazy("Grund der Löschung"),
        max_length=erasure.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Steht im Protokoll. Keine Namen und keine Inhalte, zum Beispiel: "
            "„Antrag auf Löschung nach Art. 17 DSGVO vom 02.03.2026“."
        ),
        error_messages={"required": gettext_lazy("Bitte geben Sie den Grund der Löschung an.")},
    )
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "Ich habe geprüft, was gelöscht und was aufbewahrt wird. Die Löschung kann nicht "
            "rückgängig gemacht werden."
        ),
        error_messages={
            "required": gettext_lazy("Bitte bestätigen Sie, dass die Daten gelöscht werden.")
        },
    )

    def __init__(self, *args: Any, family: Family, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.family = family

    def clean_reference(self) -> str:
        typed = self.cleaned_data["reference"].strip()
        if typed.upper() != self.family.reference.upper():
            raise forms.ValidationError(
                _("Die Kennung stimmt nicht mit %(ref)s überein.") % {"ref": self.family.reference}
            )
        return typed

    def clean_reason(self) -> str:
        try:
            return erasure.check_reason(self.cleaned_data["reason"])
        except ActionError as error:
            raise forms.ValidationError(str(error)) from None


@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest, reference: str) -> HttpResponse:
    dpo = console_dpo(request)
    try:
        family = family_by_reference(request, reference)
    except UnknownFamily as unknown:
        if not unknown.refused:
            record_dpo(request, CONSOLE_FAMILY_NOT_FOUND, details={"page": "erase"})
        return render(request, "console/erase.html", {"unknown": reference}, status=404)
    if family.is_erased:
        record_dpo(request, CONSOLE_ERASURE_PREPARED, target=family, family=family)
        status = 409 if request.method == "POST" else 200
        return render(request, "console/erase.html", {"family": family}, status=status)
    form = ErasureForm(request.POST if request.method == "POST" else None, family=family)
    if form.is_valid():
        try:
            result = erasure.erase_family(
                family,
                by=dpo,
                reason=form.cleaned_data["reason"],
                agency_id=console_scope(request).acting_agency_for(family),
            )
        except ActionError as error:  # erased meanwhile, in another tab
            form.add_error(None, str(error))
        else:
            return render(request, "console/erased.html", {"result": result})
    record_dpo(request, CONSOLE_ERASURE_PREPARED, target=family, family=family)
    return render(
        request,
        "console/erase.html",
        {"family": family, "plan": erasure.plan(family), "form": form},
        status=400 if form.is_bound else 200,
    )
