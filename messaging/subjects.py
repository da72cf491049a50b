"""What a thread can be about beyond referrals, application tags and direct messages: the
apps above messaging register their subjects here in their AppConfig.ready() (messaging
imports none of them, STYLE.md's floors), as a Familienkonferenz's live thread
(conferences/apps.py).

A subject's thread has the subject's kind and its id (Thread.subject_id) and follows the
subject's own access rule: messaging asks the registered functions every time, never
remembers a right."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Q

from dienstweg.models import User


@dataclass(frozen=True)
class Subject:
    """KIND: the thread kind (messaging.models.Thread.Kind). MAY_USE(user, subject id):
    whether she may read and write in its thread now. READERS(subject id): the user ids
    who may, the recipients of its events. URL(subject id): the subject's page. LISTED(user
    id, agency ids): a condition over Participant rows ("thread__subject_id" is the
    subject's id) that holds where the user may see the thread in her overview; its
    arguments may be a compiled query's placeholders (dienstweg/compiled.py)."""

    kind: str
    may_use: Callable[[User, UUID], bool]
    readers: Callable[[UUID], list[int]]
    url: Callable[[UUID], str]
    listed: Callable[[Any, Any], Q]


_subjects: dict[str, Subject] = {}


def register(subject: Subject) -> None:
    _subjects[subject.kind] = subject  # ready() may run more than once in tests


def subject_of(kind: str) -> Subject | None:
    return _subjects.get(kind)


def registered() -> list[Subject]:
    return [_subjects[kind] for kind in sorted(_subjects)]
