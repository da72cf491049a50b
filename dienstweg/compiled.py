"""A query built by the ORM once and run many times: for the access rules a socket asks on
every frame and delivery (bench/step4.py), and for the start page's sections (their rows
and capped count, bench/work_queue.py). Building and compiling the rule's nested
subqueries cost Django several milliseconds of CPU each time, far more than PostgreSQL
takes to answer them.

The queryset is built with sentinel values in place of what changes from call to call (a
user's id, a thread's id, a moment, a list of agency ids); its SQL is kept, and each call
puts its values where the sentinels stood. What else the rule reads when it is built
(today's date, for a consent's end) goes into the key: a new key builds it again. A list
is compiled once per length. Nothing is written here; the rule stays the one queryset its
module defines."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]
from django.db.models import QuerySet

Form = Callable[[Any], Any]

# Values no real row has: a negative id, a UUID of the reserved NCS variant, a moment
# before any record, a number no thread reaches. IDS marks a list of ids: it is compiled
# with as many sentinel ids as the list has values (each list its own series of them).
SENTINEL_ID = -7_310_000_000_001
SENTINEL_UUID = uuid.UUID("00000000-7310-4000-0000-000000000001")
SENTINEL_TIME = datetime(1901, 7, 3, 1, 0, 0, 731001, tzinfo=UTC)
# A count no row reaches (a message's number), within a positive 4-byte column's range:
# Django drops the lookup of a value beyond its column's range from the SQL.
SENTINEL_NUMBER = 2_147_073_101
IDS = object()


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _form(param: Any, sentinel: Any, alias: str) -> Form | None:
    """How a value is passed in the place of PARAM, if PARAM is SENTINEL as compiled."""
    if isinstance(sentinel, uuid.UUID):
        if isinstance(param, uuid.UUID) and param == sentinel:
            return _as_uuid
        if isinstance(param, str) and param == sentinel.hex:  # SQLite stores UUIDs as hex
            return lambda value: _as_uuid(value).hex
        return None
    if isinstance(sentinel, datetime):
        # As the backend passes a moment: PostgreSQL takes it as it is, SQLite as text.
        adapt = connections[alias].ops.adapt_datetimefield_value
        if param == adapt(sentinel):
            return lambda value: connections[alias].ops.adapt_datetimefield_value(value)
        return None
    if type(param) is type(sentinel) and param == sentinel:
        return lambda value: value
    if isinstance(sentinel, int) and isinstance(param, int) and param == sentinel:
        # A 4-byte column's value, which Django passes to PostgreSQL typed (psycopg's Int4).
        kind = type(param)
        return lambda value: kind(value)
    return None


class _PlanningCursor(ServerBindingCursor):
    """Binds on the server, so psycopg prepares what it runs; not statements without values
    (a savepoint's name is new each time: kept, they would crowd the connection's cache)."""

    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        if not params:
            options["prepare"] = False
        return super().execute(query, params, **options)


@contextmanager
def planned_once(using: str = "default") -> Iterator[None]:
    """The ORM's queries inside run as prepared statements of the connection (PostgreSQL;
    elsewhere nothing changes): each is planned at its first runs, and PostgreSQL keeps a
    generic plan once it costs no more than the custom ones. For pages that read a few
    rows by their ids through long joins and rules, where planning took PostgreSQL longer
    than running the query (the conference page: 1.9 ms to plan its rule, 0.2 ms to run it;
    bench/step11.py). Not for lists whose best plan depends on the values (see
    CompiledQuery). Django's own cursors bind on the client and never prepare; inside, the
    connection hands out the cursor Django uses for its server_side_binding option."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    # Read by Django's query log (the tests count queries): the statement is composed from
    # its values, as with the option, since a prepared run leaves none on the cursor.
    features: Any = connection.features
    cursor_before, binding_before = raw.cursor_factory, features.uses_server_side_binding
    raw.cursor_factory, features.uses_server_side_binding = _PlanningCursor, True
    try:
        yield
    finally:
        raw.cursor_factory, features.uses_server_side_binding = cursor_before, binding_before


