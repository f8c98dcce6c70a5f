"""Typing every sampled column at once: Arrow's own inference first, lossless checks only where needed.

A sampled piece is read twice by Arrow's CSV reader, in C++ and linear in the column count: once as
bytes (the source text) and once with Arrow's type inference (only `true`/`false` count as
booleans). Arrow's guess decides which columns need a closer look, so the costly per-value checks
run only on the few columns that could lose a value:

- null, boolean, text and invalid UTF-8 (binary) guesses are taken as they are (a text column whose
  first value looks like an ISO date is looked at closely, in case a timestamp type holds it);
- integer guesses must survive the round trip text -> int64 -> text unchanged (`08123`, `+5` fail);
- float guesses must look like plain decimals (no `inf`, no leading zero) of at most 15 characters
  (hence at most 15 significant digits, which float64 holds exactly);
- columns that fail, and every other guess (timestamps, dates, times), are typed value by value by
  `labship.compress.types.infer`.

The vectorised checks lay the candidate columns end to end in one array and fold them per column
with one `group_by`, so a 10,000-column file costs a handful of Arrow calls, not 10,000 of them.
Measured on 2.2 MB of flight records (19 columns): 0.35 s with regex checks over every value, ~0.05 s
this way (two reads of ~0.02 s each and the checks of the 14 integer columns).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from labship.compress import types as lossless

DICTIONARY_MAX_DISTINCT = 1000
EXAMPLES = 1000
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SHORT_DECIMAL = lossless.FLOAT64_EXACT_DIGITS  # characters: a text this short has <= 15 digits


@dataclass
class ColumnFacts:
    """What one sampled piece showed about one column."""

    data_type: pa.DataType
    values: int = 0
    minimum: int | None = None
    maximum: int | None = None
    distinct: set[str] | None = None  # None: more than DICTIONARY_MAX_DISTINCT (or not text)
    examples: list[str] = field(default_factory=list)


def _array(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _stack(columns: list[pa.ChunkedArray], data_type: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """The columns end to end as one array, and the position of each value's column in the list."""
    arrays = [_array(column) for column in columns]
    lengths = [len(array) for array in arrays]
    try:
        import numpy as np

        ids = pa.array(np.repeat(np.arange(len(arrays), dtype=np.int32), lengths))
    except ImportError:  # pragma: no cover - numpy comes with pyarrow's pandas support almost always
        ids = pa.array([index for index, length in enumerate(lengths) for _ in range(length)], pa.int32())
    return pa.concat_arrays(arrays).cast(data_type), ids


def _fold(ids: pa.Array, checks: dict[str, pa.Array], kind: str) -> dict[int, dict[str, object]]:
    """Per column position: the `kind` aggregate ("all", "min", ...) of each check."""
    grouped = (
        pa.table({"column": ids, **checks})
        .group_by("column", use_threads=False)
        .aggregate([(name, kind) for name in checks])
    )
    return {row.pop("column"): row for row in grouped.to_pylist()}


def _integers_hold(raw: list[pa.ChunkedArray], typed: list[pa.ChunkedArray]) -> list[bool]:
    """Whether each integer guess gives back its text unchanged."""
    text, ids = _stack(raw, pa.string())
    numbers, _ = _stack(typed, pa.int64())
    same = pc.equal(text, numbers.cast(pa.string()))
    folded = _fold(ids, {"same": same}, "all")
    return [folded.get(index, {}).get("same_all") is not False for index in range(len(raw))]


def _floats_hold(raw: list[pa.ChunkedArray]) -> list[bool]:
    """Whether each float guess is plain decimals short enough for float64 to keep every digit."""
    text, ids = _stack(raw, pa.string())
    checks = {
        "plain": pc.match_substring_regex(text, lossless.DECIMAL),
        "no_leading_zero": pc.invert(pc.match_substring_regex(text, lossless.LEADING_ZERO)),
        "short": pc.less_equal(pc.utf8_length(text), SHORT_DECIMAL),
    }
    folded = _fold(ids, checks, "all")
    return [all(value is not False for value in folded.get(index, {}).values()) for index in range(len(raw))]


