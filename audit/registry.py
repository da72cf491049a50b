"""The audit actions: each app declares the actions it records, once, with a German label
(in its `audit_actions.py`), and record() refuses any name nobody declared. The console's
search, its labels and the Art. 15 report read from here, so a label can never name an
action that is not recorded, nor miss one that is."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.functional import Promise

ACTION = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


@dataclass(frozen=True)
class Declared:
    name: str
    label: Promise
    declared_in: str  # the declaring module, for the test that every one is recorded


_declared: dict[str, Declared] = {}


def declare(name: str, label: Promise, *, module: str) -> str:
    """Declare the action NAME ("noun.past_verb") with its German LABEL; returns NAME, so
    that the declaring module can hold it as a constant."""
    if not ACTION.fullmatch(name) or len(name) > 64:
        raise ValueError(f"an action looks like 'family.viewed', not {name!r}")
    known = _declared.get(name)
    if known is not None and known.declared_in != module:
        raise ValueError(f"{name!r} is declared in {known.declared_in} already")
    _declared[name] = Declared(name=name, label=label, declared_in=module)
    return name


def is_declared(name: str) -> bool:
    return name in _declared


def label(name: str) -> str:
    """The German label of NAME; an action that is no longer declared (an old event) shows
    its name."""
    known = _declared.get(name)
    return name if known is None else str(known.label)


def declared() -> list[Declared]:
    """Every declared action, by name."""
    return [_declared[name] for name in sorted(_declared)]


def nouns() -> list[str]:
    """The first parts of the declared names ("referral", "family", …), for a search of
    every action of one kind."""
    return sorted({name.split(".", 1)[0] for name in _declared})
