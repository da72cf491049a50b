"""The Strukturkonferenz report's disclosure control (conferences/disclosure.py), checked
by properties over random tables: no shown entry counts 1 to 4 families, and no hidden
entry can be worked out from the shown ones, by any combination of the rows' and columns'
sums. The second is checked by linear algebra over the rationals, independently of the
graph argument the module uses."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from conferences.disclosure import MINIMUM, protect, with_totals

# Many small counts, some zeros, some large: the tables a town's report holds.
COUNT = st.one_of(st.integers(0, 6), st.integers(0, 60))
TABLES = st.integers(1, 5).flatmap(
    lambda columns: st.lists(
        st.lists(COUNT, min_size=columns, max_size=columns), min_size=1, max_size=5
    )
)


def determined(values: list[list[int]], hidden: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The hidden entries whose value the shown entries fix through the lines' sums: x is
    fixed exactly when its unit vector lies in the row space of the system's matrix over
    the hidden unknowns (Gaussian elimination with fractions)."""
    height, width = len(values), len(values[0])
    unknowns = sorted(hidden)
    index = {entry: i for i, entry in enumerate(unknowns)}
    lines: list[list[tuple[int, int]]] = []
    for r in range(height):  # each row: its cells add up to its total (column width - 1)
        lines.append([(r, c) for c in range(width)])
    for c in range(width):  # each column: its cells add up to the totals row's entry
        lines.append([(r, c) for r in range(height)])
    matrix = []
    for line in lines:
        # The last entry of a line is its total: cells count +1, the total -1.
        vector = [Fraction(0)] * len(unknowns)
        for position, entry in enumerate(line):
            if entry in index:
                vector[index[entry]] += -1 if position == len(line) - 1 else 1
        if any(vector):
            matrix.append(vector)
    basis = _row_echelon(matrix)
    fixed = set()
    for entry, i in index.items():
        unit = [Fraction(int(j == i)) for j in range(len(unknowns))]
        if len(_row_echelon([*basis, unit])) == len(basis):
            fixed.add(entry)
    return fixed


def _row_echelon(rows: list[list[Fraction]]) -> list[list[Fraction]]:
    rows = [row[:] for row in rows]
    result = []
    columns = len(rows[0]) if rows else 0
    for column in range(columns):
        pivot = next((row for row in rows if row[column] != 0), None)
        if pivot is None:
            continue
        rows.remove(pivot)
        pivot = [value / pivot[column] for value in pivot]
        rows = [
            [value - row[column] * p for value, p in zip(row, pivot, strict=True)] for row in rows
        ]
        result.append(pivot)
    return result


@settings(max_examples=300, deadline=None)
@given(TABLES)
def test_no_shown_entry_counts_fewer_than_five_families(cells: list[list[int]]) -> None:
    table = protect(cells, columns=len(cells[0]))
    for r, line in enumerate(table.values):
        for c, _value in enumerate(line):
            shown = table.shown(r, c)
            assert shown is None or shown == 0 or shown >= MINIMUM


@settings(max_examples=300, deadline=None)
@given(TABLES)
def test_no_hidden_entry_follows_from_the_shown_ones(cells: list[list[int]]) -> None:
    table = protect(cells, columns=len(cells[0]))
    assert determined([list(line) for line in table.values], set(table.hidden)) == set()


@given(TABLES)
def test_totals_add_up_and_nothing_is_hidden_without_need(cells: list[list[int]]) -> None:
    table = protect(cells, columns=len(cells[0]))
    assert [list(line) for line in table.values] == with_totals(cells)
    if all(value == 0 or value >= MINIMUM for line in table.values for value in line):
        assert table.hidden == frozenset()


def test_a_single_small_cell_takes_others_with_it() -> None:
    table = protect([[12, 3], [20, 9]])
    # 3 is hidden; so are enough others that neither the row nor the column gives it away.
    assert (0, 1) in table.hidden
    assert len({e for e in table.hidden if e[0] == 0}) >= 2
    assert len({e for e in table.hidden if e[1] == 1}) >= 2
    assert determined([list(line) for line in table.values], set(table.hidden)) == set()


def test_the_checker_finds_a_cell_given_away_by_its_row() -> None:
    # Only the 3 hidden: its row's total and the 12 give it away (the check must see that).
    values = with_totals([[12, 3], [20, 9]])
    assert determined(values, {(0, 1)}) == {(0, 1)}
    # A bridge between two hidden cycles is found too (sums of several lines).
    assert determined(with_totals([[5, 5], [5, 5]]), {(0, 0), (0, 1)}) == {(0, 0), (0, 1)}
