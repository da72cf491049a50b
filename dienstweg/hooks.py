"""Where the apps above the core plug into it. Each app registers in its
`AppConfig.ready()`; the core calls the hooks and never imports the apps (STYLE.md, floors).
config/navigation.py wires the main menu; everything else an app adds to the core is here.

- `colleague_actions`: what a user can do with a colleague listed in the directory.
- `family_sections`: sections of the family page below the record (referrals sent,
  applications tagged), each read through its app's own access rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

from dienstweg.models import Family, User


@dataclass(frozen=True)
class ColleagueAction:
    """A button beside a colleague in the directory: POSTs to `url_name` with her user id."""

    label: Promise
    url_name: str


colleague_actions: list[ColleagueAction] = []


def add_colleague_action(action: ColleagueAction) -> None:
    if action not in colleague_actions:  # ready() may run more than once in tests
        colleague_actions.append(action)


@dataclass(frozen=True)
class FamilySection:
    """A section of the family page: the template and the function that gives its context
    for this family as this user may see it."""

    template: str
    context: Callable[[Family, User], dict[str, Any]]


family_sections: list[FamilySection] = []


def add_family_section(section: FamilySection) -> None:
    if section not in family_sections:
        family_sections.append(section)
