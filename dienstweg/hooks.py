"""Where the apps above the core plug into it. Each app registers in its
`AppConfig.ready()`; the core calls the hooks and never imports the apps (STYLE.md, floors).
config/navigation.py wires the main menu; everything else an app adds to the core is here.

- `colleague_actions`: what a user can do with a colleague listed in the directory.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise


@dataclass(frozen=True)
class ColleagueAction:
    """A button beside a colleague in the directory: POSTs to `url_name` with her user id."""

    label: Promise
    url_name: str


colleague_actions: list[ColleagueAction] = []


def add_colleague_action(action: ColleagueAction) -> None:
    if action not in colleague_actions:  # ready() may run more than once in tests
        colleague_actions.append(action)
