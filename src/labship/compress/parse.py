"""Parsing one block of records into an Arrow table with the dataset's fixed types.

The fast path is one `pyarrow.csv.read_csv` call per block with `column_types` fixed by the plan.
When it fails, `_recover` decides why:

- a value does not fit an *inferred* type: the block is re-typed losslessly
  (`labship.compress.types.infer`) and `Promotion` tells the orchestrator which columns to widen;
- otherwise (explicit types, invalid UTF-8, ragged rows) the slow path reads every value as bytes,
  converts column by column, and each value that does not fit is a bad row: an error naming the
  line, column and option (`on-bad-rows error`), or a row set aside in the side file (`skip`).

Values Arrow would read without complaint but not losslessly (`007` as an integer, 17 significant
digits as float64, `10:00+02:00` in a UTC timestamp column, which Arrow shifts to UTC) are caught on
the raw text of each block that could hold them (one RE2 scan of the block) and promote too.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from labship.compress import types as lossless
from labship.compress.errors import CompressError, Promotion, printable
from labship.compress.reader import Block
from labship.compress.schema import Plan, SourceHeader, unify
from labship.compress.settings import Settings

CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): .*CSV conversion error to ([^:]+): (.*)")


@functools.lru_cache(maxsize=16)
def risky_text(delimiter: str, *, numbers: bool, offsets: bool) -> str:
    """RE2 pattern of text Arrow reads but not losslessly: a whole field holding a number with a
    leading zero (`007`, `01.5`) or 16+ digits (anchored to field edges so `01/31/2024` never
    matches), and/or a time with a non-UTC offset (`types.NON_UTC_OFFSET`)."""
    edge = "[\r\n" + ("\\t" if delimiter == "\t" else "\\" + delimiter) + "]"
    number = '"?-?(?:0[0-9]+(?:\\.[0-9]*)?|[0-9.]{16,}(?:[eE][+-]?[0-9]+)?)"?'
    patterns = [f"(?:^|{edge}){number}(?:{edge}|$)"] if numbers else []
    return "|".join(patterns + ([lossless.NON_UTC_OFFSET] if offsets else []))


def has_risky_text(block: Block, pattern: str) -> bool:
    """Whether the block may hold such text (one RE2 scan in Arrow: ~150 MB/s, GIL released)."""
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(block)))
    whole = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, block.arrow()])
    return bool(pc.match_substring_regex(whole, pattern)[0].as_py())


def timestamp_parsers(formats: tuple[str, ...]) -> list[Any] | None:
    """Arrow timestamp parsers: explicit formats replace the ISO-8601 parser unless it is listed too."""
    return [*formats, pacsv.ISO8601] if formats else None


def is_text(data_type: pa.DataType) -> bool:
    """String, or a dictionary of strings."""
    return pa.types.is_string(data_type) or (
        pa.types.is_dictionary(data_type) and pa.types.is_string(data_type.value_type)
    )


@dataclass
class ParsedBlock:
    """A block's rows as a table, and the raw rows set aside (`--on-bad-rows skip`), in order."""

    table: pa.Table
    rejected: list[bytes] = field(default_factory=list)