class _Compiled:
    def __init__(self, alias: str, sql: str | None, params: Sequence[Any]) -> None:
        self.alias = alias
        self.sql = sql  # None: the query can find nothing in this shape (an empty IN list)
        self.params = list(params)
        self.slots: list[tuple[int, str, int | None, Form]] = []
        # Django's converters of the selected columns: the ORM's values, not the driver's
        # (SQLite gives dates, times and UUIDs as text).
        self.converters: list[tuple[int, list[Any], Any]] = []


class CompiledQuery:
    """BUILD(**sentinels) returns the queryset; rows(key, **values) runs its SQL with the
    values in the sentinels' places (ValueError for a value that is not a UUID where one is
    expected) and returns its rows as the ORM would (values_list). KEY names what else the
    build read (today's date).

    PREPARED: on PostgreSQL, run as a prepared statement of the connection (planned_once),
    so that after five runs it keeps one generic plan instead of planning every call (for
    the rules a socket asks of one row by its id on every frame and delivery: planning took
    PostgreSQL most of their time, bench/step4.py). Not for lists whose best plan depends on
    the ids (a busy agency's start page ran 2.5-3.6 x slower on a generic plan)."""

    def __init__(
        self, build: Callable[..., QuerySet[Any]], *, prepared: bool = False, **sentinels: Any
    ) -> None:
        self._build = build
        self._prepared = prepared
        self._sentinels = sentinels
        self._lists = [name for name, sentinel in sentinels.items() if sentinel is IDS]
        self._compiled: dict[Hashable, _Compiled] = {}
        self._lock = threading.Lock()

    def rows(self, key: Hashable = None, **values: Any) -> list[tuple[Any, ...]]:
        shape = tuple(len(values[name]) for name in self._lists)
        compiled = self._compiled.get((key, shape))
        if compiled is None:
            compiled = self._compile(key, shape)
        if compiled.sql is None:
            return []
        params = list(compiled.params)
        for index, name, position, form in compiled.slots:
            value = values[name] if position is None else values[name][position]
            params[index] = form(value)
        connection = connections[compiled.alias]
        prepared = planned_once(compiled.alias) if self._prepared else nullcontext()
        with prepared, connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not compiled.converters:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for position, converters, expression in compiled.converters:
                for convert in converters:
                    row[position] = convert(row[position], expression, connection)
            converted.append(tuple(row))
        return converted

    def _sentinel_values(self, shape: tuple[int, ...]) -> dict[str, Any]:
        sentinels = dict(self._sentinels)
        for series, (name, length) in enumerate(zip(self._lists, shape, strict=True)):
            sentinels[name] = [SENTINEL_ID - 1 - 1000 * series - i for i in range(length)]
        return sentinels

    def _compile(self, key: Hashable, shape: tuple[int, ...]) -> _Compiled:
        sentinels = self._sentinel_values(shape)
        queryset = self._build(**sentinels)
        compiler = queryset.query.get_compiler(using=queryset.db)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            compiled = _Compiled(queryset.db, None, [])
        else:
            compiled = _Compiled(queryset.db, sql, params)
            found = set()
            for index, param in enumerate(params):
                for name, sentinel in sentinels.items():
                    places = (
                        enumerate(sentinel) if isinstance(sentinel, list) else [(None, sentinel)]
                    )
                    for position, one in places:
                        form = _form(param, one, queryset.db)
                        if form is not None:
                            compiled.slots.append((index, name, position, form))
                            found.add((name, position))
            wanted = {
                (name, position)
                for name, sentinel in sentinels.items()
                for position in (range(len(sentinel)) if isinstance(sentinel, list) else [None])
            }
            if wanted - found:  # the rule does not read it, or reads it in a form not known here
                missing = sorted({name for name, _position in wanted - found})
                raise ValueError(f"sentinels not found in the compiled query: {missing}")
            selected = [column for column, _sql, _alias in compiler.select[: compiler.col_count]]
            compiled.converters = [
                (position, converters, expression)
                for position, (converters, expression) in compiler.get_converters(selected).items()
            ]
        with self._lock:
            if len(self._compiled) > 32:  # keys of past days, lists of other lengths
                self._compiled.clear()
            self._compiled[(key, shape)] = compiled
        return compiled