def _integer_ranges(typed: list[pa.ChunkedArray]) -> list[tuple[int | None, int | None]]:
    numbers, ids = _stack(typed, pa.int64())
    grouped = pa.table({"column": ids, "value": numbers}).group_by("column", use_threads=False)
    bounds = {
        row["column"]: row for row in grouped.aggregate([("value", "min"), ("value", "max")]).to_pylist()
    }
    return [
        (bounds[index]["value_min"], bounds[index]["value_max"]) if index in bounds else (None, None)
        for index in range(len(typed))
    ]


def _distinct(texts: list[pa.ChunkedArray]) -> list[set[str] | None]:
    """Distinct strings of each column, or None when it has more than DICTIONARY_MAX_DISTINCT."""
    values, ids = _stack(texts, pa.string())
    pairs = (
        pa.table({"column": ids, "value": values})
        .group_by(["column", "value"], use_threads=False)
        .aggregate([])
    )
    counts = pairs.group_by("column", use_threads=False).aggregate(
        [("value", "count", pc.CountOptions(mode="all"))]
    )
    few = [row["column"] for row in counts.to_pylist() if row["value_count"] <= DICTIONARY_MAX_DISTINCT]
    chosen = pairs.filter(pc.is_in(pairs.column("column"), value_set=pa.array(few, pa.int32())))
    found: list[set[str] | None] = [None] * len(texts)
    for index in few:
        found[index] = set()
    for column, value in zip(
        chosen.column("column").to_pylist(), chosen.column("value").to_pylist(), strict=True
    ):
        found[column].add(value)  # type: ignore[union-attr]
    return found


def _looks_like_date(column: pa.ChunkedArray) -> bool:
    values = column.drop_null()
    return len(values) > 0 and ISO_DATE.match(values[0].as_py()) is not None


def _taken_as_guessed(data_type: pa.DataType, column: pa.ChunkedArray) -> bool:
    if pa.types.is_string(data_type):
        return not _looks_like_date(column)
    return pa.types.is_null(data_type) or pa.types.is_boolean(data_type) or pa.types.is_binary(data_type)


def _guess(raw: pa.Table, typed: pa.Table) -> tuple[list[pa.DataType | None], list[int], list[int]]:
    """Types taken from Arrow's guess (None: look closer), and the integer and float candidates."""
    guesses: list[pa.DataType | None] = []
    integers, floats = [], []
    for index, column in enumerate(typed.columns):
        data_type = column.type
        if pa.types.is_integer(data_type):
            integers.append(index)
            guesses.append(pa.int64())
        elif pa.types.is_floating(data_type):
            floats.append(index)
            guesses.append(pa.float64())
        else:
            guesses.append(data_type if _taken_as_guessed(data_type, column) else None)
    return guesses, integers, floats


def _check_numbers(
    raw: pa.Table, typed: pa.Table, guesses: list[pa.DataType | None], integers: list[int], floats: list[int]
) -> None:
    """Clear the guesses of integer and float columns whose text would change (see the docstring)."""
    if integers:
        held = _integers_hold([raw.column(i) for i in integers], [typed.column(i) for i in integers])
        for index, ok in zip(integers, held, strict=True):
            guesses[index] = guesses[index] if ok else None
    if floats:
        for index, ok in zip(floats, _floats_hold([raw.column(i) for i in floats]), strict=True):
            guesses[index] = guesses[index] if ok else None