class BlockParser:
    """Parses the blocks of one source with the plan's types; safe to call from several threads."""

    def __init__(self, path: Path, header: SourceHeader, plan: Plan, settings: Settings) -> None:
        self.path = path
        self.header = header
        self.names = list(header.names)
        self.dialect = header.dialect
        self.plan = plan
        self.settings = settings
        present = set(self.names)
        self.columns = [name for name in plan.columns if name in present]
        self.types = {name: plan.types[name] for name in self.columns}
        inferred = [name for name in self.columns if name not in plan.explicit]
        numeric = [name for name in inferred if _kind_is_number(self.types[name])]
        zoned = [name for name in inferred if lossless.is_zoned(self.types[name])]
        self.checked = numeric + zoned  # columns whose text is checked on every risky block
        self.booleans = any(pa.types.is_boolean(data_type) for data_type in self.types.values())
        self.risky = risky_text(self.dialect.delimiter, numbers=bool(numeric), offsets=bool(zoned))

    def options(self, block: Block, *, threads: bool, handler: Callable[[Any], str] | None) -> dict[str, Any]:
        """read_csv keywords for this block: the dialect, the fixed types, the bad-row handler."""
        return {
            "read_options": pacsv.ReadOptions(
                column_names=self.names, use_threads=threads, block_size=4 << 20
            ),
            "parse_options": self.dialect.parse_options(
                newlines_in_values=bool(block.has_quotes), invalid_row_handler=handler
            ),
            "convert_options": pacsv.ConvertOptions(
                include_columns=self.columns,
                column_types=self.types,
                timestamp_parsers=timestamp_parsers(self.plan.timestamp_formats),
                **lossless.boolean_options(needed=self.booleans),
            ),
        }

    def parse(self, block: Block, *, threads: bool = True) -> ParsedBlock:
        """The block's rows with the plan's types; raises Promotion or CompressError."""
        skip = self.settings.on_bad_rows == "skip"
        ragged: list[Any] = []

        def set_aside(row: Any) -> str:
            ragged.append(row)
            return "skip"

        self._check_lossless(block)
        try:
            table = pacsv.read_csv(
                block.arrow(), **self.options(block, threads=threads, handler=set_aside if skip else None)
            )
        except pa.ArrowInvalid as error:
            return self._recover(block, error)
        self._check_line_count(block, table.num_rows + len(ragged))
        return ParsedBlock(table, [row.text.encode("utf-8", "surrogateescape") for row in ragged])

    def _check_lossless(self, block: Block) -> None:
        """Promote columns whose text Arrow would read but change (leading zeros, 16+ digits, offsets)."""
        if not self.checked or not has_risky_text(block, self.risky):
            return
        text = self._as_text(block, self.checked)
        if text is None:
            return  # malformed block: the parse reports it
        changes = {}
        for name, column in zip(self.checked, text.columns, strict=True):
            values = column.drop_null()
            if lossless.text_loses(values, self.types[name]):
                changes[name] = lossless.infer(values)
        if changes:
            raise Promotion({name: unify(self.types[name], found) for name, found in changes.items()})

    def _as_text(self, block: Block, columns: list[str]) -> pa.Table | None:
        try:
            return pacsv.read_csv(
                block.arrow(),
                read_options=pacsv.ReadOptions(column_names=self.names, use_threads=False),
                parse_options=self.dialect.parse_options(
                    newlines_in_values=bool(block.has_quotes), invalid_row_handler=lambda _row: "skip"
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=columns,
                    column_types=dict.fromkeys(columns, pa.string()),
                    strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid:
            return None

    def _check_line_count(self, block: Block, records: int) -> None:
        lines = block.line_count()
        if lines is not None and records != lines and not block.has_empty_lines():
            raise CompressError(
                f"{self.path}: lines {block.first_line}-{block.first_line + lines - 1}: read {records} rows "
                f"from {lines} lines; the CSV is malformed there"
            )

    def _recover(self, block: Block, error: pa.ArrowInvalid) -> ParsedBlock:
        """A block failed to parse: promote inferred columns, or handle bad rows (error or skip)."""
        match = CONVERSION_ERROR.search(str(error))
        if match:
            index = int(match.group(1))
            column = self.names[index] if index < len(self.names) else "?"
            if column in self.types and column not in self.plan.explicit:
                changes = self._inferred_changes(block)
                if changes:
                    raise Promotion(changes) from error
        return self._slow_parse(block)

    def _inferred_changes(self, block: Block) -> dict[str, pa.DataType]:
        """Inferred columns whose type must widen to hold this block's values (typed losslessly)."""
        inferred = [name for name in self.columns if name not in self.plan.explicit]
        table = self._as_text(block, inferred)
        if table is None:
            return {}
        changes = {}
        for name, column in zip(inferred, table.columns, strict=True):
            wider = self._widened(name, column)
            if wider is not None:
                changes[name] = wider
        return changes

    def _widened(self, name: str, column: pa.ChunkedArray) -> pa.DataType | None:
        current = self.types[name]
        base = current.value_type if pa.types.is_dictionary(current) else current
        try:
            column.drop_null().cast(base)
            if not lossless.text_loses(column.drop_null(), base):
                return None  # this column's values fit
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            pass
        found = lossless.infer(column)
        if pa.types.is_integer(base) and pa.types.is_integer(found):
            return pa.int64()
        wider = unify(base, found)
        return None if wider == base else wider

    def _slow_parse(self, block: Block) -> ParsedBlock:
        """Parse every value as bytes, find the rows that do not fit, then convert the rest."""
        ragged: list[Any] = []

        def note(row: Any) -> str:
            ragged.append(row)
            return "skip"

        options = self.options(block, threads=False, handler=note)
        options["convert_options"] = pacsv.ConvertOptions(
            column_types=dict.fromkeys(self.names, pa.binary()), strings_can_be_null=True
        )
        try:
            raw = pacsv.read_csv(block.arrow(), **options)
        except pa.ArrowInvalid as error:
            raise CompressError(
                f"{self.path}: near line {block.first_line}: {printable(str(error), 300)}"
            ) from error
        if ragged and self.settings.on_bad_rows == "error":
            self._ragged_error(block, ragged[0])
        rejected = [row.text.encode("utf-8", "surrogateescape") for row in ragged]
        bad = [False] * raw.num_rows
        converted = {}
        for name in self.columns:
            values, failures = convert_column(
                raw.column(name).combine_chunks(), self.types[name], self.plan.timestamp_formats
            )
            for index, value in failures:
                if self.settings.on_bad_rows == "error":
                    self._value_error(block, bool(ragged), name, index, value)
                bad[index] = True
            converted[name] = values
        if any(bad):
            keep = pa.array([not flag for flag in bad])
            rejected += [
                b",".join(_csv_bytes(raw.column(name)[index].as_py()) for name in self.names)
                for index, flag in enumerate(bad)
                if flag
            ]
            converted = {name: pc.filter(values, keep) for name, values in converted.items()}
        return ParsedBlock(pa.table(converted), rejected)

    def _ragged_error(self, block: Block, row: Any) -> None:
        line = block.first_line + row.number - 1 if row.number and row.number > 0 else block.first_line
        raise CompressError(
            f"{self.path}: line {line}: expected {row.expected_columns} fields, "
            f"found {row.actual_columns} (ragged row: {printable(row.text)!r}); fix the row or use "
            "--on-bad-rows skip to set such rows aside in a side file"
        )

    def _value_error(self, block: Block, ragged: bool, name: str, index: int, value: Any) -> None:
        target = self.types[name]
        line = block.first_line + index if not block.has_quotes and not ragged and block.exact else None
        where = f"line {line}" if line else f"row {index + 1} of the block at line {block.first_line}"
        origin = self.settings.origin
        if is_text(target):
            advice = f'set types.{name} = "binary" in {origin} to keep bytes'
        elif name in self.plan.explicit:
            advice = f"change types.{name} in {origin}"
        else:
            advice = f"set types.{name} in {origin}"
        problem = "is not valid UTF-8" if is_text(target) else f"is not a valid {target}"
        shown = printable(value) if isinstance(value, str) else value
        raise CompressError(
            f"{self.path}: {where}: column {name!r}: value {shown!r} {problem}; {advice}, "
            "or use --on-bad-rows skip to set such rows aside in a side file"
        )


def _kind_is_number(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)


def _csv_bytes(value: bytes | None) -> bytes:
    if value is None:
        return b""
    return b'"' + value.replace(b'"', b'""') + b'"' if any(c in value for c in b',"\r\n') else value


def _convert_all(values: pa.Array, target: pa.DataType, formats: tuple[str, ...]) -> pa.Array:
    """Convert a binary column to `target` in one go; raises on any value that does not fit."""
    if pa.types.is_binary(target):
        return values
    text = values.cast(pa.string())
    if pa.types.is_null(target):
        if pc.any(pc.not_equal(text, "")).as_py():
            raise pa.ArrowInvalid("not empty")
        return pa.nulls(len(values), pa.null())
    if is_text(target):
        return text.cast(target)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if pa.types.is_boolean(target):
        lowered = pc.utf8_lower(text)
        if pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py() is False:
            raise pa.ArrowInvalid("not a boolean")
        return pc.equal(lowered, "true")
    if pa.types.is_timestamp(target) and formats:
        for pattern in formats:
            try:
                return pc.strptime(text, format=pattern, unit=target.unit)
            except pa.ArrowInvalid:
                continue
    return text.cast(target)


CONVERSION_FAILURES = (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, OverflowError)


def convert_column(
    column: pa.Array, target: pa.DataType, formats: tuple[str, ...]
) -> tuple[pa.Array, list[tuple[int, Any]]]:
    """Convert a binary column to `target`; bad values become null and are listed (index, raw value)."""
    try:
        return _convert_all(column, target, formats), []
    except CONVERSION_FAILURES:
        pass
    failures = []
    for index, value in enumerate(column.to_pylist()):
        try:
            _convert_all(pa.array([value], pa.binary()), target, formats)
        except CONVERSION_FAILURES:
            failures.append((index, value.decode("utf-8", "backslashreplace") if value is not None else None))
    failed = {index for index, _ in failures}
    mask = pa.array([index not in failed for index in range(len(column))])
    good = pc.if_else(mask, column, pa.scalar(None, pa.binary()))
    return _convert_all(good, target, formats), failures
