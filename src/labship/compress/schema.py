"""The dataset schema: sampling each source, unifying types across files, choosing compact types.

Every file of a dataset is sampled (its head, and for plain files over 8 MB slices spread over the
whole file); the samples' Arrow-inferred types are unified with permissive promotion
(int -> float -> string), so every output of a dataset shares one schema (`Plan`). Explicit
`types` win. Values past the samples are still checked during conversion and widen the plan
(`Plan.promoted`). Columns are looked up by position, never by name in a loop, so sampling costs
the same per byte on a 10,000-column file as on a 10-column one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from labship.compress import types as lossless
from labship.compress.dialect import BOM, Dialect, detect
from labship.compress.errors import CompressError, printable
from labship.compress.reader import open_bytes, read_head, read_header, safe_cut, skip_leading
from labship.compress.sampling import ColumnFacts, sample_table
from labship.compress.settings import Settings

# type sampling: up to 4 MB per file (half head, half 8 slices), at most 1/SAMPLE_SHARE of the dataset
# and 16 MB in all, at least 32 KB (hundreds of rows) per file. Values beyond the samples are still
# checked during conversion and widen the type (at the price of a second round). Sampling reads its
# bytes twice (text and Arrow's inference, ~45 MB/s each on one core) where the conversion reads
# them once (~60 MB/s): a sampled MB costs ~3 converted ones. The previous flat 32 MB sampled 36% of
# an 81 MB dataset of 40 files and cost 1.5x the conversion itself; a 32 MB cap cost 1.5 s of CPU
# on 1 GB of flight files (~9% of converting them), 16 MB half that (still 8x the rows DuckDB's
# sniffer reads, spread over 64 files). One file keeps its 4 MB.
SAMPLE_FILE_BYTES = 4 << 20
SAMPLE_MIN_FILE_BYTES = 32 << 10
SAMPLE_BUDGET_BYTES = 16 << 20
SAMPLE_SHARE = 32
SAMPLE_SLICES = 8
# Of many files, 64 spread over the list are sampled (the others: dialect and header only). Sampling
# costs ~6 ms a file whatever its size (two Arrow reads, the checks): 2.7 s of CPU for 449 files of
# 2.2 MB, more than converting them takes per MB; the same budget spent on 64 files types as well,
# and a value an unsampled file holds that its column's type cannot is still caught and promoted.
SAMPLED_FILES_MAX = 64
# Arrow's type inference costs ~0.3 ms per column and call (2.3 s for 8 rows of 10,000 columns): wider
# pieces are typed from their text alone (`sampling._text_guesses`)
ARROW_GUESS_MAX_COLUMNS = 500
SLICE_MIN_ROWS = 200
DICTIONARY_MAX_DISTINCT = 1000
Mapper = Callable[[Callable[[Path], "_Look"], list[Path]], list["_Look"]]


def unify(left: pa.DataType, right: pa.DataType) -> pa.DataType:
    """The narrowest type that holds values of both (permissive: anything incompatible -> string)."""
    if left == right:
        return left
    if pa.types.is_null(left):
        return right
    if pa.types.is_null(right):
        return left
    if pa.types.is_binary(left) or pa.types.is_binary(right):
        return pa.binary()
    kinds = {_kind(left), _kind(right)}
    if kinds == {"int"}:
        return pa.int64()
    if kinds == {"int", "float"}:
        return pa.float64()
    if kinds == {"time"}:
        return pa.timestamp("ns") if any("ns" in str(item) for item in (left, right)) else pa.timestamp("ms")
    if kinds == {"zoned"}:  # both UTC (the only zone inferred); naive and zoned mixed stay text
        return pa.timestamp("ns" if "ns" in (left.unit, right.unit) else "s", "UTC")
    if kinds <= {"int", "decimal"}:
        return lossless.wider_decimal(left, right)
    return pa.string()


def _kind(data_type: pa.DataType) -> str:
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_decimal(data_type):
        return "decimal"
    if lossless.is_zoned(data_type):
        return "zoned"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return "time"
    return "other"


@dataclass
class ColumnSample:
    """What the samples of one column showed."""

    data_type: pa.DataType = field(default_factory=pa.null)
    minimum: int | None = None
    maximum: int | None = None
    distinct: set[str] = field(default_factory=set)
    values: int = 0
    many_distinct: bool = False
    examples: list[str] = field(default_factory=list)  # the first text values, to test timestamp formats

    def add(self, column: pa.ChunkedArray) -> None:
        """Fold one sampled column (already made lossless) into the sample."""
        self.data_type = unify(self.data_type, column.type)
        self.values += len(column) - column.null_count
        if pa.types.is_integer(column.type) and column.null_count < len(column):
            bounds = pc.min_max(column)
            self._extend(bounds["min"].as_py(), bounds["max"].as_py())
        if pa.types.is_string(column.type):
            self._add_text(column)

    def add_facts(self, facts: ColumnFacts) -> None:
        """Fold the facts of one sampled piece (see labship.compress.sampling) into the sample."""
        self.data_type = unify(self.data_type, facts.data_type)
        self.values += facts.values
        self._extend(facts.minimum, facts.maximum)
        if len(self.examples) < 1000:
            self.examples += facts.examples[: 1000 - len(self.examples)]
        if facts.distinct is None and pa.types.is_string(facts.data_type):
            self.many_distinct, self.distinct = True, set()
        elif facts.distinct is not None and not self.many_distinct:
            self.distinct |= facts.distinct
            if len(self.distinct) > DICTIONARY_MAX_DISTINCT:
                self.many_distinct, self.distinct = True, set()

    def _extend(self, low: int | None, high: int | None) -> None:
        for value in (low, high):
            if value is not None:
                self.minimum = value if self.minimum is None else min(self.minimum, value)
                self.maximum = value if self.maximum is None else max(self.maximum, value)

    def _add_text(self, column: pa.ChunkedArray) -> None:
        if len(self.examples) < 1000:
            self.examples += [value for value in column.slice(0, 1000).to_pylist() if value]
        if not self.many_distinct:
            self.distinct.update(pc.unique(column).to_pylist())
            if len(self.distinct) > DICTIONARY_MAX_DISTINCT:
                self.many_distinct = True
                self.distinct.clear()

    def merge(self, other: ColumnSample) -> None:
        """Fold the sample of the same column in another file into this one."""
        self.data_type = unify(self.data_type, other.data_type)
        self._extend(other.minimum, other.maximum)
        self.values += other.values
        self.many_distinct = self.many_distinct or other.many_distinct
        self.examples += other.examples[: max(0, 2000 - len(self.examples))]
        if not self.many_distinct:
            self.distinct |= other.distinct
            if len(self.distinct) > DICTIONARY_MAX_DISTINCT:
                self.many_distinct, self.distinct = True, set()

    def storage_type(self, timestamp_formats: tuple[str, ...]) -> pa.DataType:
        """The compact type to read the column as (checked on every value during conversion)."""
        data_type = self.data_type
        if pa.types.is_integer(data_type) and self.minimum is not None:
            # int32 with 2x headroom over the samples; an overflow later promotes to int64
            fits = self.minimum >= -(2**30) and (self.maximum or 0) < 2**30
            return pa.int32() if fits else pa.int64()
        if pa.types.is_binary(data_type):
            return pa.string()  # invalid UTF-8 in the samples: those rows are bad rows (error or skip)
        if pa.types.is_string(data_type) and timestamp_formats and self._all_parse(timestamp_formats):
            return pa.timestamp("s")
        if self._few_distinct():
            return pa.dictionary(pa.int32(), pa.string())
        return data_type

    def _all_parse(self, timestamp_formats: tuple[str, ...]) -> bool:
        if not self.examples:
            return False
        sample = pa.array(self.examples, pa.string())
        for pattern in timestamp_formats:
            parsed = pc.strptime(sample, format=pattern, unit="s", error_is_null=True)
            if parsed.null_count == 0:
                return True
        return False

    def _few_distinct(self) -> bool:
        return (
            pa.types.is_string(self.data_type)
            and not self.many_distinct
            and bool(self.distinct)
            and len(self.distinct) * 4 <= max(self.values, 1)
        )


@dataclass(frozen=True)
class SourceHeader:
    """A source's column names (after cleaning or generating) and its dialect."""

    names: tuple[str, ...]
    dialect: Dialect


