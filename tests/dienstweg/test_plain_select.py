"""PlainSelect builds its <select> in Python: the same options, selection and escaping as
Django's own Select, which renders each option through a template."""

from __future__ import annotations

import re

from django import forms

from dienstweg.forms import PlainSelect

CHOICES = [
    ("", "---------"),
    (1, "Ben <Becker>"),
    (2, "Clara & Co"),
    ("Jobcenter", [(3, "Dirk"), (4, 'Dora "D."')]),
]


def options(html: str) -> list[tuple[str, bool, str]]:
    """(value, selected, label) of each <option>, whatever the attribute spelling."""
    found = re.findall(r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', html)
    return [(value, "selected" in attrs, label) for value, attrs, label in found]


class Both(forms.Form):
    plain = forms.ChoiceField(choices=CHOICES, widget=PlainSelect)
    django = forms.ChoiceField(choices=CHOICES)


def test_options_selection_and_escaping_as_django_renders_them():
    form = Both(initial={"plain": 4, "django": 4})
    plain, django = str(form["plain"]), str(form["django"])
    assert options(plain) == options(django)
    assert ("4", True, "Dora &quot;D.&quot;") in options(plain)
    assert "Ben &lt;Becker&gt;" in plain and "<Becker>" not in plain
    assert '<optgroup label="Jobcenter">' in plain
    assert re.search(r'<select name="plain" id="id_plain" required', plain)


def test_a_bound_form_keeps_the_choice():
    form = Both(data={"plain": "2", "django": "2"})
    assert [value for value, selected, _label in options(str(form["plain"])) if selected] == ["2"]
