"""A query built by the ORM once and run many times: for the access rules a socket asks on
every frame and delivery (bench/step4.py). Building and compiling the rule's nested
subqueries cost Django several milliseconds of CPU each time, far more than PostgreSQL
takes to answer them.

The queryset is built with sentinel values in place of what changes from call to call (a
user's id, a thread's id); its SQL is kept, and each call puts its values where the
sentinels stood. What else the rule reads when it is built (today's date, for a consent's
end) goes into the key: a new key builds it again. Nothing is written here; the rule stays
the one queryset its module defines."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

Form = Callable[[Any], Any]

# Values no real row has: a negative id, a UUID of the reserved NCS variant.
SENTINEL_ID = -7_310_000_000_001
SENTINEL_UUID = uuid.UUID("00000000-7310-4000-0000-000000000001")


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _form(param: Any, sentinel: Any) -> Form | None:
    """How a value is passed in the place of PARAM, if PARAM is SENTINEL as compiled."""
    if isinstance(sentinel, uuid.UUID):
        if isinstance(param, uuid.UUID) and param == sentinel:
            return _as_uuid
        if isinstance(param, str) and param == sentinel.hex:  # SQLite stores UUIDs as hex
            return lambda value: _as_uuid(value).hex
        return None
    if type(param) is type(sentinel) and param == sentinel:
        return lambda value: value
    return None


class CompiledQuery:
    """BUILD(**sentinels) returns the queryset; rows(key, **values) runs its SQL with the
    values in the sentinels' places (ValueError for a value that is not a UUID where one is
    expected). KEY names what else the build read (today's date)."""

    def __init__(self, build: Callable[..., QuerySet[Any]], **sentinels: Any) -> None:
        self._build = build
        self._sentinels = sentinels
        self._compiled: dict[Hashable, tuple[str, str, list[Any], list[tuple[int, str, Form]]]] = {}
        self._lock = threading.Lock()

    def rows(self, key: Hashable = None, **values: Any) -> list[tuple[Any, ...]]:
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(key)
        alias, sql, params, slots = compiled
        params = list(params)
        for index, name, form in slots:
            params[index] = form(values[name])
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _compile(self, key: Hashable) -> tuple[str, str, list[Any], list[tuple[int, str, Form]]]:
        queryset = self._build(**self._sentinels)
        sql, params = queryset.query.sql_with_params()
        slots = []
        for index, param in enumerate(params):
            for name, sentinel in self._sentinels.items():
                form = _form(param, sentinel)
                if form is not None:
                    slots.append((index, name, form))
        missing = set(self._sentinels) - {name for _index, name, _form in slots}
        if missing:  # the rule does not read it, or reads it in a form not known here
            raise ValueError(f"sentinels not found in the compiled query: {sorted(missing)}")
        compiled = (queryset.db, sql, list(params), slots)
        with self._lock:
            if len(self._compiled) > 8:  # keys of past days
                self._compiled.clear()
            self._compiled[key] = compiled
        return compiled
