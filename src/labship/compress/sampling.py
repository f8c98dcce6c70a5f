"""Typing every sampled column at once: the cost is per value, not per column.

A sampled piece is read as bytes (one Arrow column per CSV column). Typing it column by column
costs ~10 Arrow calls per column, which dominates on a 10,000-column file with few rows. Here all
columns are laid end to end in one array, the checks of `labship.compress.types` run once over
it (booleans, integers, decimals, leading zeros, significant digits, ISO-looking timestamps), and
one `group_by` folds them per column; only the rare columns that need a closer look (integers of
19+ digits, long decimals, timestamp candidates) are cast one by one. Integer ranges and distinct
strings (for the dictionary choice) are computed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from labship.compress import types as lossless

DICTIONARY_MAX_DISTINCT = 1000
EXAMPLES = 1000
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
CHECKS = ("boolean", "integer", "decimal", "leading_zero", "long_integer", "iso_date")


@dataclass
class ColumnFacts:
    """What one sampled piece showed about one column."""

    data_type: pa.DataType
    values: int = 0
    minimum: int | None = None
    maximum: int | None = None
    distinct: set[str] | None = None  # None: more than DICTIONARY_MAX_DISTINCT (or not text)
    examples: list[str] = field(default_factory=list)


def _column_ids(columns: int, rows: int) -> pa.Array:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas/pyarrow extras almost always
        return pa.array([index for index in range(columns) for _ in range(rows)], pa.int32())
    return pa.array(np.repeat(np.arange(columns, dtype=np.int32), rows))


def _flat(raw: pa.Table) -> tuple[pa.Array, list[int]]:
    """All columns end to end as one binary array, and the indices of columns that are not UTF-8."""
    chunks = [
        column.combine_chunks() if column.num_chunks != 1 else column.chunk(0) for column in raw.columns
    ]
    flat = (
        pa.concat_arrays([chunk.cast(pa.binary()) for chunk in chunks])
        if chunks
        else pa.array([], pa.binary())
    )
    try:
        flat.cast(pa.string())
        return flat, []
    except pa.ArrowInvalid:
        pass
    invalid = []
    for index, chunk in enumerate(chunks):
        try:
            chunk.cast(pa.string())
        except pa.ArrowInvalid:
            invalid.append(index)
    return flat, invalid


def _checks(text: pa.Array) -> dict[str, pa.Array]:
    lowered = pc.utf8_lower(text)
    integer = pc.match_substring_regex(text, lossless.INTEGER)
    return {
        "boolean": pc.is_in(lowered, value_set=pa.array(["true", "false"])),
        "integer": integer,
        "decimal": pc.match_substring_regex(text, lossless.DECIMAL),
        "leading_zero": pc.match_substring_regex(text, lossless.LEADING_ZERO),
        "long_integer": pc.and_(integer, pc.greater(pc.utf8_length(text), 18)),
        "iso_date": pc.match_substring_regex(text, ISO_DATE),
        # a non-integer of <= 16 characters has <= 15 digits (a "." or sign takes one): float64 is
        # exact; longer ones get the exact significant-digit count, column by column
        "length": pc.utf8_length(text),
    }


def _summaries(text: pa.Array, ids: pa.Array) -> dict[int, dict[str, object]]:
    """Per column: count of values and whether every/any value passes each check."""
    valid = pc.is_valid(text)
    table = pa.table({"column": ids, **_checks(text)}).filter(valid)
    aggregations = [
        (name, "all" if name != "leading_zero" and name != "long_integer" else "any") for name in CHECKS
    ]
    grouped = table.group_by("column", use_threads=False).aggregate(
        [*aggregations, ("length", "max"), ("column", "count")]
    )
    summaries = {}
    for row in grouped.to_pylist():
        summaries[row["column"]] = {
            **{name: row[f"{name}_{kind}"] for name, kind in aggregations},
            "length": row["length_max"],
            "count": row["column_count"],
        }
    return summaries


def _decide(summary: dict[str, object] | None, text: pa.Array) -> pa.DataType:
    """The lossless type of one column from its summary (a closer look only where needed)."""
    if not summary:
        return pa.null()
    if summary["boolean"]:
        return pa.bool_()
    if summary["decimal"]:
        if summary["leading_zero"]:
            return pa.string()
        if summary["integer"] and not summary["long_integer"]:
            return pa.int64()
        if not summary["integer"] and (summary["length"] or 0) <= lossless.FLOAT64_EXACT_DIGITS + 1:  # type: ignore[operator]
            return pa.float64()
        return lossless.infer(pa.chunked_array([text]))  # 19+ digit integers, long decimals
    if summary["iso_date"]:
        return lossless.infer(pa.chunked_array([text]))
    return pa.string()


def _integer_ranges(text: pa.Array, ids: pa.Array, columns: list[int]) -> dict[int, tuple[int, int]]:
    mask = pc.and_(pc.is_in(ids, value_set=pa.array(columns, pa.int32())), pc.is_valid(text))
    table = pa.table({"column": pc.filter(ids, mask), "value": pc.filter(text, mask).cast(pa.int64())})
    grouped = table.group_by("column", use_threads=False).aggregate([("value", "min"), ("value", "max")])
    return {row["column"]: (row["value_min"], row["value_max"]) for row in grouped.to_pylist()}


def _distinct(text: pa.Array, ids: pa.Array, columns: list[int]) -> dict[int, set[str]]:
    """Distinct strings of the text columns that have at most DICTIONARY_MAX_DISTINCT of them."""
    mask = pc.is_in(ids, value_set=pa.array(columns, pa.int32()))
    pairs = (
        pa.table({"column": pc.filter(ids, mask), "value": pc.filter(text, mask)})
        .group_by(["column", "value"], use_threads=False)
        .aggregate([])
    )
    counts = pairs.group_by("column", use_threads=False).aggregate(
        [("value", "count", pc.CountOptions(mode="all"))]
    )
    few = [row["column"] for row in counts.to_pylist() if row["value_count"] <= DICTIONARY_MAX_DISTINCT]
    chosen = pairs.filter(pc.is_in(pairs.column("column"), value_set=pa.array(few, pa.int32())))
    distinct: dict[int, set[str]] = {column: set() for column in few}
    for column, value in zip(
        chosen.column("column").to_pylist(), chosen.column("value").to_pylist(), strict=True
    ):
        distinct[column].add(value)
    return distinct


def sample_table(raw: pa.Table, *, examples: bool) -> list[ColumnFacts]:
    """Facts per column of a sampled piece read as bytes (see the module docstring)."""
    rows, width = raw.num_rows, raw.num_columns
    if width == 0:
        return []
    flat, invalid = _flat(raw)
    ids = _column_ids(width, rows)
    text = flat.cast(pa.string(), safe=False) if not invalid else _blank_invalid(flat, ids, invalid)
    summaries = _summaries(text, ids) if rows else {}
    facts = []
    for index in range(width):
        column_text = text.slice(index * rows, rows)
        data_type = pa.binary() if index in invalid else _decide(summaries.get(index), column_text)
        count = int(summaries.get(index, {}).get("count", 0) or 0)  # type: ignore[call-overload]
        facts.append(ColumnFacts(data_type, values=count))
    integers = [index for index, item in enumerate(facts) if pa.types.is_integer(item.data_type)]
    for index, (low, high) in (_integer_ranges(text, ids, integers) if integers else {}).items():
        facts[index].minimum, facts[index].maximum = low, high
    strings = [index for index, item in enumerate(facts) if pa.types.is_string(item.data_type)]
    for index, values in (_distinct(text, ids, strings) if strings else {}).items():
        facts[index].distinct = values
    if examples:
        for index in strings:
            column_text = text.slice(index * rows, min(rows, EXAMPLES)).drop_null()
            facts[index].examples = [value for value in column_text.to_pylist() if value]
    return facts


def _blank_invalid(flat: pa.Array, ids: pa.Array, invalid: list[int]) -> pa.Array:
    """The text of the valid columns; the invalid UTF-8 columns' values become null."""
    bad = pc.is_in(ids, value_set=pa.array(invalid, pa.int32()))
    return pc.if_else(bad, pa.scalar(None, pa.binary()), flat).cast(pa.string())