def _text_guesses(raw: pa.Table) -> list[pa.DataType]:
    """Types from the text alone, for pieces too wide for Arrow's inference: every check runs over
    all values laid end to end, folded per column with one `group_by`."""
    columns = list(raw.columns)
    invalid, (text, ids) = _stack_utf8(columns)
    plain = pc.match_substring_regex(text, lossless.DECIMAL)
    checks = {
        "boolean": pc.is_in(pc.utf8_lower(text), value_set=pa.array(["true", "false"])),
        "integer": pc.match_substring_regex(text, lossless.INTEGER),
        "plain": plain,
        "no_leading_zero": pc.invert(pc.match_substring_regex(text, lossless.LEADING_ZERO)),
        "short": pc.less_equal(pc.utf8_length(text), SHORT_DECIMAL),
        "int64": pc.less_equal(pc.utf8_length(text), 18),
        "iso_date": pc.match_substring_regex(text, "^" + ISO_DATE.pattern),
    }
    folded = _fold(
        ids.filter(pc.is_valid(text)), {k: v.filter(pc.is_valid(text)) for k, v in checks.items()}, "all"
    )
    guesses: list[pa.DataType] = []
    positions = iter(range(len(columns) - len(invalid)))
    for index, column in enumerate(columns):
        if index in invalid:
            guesses.append(pa.binary())
            continue
        found = folded.get(next(positions))
        if not found:
            guesses.append(pa.null())
            continue
        holds = {name.removesuffix("_all"): value is not False for name, value in found.items()}
        if holds["boolean"]:
            guesses.append(pa.bool_())
        elif holds["plain"] and holds["no_leading_zero"] and holds["integer"] and holds["int64"]:
            guesses.append(pa.int64())
        elif holds["plain"] and holds["no_leading_zero"] and holds["short"] and not holds["integer"]:
            guesses.append(pa.float64())
        elif holds["plain"] or holds["iso_date"]:
            guesses.append(lossless.infer(column.cast(pa.string())))  # long numbers, timestamps
        else:
            guesses.append(pa.string())
    return guesses


def _stack_utf8(columns: list[pa.ChunkedArray]) -> tuple[set[int], tuple[pa.Array, pa.Array]]:
    """Positions of the columns holding bytes that are not UTF-8 (checked one by one only if any),
    and the values of the others laid end to end as text, with their column ids (`_stack`)."""
    try:
        return set(), _stack(columns, pa.string())
    except pa.ArrowInvalid:
        pass
    invalid = set()
    for index, column in enumerate(columns):
        try:
            column.cast(pa.string())
        except pa.ArrowInvalid:
            invalid.add(index)
    valid = [column for index, column in enumerate(columns) if index not in invalid]
    if not valid:
        return invalid, (pa.array([], pa.string()), pa.array([], pa.int32()))
    return invalid, _stack(valid, pa.string())


def sample_table(raw: pa.Table, typed: pa.Table | None, *, examples: bool) -> list[ColumnFacts]:
    """Facts per column of a sampled piece, read as bytes (`raw`) and with Arrow's inference (`typed`;
    None for pieces too wide for it: then from the text alone)."""
    if raw.num_columns == 0:
        return []
    if typed is None:
        guesses: list[pa.DataType | None] = list(_text_guesses(raw))
        integers = [index for index, guess in enumerate(guesses) if guess == pa.int64()]
        numbers = [raw.column(index).cast(pa.string()).cast(pa.int64()) for index in integers]
    else:
        guesses, integers, floats = _guess(raw, typed)
        _check_numbers(raw, typed, guesses, integers, floats)
        numbers = [typed.column(index) for index in integers]
    facts = []
    for index, guess in enumerate(guesses):
        column = raw.column(index)
        data_type = guess if guess is not None else lossless.infer(column.cast(pa.string()))
        facts.append(ColumnFacts(data_type, values=len(column) - column.null_count))
    kept = [
        position for position, index in enumerate(integers) if pa.types.is_integer(facts[index].data_type)
    ]
    if kept:
        ranges = _integer_ranges([numbers[position] for position in kept])
        for position, (low, high) in zip(kept, ranges, strict=True):
            facts[integers[position]].minimum, facts[integers[position]].maximum = low, high
    _add_text_facts(raw, facts, examples=examples)
    return facts


def _add_text_facts(raw: pa.Table, facts: list[ColumnFacts], *, examples: bool) -> None:
    strings = [index for index, item in enumerate(facts) if pa.types.is_string(item.data_type)]
    if not strings:
        return
    texts = [raw.column(index).cast(pa.string()) for index in strings]
    for index, values in zip(strings, _distinct(texts), strict=True):
        facts[index].distinct = values
    if examples:
        for index, text in zip(strings, texts, strict=True):
            facts[index].examples = [
                value for value in text.slice(0, EXAMPLES).drop_null().to_pylist() if value
            ]