def _sample_slices(path: Path, dialect: Dialect, budget: int) -> Iterator[bytes]:
    """The head (after leading lines, cut at a record end); for plain files over 8 MB half the budget
    comes from 8 slices spread over the file, each trimmed to whole lines (slices with quotes skipped)."""
    size = path.stat().st_size
    spread = not path.name.endswith(".gz") and size > 2 * SAMPLE_FILE_BYTES
    head_bytes = budget // 2 if spread else budget
    newline = dialect.newline
    with open_bytes(path) as stream:
        head = stream.read(head_bytes).removeprefix(BOM)
        head = head[skip_leading(head, dialect.skip_lines) :]
        end = safe_cut(head, len(head), dialect) if len(head) >= head_bytes - 3 else len(head)
        yield head[: end if end > 0 else len(head)]
        # wide rows: a slice of a few rows costs Arrow's per-column overhead for little evidence,
        # so take fewer, bigger slices (at least SLICE_MIN_ROWS rows each)
        row_bytes = len(head) // max(head.count(newline), 1)
        slices = min(SAMPLE_SLICES, (budget - head_bytes) // max(row_bytes * SLICE_MIN_ROWS, 1))
        if not spread or slices < 1:
            return
        slice_bytes = (budget - head_bytes) // slices
        for index in range(1, slices + 1):
            stream.seek(head_bytes + (size - head_bytes - slice_bytes) * index // slices)
            data = stream.read(slice_bytes)
            start = data.find(newline) + 1
            end = data.rfind(newline) + 1
            if 0 < start < end and b'"' not in data:
                yield data[start:end]


def _read_piece(
    data: bytes, header: SourceHeader, columns: list[str], *, skip_header: bool, typed: bool
) -> pa.Table:
    """The `columns` of one sampled piece as bytes, or with Arrow's inference (only true/false read
    as booleans)."""
    names = list(header.names)
    options = lossless.sampling_options(None if typed else columns)
    if len(columns) < len(names):
        # Arrow matches include_columns against the names one by one: only set it for a subset
        # (10,000 of 10,000 columns took 3.6 s per read)
        options.include_columns = columns
    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(
            column_names=names,
            skip_rows=1 if skip_header else 0,
            use_threads=False,
            block_size=max(len(data), 1 << 20),  # one chunk per column
        ),
        parse_options=header.dialect.parse_options(
            newlines_in_values=True, invalid_row_handler=lambda _row: "skip"
        ),
        convert_options=options,
    )


def _facts(
    data: bytes, header: SourceHeader, columns: list[str], *, skip_header: bool, examples: bool
) -> list[ColumnFacts] | None:
    """The facts of one piece, or None when it does not parse (a slice that starts inside a quoted
    field; the conversion checks every value anyway)."""
    try:
        raw = _read_piece(data, header, columns, skip_header=skip_header, typed=False)
        typed = (
            _read_piece(data, header, columns, skip_header=skip_header, typed=True)
            if len(columns) <= ARROW_GUESS_MAX_COLUMNS
            else None
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    return sample_table(raw, typed, examples=examples)


def sample_file(
    path: Path,
    header: SourceHeader,
    *,
    budget: int = SAMPLE_FILE_BYTES,
    examples: bool = False,
    columns: list[str] | None = None,
) -> dict[str, ColumnSample]:
    """Types, integer ranges and distinct strings per column (of `columns`, default all), from the
    head and slices of the file.

    The pieces are read as one buffer (Arrow's per-call cost paid once, which matters on wide
    files); when that fails, piece by piece, skipping the pieces that do not parse."""
    names = list(header.names) if columns is None else columns
    if not names:
        return {}  # (Arrow reads an empty include_columns as "all of them")
    samples = [ColumnSample() for _ in names]
    newline = header.dialect.newline
    pieces = [
        piece if piece.endswith(newline) else piece + newline
        for piece in _sample_slices(path, header.dialect, budget)
        if piece
    ]
    skip_header = bool(header.dialect.header)
    found = (
        _facts(b"".join(pieces), header, names, skip_header=skip_header, examples=examples)
        if pieces
        else None
    )
    per_piece = (
        [found]
        if found is not None
        else [
            _facts(piece, header, names, skip_header=skip_header and index == 0, examples=examples)
            for index, piece in enumerate(pieces)
        ]
    )
    for facts in per_piece:
        for sample, item in zip(samples, facts or [], strict=False):
            sample.add_facts(item)
    return dict(zip(names, samples, strict=True))


@dataclass
class Plan:
    """The schema every file of a dataset is read with."""

    columns: list[str]  # kept columns, in source order (of the first file that has them)
    types: dict[str, pa.DataType]
    explicit: frozenset[str]
    timestamp_formats: tuple[str, ...]

    def fingerprint(self) -> str:
        """A short hash of the column names and types."""
        described = [[name, str(self.types[name])] for name in self.columns]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def promoted(self, changes: dict[str, pa.DataType]) -> Plan:
        """This plan with the changed columns widened."""
        types = dict(self.types)
        for name, data_type in changes.items():
            types[name] = unify(types[name], data_type)
        return Plan(self.columns, types, self.explicit, self.timestamp_formats)


def select_columns(available: list[str], settings: Settings) -> list[str]:
    """The columns to keep, in source order; an unknown name is an error listing the available ones."""
    known = set(available)
    unknown = [
        name for name in (*settings.columns, *settings.drop, *settings.partition_by) if name not in known
    ]
    if unknown:
        raise CompressError(
            f"{settings.origin}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"available columns: {printable(', '.join(available), 2000)}"
        )
    if settings.columns:
        wanted = set(settings.columns) | set(settings.partition_by)
        kept = [name for name in available if name in wanted]
    else:
        dropped = set(settings.drop)
        kept = [name for name in available if name not in dropped]
    if not kept or kept == list(settings.partition_by):
        raise CompressError(
            f"{settings.origin}: no column left to write; "
            f"available columns: {printable(', '.join(available), 2000)}"
        )
    return kept


@dataclass
class _Look:
    """One source's header, rename notes and samples (or the error that makes it unreadable)."""

    header: SourceHeader | None = None
    renames: list[str] = field(default_factory=list)
    samples: dict[str, ColumnSample] = field(default_factory=dict)
    error: CompressError | None = None


def sampled_columns(names: list[str], settings: Settings) -> list[str]:
    """The columns of a file worth sampling: the ones the settings may keep (dropped ones are never
    converted, so their types do not matter)."""
    if settings.columns:
        wanted = set(settings.columns) | set(settings.partition_by)
        return [name for name in names if name in wanted]
    dropped = set(settings.drop)
    return [name for name in names if name not in dropped]


def look_at(path: Path, settings: Settings, *, budget: int) -> _Look:
    """Detect the dialect, read the header and sample one source."""
    try:
        dialect = detect(read_head(path), settings.dialect, path=path, origin=settings.origin)
        names, renames = read_header(path, dialect)
    except CompressError as error:
        return _Look(error=error)
    header = SourceHeader(tuple(names), dialect)
    if budget <= 0:
        return _Look(header, renames, {})  # not sampled: its dialect and header only
    try:
        samples = sample_file(
            path,
            header,
            budget=budget,
            examples=bool(settings.timestamp_formats),
            columns=sampled_columns(names, settings),
        )
    except (EOFError, OSError, zlib.error, CompressError):
        samples = {}  # a damaged .gz: its conversion stops with the line where it breaks
    return _Look(header, renames, samples)


def sampled_positions(count: int) -> set[int]:
    """Which of `count` sources (in path order) are sampled: all, or SAMPLED_FILES_MAX spread evenly
    (the first and the last among them) when there are more."""
    if count <= SAMPLED_FILES_MAX:
        return set(range(count))
    return {index * (count - 1) // (SAMPLED_FILES_MAX - 1) for index in range(SAMPLED_FILES_MAX)}


def _look_at_item(item: tuple[Path, int], settings: Settings) -> _Look:
    return look_at(item[0], settings, budget=item[1])


def _look_all(sources: list[Path], settings: Settings, mapper: Mapper | None, total: int) -> list[_Look]:
    # many small files: sample fewer and less of each (a later surprise is still caught and promoted)
    sampled = sampled_positions(len(sources))
    share = min(SAMPLE_BUDGET_BYTES, total // SAMPLE_SHARE) // max(len(sampled), 1)
    budget = max(SAMPLE_MIN_FILE_BYTES, min(SAMPLE_FILE_BYTES, share))
    items = [(path, budget if index in sampled else 0) for index, path in enumerate(sources)]
    look = functools.partial(_look_at_item, settings=settings)
    if mapper is not None:
        return mapper(look, items)  # the run's worker processes: dialect detection is pure Python
    if len(items) == 1:
        return [look(items[0])]
    # the parsing releases the GIL: two threads sample two files at once; merged in source order
    with ThreadPoolExecutor(2, thread_name_prefix="csv-sample") as samplers:
        return list(samplers.map(look, items))


def _column_types(
    kept: list[str], merged: dict[str, ColumnSample], settings: Settings
) -> dict[str, pa.DataType]:
    explicit = settings.explicit_types()
    return {
        name: explicit[name]
        if name in explicit
        else merged.get(name, ColumnSample()).storage_type(settings.timestamp_formats)
        for name in kept
    }


def _check_every_file_has(kept: list[str], headers: dict[Path, SourceHeader], settings: Settings) -> None:
    if not (settings.columns or settings.partition_by):
        return
    for path, header in headers.items():
        present = set(header.names)
        missing = [name for name in kept if name not in present]
        if missing:
            raise CompressError(
                f"{path}: has no column(s) {', '.join(map(repr, missing))} that {settings.origin} keeps; "
                f"its columns: {printable(', '.join(header.names), 2000)}"
            )


def plan_dataset(
    sources: list[Path], settings: Settings, *, total_bytes: int, mapper: Mapper | None = None
) -> tuple[Plan, dict[Path, SourceHeader], list[str]]:
    """Infer the dataset schema from samples of every source; also each source's header and notes.

    `total_bytes`: the sources' size (it sets the sampling budget); `mapper(function, items)`: how
    the sources are looked at (e.g. the run's worker processes)."""
    headers: dict[Path, SourceHeader] = {}
    notes: list[str] = []
    merged: dict[str, ColumnSample] = {}
    for path, seen in zip(sources, _look_all(sources, settings, mapper, total_bytes), strict=True):
        if seen.error is not None:
            if settings.on_bad_rows == "skip":
                notes.append(f"{path}: empty file skipped")
                continue
            raise seen.error
        assert seen.header is not None
        headers[path] = seen.header
        notes += [f"{path}: {note}" for note in seen.renames]
        for name, sample in seen.samples.items():
            merged.setdefault(name, ColumnSample()).merge(sample)
    if not headers:
        raise CompressError(f"{sources[0].parent}: every CSV file is empty; nothing to convert")
    available = list(dict.fromkeys(name for header in headers.values() for name in header.names))
    kept = select_columns(available, settings)
    _check_every_file_has(kept, headers, settings)
    types = _column_types(kept, merged, settings)
    explicit = frozenset(name for name, _ in settings.types if name in types)
    return Plan(kept, types, explicit, settings.timestamp_formats), headers, notes
