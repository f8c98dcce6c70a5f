"""Streaming CSV -> Parquet: bounded memory, whole-file type correctness, deterministic and atomic output.

How a dataset is converted:

1. The sources (`.csv`, `.csv.gz` under the source directory) are compared with the manifest the
   previous run left in the target (`.labship-manifest.json`): a file whose size, mtime and settings
   are unchanged is skipped without being opened, so a re-run with nothing to do is instant.
2. A dataset schema is inferred from samples of every file (the head, and for plain files slices
   spread over the whole file), unified with permissive promotion (int -> float -> string), so all
   outputs of a dataset share one schema. Explicit `types` and `timestamp-formats` win.
3. Each file is cut into blocks at record boundaries (quote-aware, so quoted newlines stay inside a
   block), each block is parsed with the fixed schema (pyarrow, all cores) while a writer thread
   encodes the previous row group. A value that does not fit the inferred type (a column that turns
   numeric, or text, after the first megabytes) promotes the column in the dataset schema and the
   affected files are converted again; explicit types are never promoted: such values are bad rows.
4. Output goes to a hidden temporary name, its row count is checked against the rows read (and the
   line count of the source), and only then is it renamed into place.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import queue
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from labship.errors import LabshipError

MANIFEST = ".labship-manifest.json"
REJECTED_DIR = "_rejected"
MANIFEST_VERSION = 1
# 4 MB blocks (two parsed at once) and 128 K-row groups keep peak RSS under 0.4 GB on any file size;
# bigger ones shrink the output by <0.5% on the benchmark data (one page per column chunk)
BLOCK_BYTES = 4 << 20
ROW_GROUP_ROWS = 128 * 1024
# a record longer than this is almost certainly an unterminated quote; bounding it bounds memory
MAX_RECORD_BYTES = 64 << 20
POOL_MIN_BYTES = 64 << 20
PARSE_THREADS = 2  # blocks parsed at once (each single-threaded); the writer thread runs beside them
# type sampling: up to 4 MB per file (half head, half 8 slices), 32 MB per dataset; values beyond the
# samples are still checked during conversion and widen the type (at the price of a second pass)
SAMPLE_FILE_BYTES = 4 << 20
SAMPLE_MIN_FILE_BYTES = 128 << 10
SAMPLE_BUDGET_BYTES = 32 << 20
SAMPLE_SLICES = 8
DICTIONARY_MAX_DISTINCT = 1000
BOM = b"\xef\xbb\xbf"
CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): .*CSV conversion error to ([^:]+): (.*)")
TYPE_ALIASES = {
    "int": pa.int64(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "str": pa.string(),
    "text": pa.string(),
    "timestamp": pa.timestamp("s"),
    "datetime": pa.timestamp("s"),
    "date": pa.date32(),
    "category": pa.dictionary(pa.int32(), pa.string()),
    "dictionary": pa.dictionary(pa.int32(), pa.string()),
}


class CompressError(LabshipError):
    """A source cannot be converted; the message names the file, the line and what to do."""


@dataclass(frozen=True)
class Settings:
    """What the user chose for one dataset; a change in any of them re-converts every file."""

    columns: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    types: tuple[tuple[str, str], ...] = ()
    timestamp_formats: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    codec: str = "zstd"
    level: int | None = None
    on_bad_rows: str = "error"
    block_bytes: int = BLOCK_BYTES
    row_group_rows: int = ROW_GROUP_ROWS
    origin: str = "options"  # where the settings came from, for error messages

    def fingerprint(self) -> str:
        chosen = {key: value for key, value in asdict(self).items() if key != "origin"}
        chosen["engine"] = [MANIFEST_VERSION, pa.__version__, _labship_version()]
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]

    def explicit_types(self) -> dict[str, pa.DataType]:
        return {name: parse_type(text, self.origin, name) for name, text in self.types}


def _labship_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labship")
    except PackageNotFoundError:
        return "unknown"


def parse_type(text: str, origin: str = "types", column: str = "") -> pa.DataType:
    """A column type as written in `types` (`int32`, `float64`, `string`, `timestamp`, `category`...)."""
    lowered = text.strip().lower()
    if lowered in TYPE_ALIASES:
        return TYPE_ALIASES[lowered]
    try:
        return pa.type_for_alias(lowered)
    except (ValueError, KeyError):
        known = ", ".join(sorted({*TYPE_ALIASES, "int8", "int16", "int32", "int64", "float32", "bool"}))
        raise CompressError(f"{origin}: types.{column}: unknown type {text!r}; use one of {known}") from None


# ---------------------------------------------------------------------------------------------------
# Reading: blocks cut at record boundaries


@dataclass
class Block:
    """Whole records of one source: `buffer[start:end]`, the 1-based line they start on, quotes or not."""

    buffer: bytes | bytearray
    start: int
    end: int
    first_line: int
    has_quotes: bool | None = None  # computed when not given; the reader knows it already
    newlines: int | None = None

    def __post_init__(self) -> None:
        if self.has_quotes is None:
            self.has_quotes = self.find(b'"') >= 0

    def __len__(self) -> int:
        return self.end - self.start

    def find(self, needle: bytes) -> int:
        return self.buffer.find(needle, self.start, self.end)

    def count(self, needle: bytes) -> int:
        return self.buffer.count(needle, self.start, self.end)

    def arrow(self) -> pa.Buffer:
        """The records as an Arrow buffer, without copying them."""
        return pa.py_buffer(self.buffer)[self.start : self.end]

    def has_empty_lines(self) -> bool:
        """Empty lines are skipped by the parser, so they do not count as records."""
        return self.find(b"\n\n") >= 0 or self.find(b"\n\r\n") >= 0 or self.buffer[self.start] in b"\r\n"

    def line_count(self) -> int | None:
        """Number of lines (records plus empty lines), or None when quotes make lines differ from records."""
        if self.has_quotes or not len(self):
            return None
        ends_with_newline = self.buffer[self.end - 1] == 0x0A
        newlines = self.count(b"\n") if self.newlines is None else self.newlines
        return newlines + (0 if ends_with_newline else 1)


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _safe_cut(buffer: bytes | bytearray, end: int, quoted: bool | None = None) -> int:
    """Index just past the last newline before `end` outside quotes, or -1 if there is none."""
    newline = buffer.rfind(b"\n", 0, end)
    if quoted is None:
        quoted = buffer.find(b'"', 0, end) >= 0
    if newline < 0 or not quoted:
        return newline + 1 if newline >= 0 else -1
    quotes = buffer.count(b'"', 0, newline)
    while newline >= 0:
        if quotes % 2 == 0:
            return newline + 1
        previous = buffer.rfind(b"\n", 0, newline)
        quotes -= buffer.count(b'"', previous + 1, newline)
        newline = previous
    return -1


def _unclosed_quote_line(buffer: bytes, first_line: int) -> int:
    position, opening = -1, -1
    while True:
        position = buffer.find(b'"', position + 1)
        if position < 0:
            break
        opening = position if opening < 0 else -1
    return first_line + buffer.count(b"\n", 0, max(opening, 0))


def _read_after(
    stream: io.BufferedIOBase, size: int, path: Path, line: int, pending: bytes
) -> bytes | bytearray:
    """`pending` followed by up to `size` more bytes of the stream (the result is shorter at the end).

    Plain files are read straight into place (one copy fewer: the GIL is held for every copy)."""
    if not path.name.endswith(".gz"):
        buffer = bytearray(len(pending) + size)
        buffer[: len(pending)] = pending
        got = stream.readinto(memoryview(buffer)[len(pending) :])  # type: ignore[attr-defined]
        del buffer[len(pending) + got :]
        return buffer
    return pending + _read_checked(stream, size, path, line, pending)


def _read_checked(stream: io.BufferedIOBase, size: int, path: Path, line: int, pending: bytes) -> bytes:
    """Read `size` bytes; a damaged .gz stream is an error naming the last line read intact."""
    pieces: list[bytes] = []
    got = 0
    piece_size = min(size, 1 << 20)
    try:
        while got < size:
            piece = stream.read(min(piece_size, size - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
    except (EOFError, OSError, zlib.error) as error:
        intact = line - 1 + pending.count(b"\n") + sum(piece.count(b"\n") for piece in pieces)
        raise CompressError(
            f"{path}: the compressed file is truncated or damaged after line {intact}: {error}; "
            "re-create or re-download it (nothing was written for this file)"
        ) from error
    return b"".join(pieces) if len(pieces) != 1 else pieces[0]


def read_blocks(path: Path, block_bytes: int) -> Iterator[Block]:
    """Yield the file (BOM stripped, header included) as blocks of whole records."""
    line = 1
    pending = b""
    first = True
    with _open_bytes(path) as stream:
        while True:
            buffer = _read_after(stream, block_bytes, path, line, pending)
            if first:
                first = False
                if buffer.startswith(BOM):
                    buffer = buffer[len(BOM) :]
            if len(buffer) == len(pending):
                if buffer:
                    if buffer.count(b'"') % 2:
                        raise CompressError(
                            f"{path}: line {_unclosed_quote_line(buffer, line)}: a quoted field is never "
                            'closed (unterminated quote); fix the quote or escape it as ""'
                        )
                    yield Block(buffer, 0, len(buffer), line)
                return
            first_quote = buffer.find(b'"')
            cut = _safe_cut(buffer, len(buffer), first_quote >= 0)
            if cut < 0:
                if len(buffer) > MAX_RECORD_BYTES:
                    raise CompressError(
                        f"{path}: line {_unclosed_quote_line(buffer, line)}: a record longer than "
                        f"{MAX_RECORD_BYTES >> 20} MB: most likely an unterminated quote; fix the quote"
                    )
                pending = buffer
                continue
            newlines = buffer.count(b"\n", 0, cut)
            yield Block(buffer, 0, cut, line, has_quotes=0 <= first_quote < cut, newlines=newlines)
            line += newlines
            pending = bytes(buffer[cut:])


def split_header(block: Block, path: Path) -> tuple[list[str], Block]:
    """The column names of the first block's first record, and the rest of the block."""
    buffer = block.buffer
    end = buffer.find(b"\n", block.start, block.end) + 1 or block.end
    while end < block.end and buffer.count(b'"', block.start, end) % 2:
        # a quoted header name holds a newline: the first newline after balanced quotes ends it
        end = buffer.find(b"\n", end, block.end) + 1 or block.end
    header_bytes = buffer[block.start : end]
    try:
        header_text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CompressError(
            f"{path}: line 1: the header is not valid UTF-8 ({error}); save the file as UTF-8"
        ) from error
    names = next(csv.reader(io.StringIO(header_text.rstrip("\r\n"))), [])
    return names, Block(buffer, end, block.end, block.first_line + header_text.count("\n"))


def clean_names(names: list[str]) -> tuple[list[str], list[str]]:
    """Unique, non-blank column names (blank -> column_N, repeats -> NAME_2) and notes on what changed."""
    seen: set[str] = set()
    cleaned, notes = [], []
    for index, raw in enumerate(names, start=1):
        name = raw.strip() or f"column_{index}"
        if not raw.strip():
            notes.append(f"header column {index} is blank: named it {name!r}")
        if name in seen:
            suffix = 2
            while f"{name}_{suffix}" in seen:
                suffix += 1
            notes.append(f"header name {name!r} repeats (column {index}): named it {name}_{suffix!r}")
            name = f"{name}_{suffix}"
        seen.add(name)
        cleaned.append(name)
    return cleaned, notes


def read_header(path: Path) -> tuple[list[str], list[str]]:
    """Cleaned column names of a source and notes on renames; raises on an empty file."""
    for block in read_blocks(path, 64 << 10):
        names, _ = split_header(block, path)
        if names:
            return clean_names(names)
        break
    raise CompressError(f"{path}: the file is empty (no header line); delete it, or use --on-bad-rows skip")


# ---------------------------------------------------------------------------------------------------
# Types: sampling, promotion


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
    if pa.types.is_integer(left) and pa.types.is_integer(right):
        return pa.int64()
    if {_kind(left), _kind(right)} == {"int", "float"}:
        return pa.float64()
    if _kind(left) == _kind(right) == "time":
        return pa.timestamp("ns") if "ns" in (str(left), str(right)) else pa.timestamp("ms")
    if pa.types.is_dictionary(left) or pa.types.is_dictionary(right):
        return pa.string()
    return pa.string()


def _kind(data_type: pa.DataType) -> str:
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_floating(data_type):
        return "float"
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
        self.data_type = unify(self.data_type, column.type)
        self.values += len(column) - column.null_count
        if pa.types.is_integer(column.type) and column.null_count < len(column):
            bounds = pc.min_max(column)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            self.minimum = low if self.minimum is None else min(self.minimum, low)
            self.maximum = high if self.maximum is None else max(self.maximum, high)
        if pa.types.is_string(column.type) and len(self.examples) < 1000:
            self.examples += [value for value in column.slice(0, 1000).to_pylist() if value]
        if pa.types.is_string(column.type) and not self.many_distinct:
            self.distinct.update(pc.unique(column).to_pylist())
            if len(self.distinct) > DICTIONARY_MAX_DISTINCT:
                self.many_distinct = True
                self.distinct.clear()

    def merge(self, other: ColumnSample) -> None:
        self.data_type = unify(self.data_type, other.data_type)
        for value in (other.minimum, other.maximum):
            if value is not None:
                self.minimum = value if self.minimum is None else min(self.minimum, value)
                self.maximum = value if self.maximum is None else max(self.maximum, value)
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
        if pa.types.is_string(data_type) and timestamp_formats and self.examples:
            sample = pa.array(self.examples, pa.string())
            for pattern in timestamp_formats:
                parsed = pc.strptime(sample, format=pattern, unit="s", error_is_null=True)
                if len(sample) and parsed.null_count == 0:
                    return pa.timestamp("s")
        if (
            pa.types.is_string(data_type)
            and not self.many_distinct
            and self.distinct
            and len(self.distinct) * 4 <= max(self.values, 1)
        ):
            return pa.dictionary(pa.int32(), pa.string())
        return data_type


def _sample_slices(path: Path, budget: int = SAMPLE_FILE_BYTES) -> Iterator[bytes]:
    """The head; for plain files over 8 MB half the budget comes from 8 slices spread over the file."""
    size = path.stat().st_size
    spread = not path.name.endswith(".gz") and size > 2 * SAMPLE_FILE_BYTES
    head_bytes = budget // 2 if spread else budget
    slice_bytes = budget // (2 * SAMPLE_SLICES)
    with _open_bytes(path) as stream:
        yield stream.read(head_bytes)
        if not spread:
            return
        for index in range(1, SAMPLE_SLICES + 1):
            stream.seek(head_bytes + (size - head_bytes - slice_bytes) * index // SAMPLE_SLICES)
            data = stream.read(slice_bytes)
            start = data.find(b"\n") + 1
            end = data.rfind(b"\n") + 1
            if 0 < start < end and b'"' not in data:
                yield data[start:end]


def sample_file(path: Path, names: list[str], budget: int = SAMPLE_FILE_BYTES) -> dict[str, ColumnSample]:
    """Types, integer ranges and distinct strings per column, from the head and slices of the file."""
    samples = {name: ColumnSample() for name in names}
    for index, data in enumerate(_sample_slices(path, budget)):
        data = data.removeprefix(BOM) if index == 0 else data
        if index == 0:
            end = _safe_cut(data, len(data))
            if end < 0:
                end = len(data)
            data = data[:end]
        try:
            table = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(
                    column_names=None if index == 0 else names,
                    autogenerate_column_names=False,
                    use_threads=False,
                ),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=lambda _row: "skip"
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError):
            continue  # a slice that starts inside a quoted field; the conversion checks every value anyway
        if index == 0:
            table = table.rename_columns(clean_names(table.column_names)[0])
        for name in names:
            if name in table.column_names:
                samples[name].add(table.column(name))
    return samples


@dataclass
class Plan:
    """The schema every file of a dataset is read with."""

    columns: list[str]  # kept columns, in source order (of the first file that has them)
    types: dict[str, pa.DataType]
    explicit: frozenset[str]
    timestamp_formats: tuple[str, ...]

    def fingerprint(self) -> str:
        described = [[name, str(self.types[name])] for name in self.columns]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def promoted(self, changes: dict[str, pa.DataType]) -> Plan:
        types = dict(self.types)
        for name, data_type in changes.items():
            types[name] = unify(types[name], data_type)
        return Plan(self.columns, types, self.explicit, self.timestamp_formats)


def select_columns(available: list[str], settings: Settings) -> list[str]:
    """The columns to keep, in source order; an unknown name is an error listing the available ones."""
    unknown = [
        name for name in (*settings.columns, *settings.drop, *settings.partition_by) if name not in available
    ]
    if unknown:
        raise CompressError(
            f"{settings.origin}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"available columns: {', '.join(available)}"
        )
    if settings.columns:
        wanted = set(settings.columns) | set(settings.partition_by)
        kept = [name for name in available if name in wanted]
    else:
        kept = [name for name in available if name not in set(settings.drop)]
    if not kept or kept == list(settings.partition_by):
        raise CompressError(
            f"{settings.origin}: no column left to write; available columns: {', '.join(available)}"
        )
    return kept


def plan_dataset(sources: list[Path], settings: Settings) -> tuple[Plan, dict[Path, list[str]], list[str]]:
    """Infer the dataset schema from samples of every source; also each source's header."""
    headers: dict[Path, list[str]] = {}
    notes: list[str] = []
    merged: dict[str, ColumnSample] = {}
    # many small files: sample less of each (a later surprise is still caught and promoted)
    share = SAMPLE_BUDGET_BYTES // max(len(sources), 1)
    budget = max(SAMPLE_MIN_FILE_BYTES, min(SAMPLE_FILE_BYTES, share))

    def look(path: Path) -> tuple[list[str], list[str], dict[str, ColumnSample]] | CompressError:
        try:
            names, renames = read_header(path)
        except CompressError as error:
            return error
        try:
            samples = sample_file(path, names, budget)
        except (EOFError, OSError, zlib.error):
            samples = {}  # a damaged .gz: its conversion stops with the line where it breaks
        return names, renames, samples

    # the parsing releases the GIL: two threads sample two files at once; merged in source order
    with ThreadPoolExecutor(2, thread_name_prefix="csv-sample") as samplers:
        looks = list(samplers.map(look, sources))
    for path, seen in zip(sources, looks, strict=True):
        if isinstance(seen, CompressError):
            if settings.on_bad_rows == "skip":
                notes.append(f"{path}: empty file skipped")
                continue
            raise seen
        names, renames, samples = seen
        headers[path] = names
        notes += [f"{path}: {note}" for note in renames]
        for name, sample in samples.items():
            merged.setdefault(name, ColumnSample()).merge(sample)
    available = list(dict.fromkeys(name for names in headers.values() for name in names))
    if not headers:
        raise CompressError(f"{sources[0].parent}: every CSV file is empty; nothing to convert")
    kept = select_columns(available, settings)
    explicit = settings.explicit_types()
    types = {}
    for name in kept:
        if name in explicit:
            types[name] = explicit[name]
        else:
            sample = merged.get(name, ColumnSample())
            types[name] = sample.storage_type(settings.timestamp_formats)
    for path, names in headers.items():
        missing = [name for name in kept if name not in names]
        if missing and (settings.columns or settings.partition_by):
            raise CompressError(
                f"{path}: has no column(s) {', '.join(map(repr, missing))} that {settings.origin} keeps; "
                f"its columns: {', '.join(names)}"
            )
    plan = Plan(kept, types, frozenset(name for name in kept if name in explicit), settings.timestamp_formats)
    return plan, headers, notes


# ---------------------------------------------------------------------------------------------------
# Converting one file


@dataclass
class FileResult:
    """What converting one source produced."""

    source: str
    outputs: list[str]
    rows: int
    rejected: int
    csv_bytes: int
    parquet_bytes: int
    seconds: float
    promotions: dict[str, str] = field(default_factory=dict)


class Promotion(Exception):
    """A value does not fit an inferred type: the dataset schema must widen these columns."""

    def __init__(self, changes: dict[str, pa.DataType]) -> None:
        super().__init__(", ".join(f"{name} -> {data_type}" for name, data_type in changes.items()))
        self.changes = changes


def _write_options(plan: Plan, settings: Settings, columns: list[str]) -> dict[str, Any]:
    """ParquetWriter options: zstd 3, one data page per column chunk, delta-encoded timestamps."""
    timestamps = [name for name in columns if pa.types.is_timestamp(plan.types[name])]
    codec = "none" if settings.codec == "none" else settings.codec
    level = settings.level if settings.level is not None else (3 if codec == "zstd" else None)
    return {
        "compression": codec,
        "compression_level": level,
        "use_dictionary": [name for name in columns if name not in timestamps],
        "column_encoding": dict.fromkeys(timestamps, "DELTA_BINARY_PACKED") or None,
        "data_page_size": 64 << 20,
        "max_rows_per_page": settings.row_group_rows * 2,
        "dictionary_pagesize_limit": 4 << 20,
        "write_statistics": True,
    }


def _output_schema(plan: Plan, columns: list[str]) -> pa.Schema:
    # a column empty in the whole file is read as null but stored as string (readable everywhere)
    return pa.schema(
        [(name, pa.string() if pa.types.is_null(plan.types[name]) else plan.types[name]) for name in columns]
    )


class _RejectedRows:
    """Side file of rows set aside by `--on-bad-rows skip`: the header, then each row as read."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self.temporary = path.with_name(f".{path.name}.tmp")
        self.handle: io.BufferedWriter | None = None
        self.count = 0

    def add(self, raw: bytes) -> None:
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.temporary, "wb")  # noqa: SIM115 - closed in finish()
            self.handle.write((",".join(_csv_cell(name) for name in self.header) + "\n").encode())
        self.handle.write(raw.rstrip(b"\r\n") + b"\n")
        self.count += 1

    def finish(self) -> None:
        if self.handle is not None:
            self.handle.close()
            os.replace(self.temporary, self.path)
        elif self.path.exists():
            self.path.unlink()

    def abandon(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.temporary.unlink(missing_ok=True)


def _csv_cell(value: str) -> str:
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\r\n') else value


def _csv_bytes(value: bytes | None) -> bytes:
    if value is None:
        return b""
    return b'"' + value.replace(b'"', b'""') + b'"' if any(c in value for c in b',"\r\n') else value


class _Converter:
    """Parses the blocks of one source with the plan's types and yields Arrow tables."""

    def __init__(self, path: Path, names: list[str], plan: Plan, settings: Settings):
        self.path = path
        self.names = names
        self.plan = plan
        self.settings = settings
        self.columns = [name for name in plan.columns if name in names]
        self.types = {name: plan.types[name] for name in self.columns}

    def options(self, block: Block, threads: bool, handler: Callable[[Any], str] | None) -> dict[str, Any]:
        return {
            "read_options": pacsv.ReadOptions(
                column_names=self.names, use_threads=threads, block_size=4 << 20
            ),
            "parse_options": pacsv.ParseOptions(
                newlines_in_values=block.has_quotes, invalid_row_handler=handler
            ),
            "convert_options": pacsv.ConvertOptions(
                include_columns=self.columns,
                column_types=self.types,
                timestamp_parsers=_timestamp_parsers(self.plan.timestamp_formats),
            ),
        }

    def parse(self, block: Block, threads: bool = True) -> tuple[pa.Table, list[bytes]]:
        """The block's rows as a table, and the raw rows set aside (`--on-bad-rows skip`), in order.

        Safe to call from several threads at once: nothing is shared but the read-only plan."""
        skip = self.settings.on_bad_rows == "skip"
        ragged: list[Any] = []
        rejected: list[bytes] = []

        def set_aside(row: Any) -> str:
            ragged.append(row)
            return "skip"

        try:
            table = pacsv.read_csv(block.arrow(), **self.options(block, threads, set_aside if skip else None))
        except pa.ArrowInvalid as error:
            return self._recover(block, error, rejected), rejected
        rejected += [row.text.encode("utf-8", "surrogateescape") for row in ragged]
        self._check_line_count(block, table.num_rows + len(ragged))
        return table, rejected

    def _check_line_count(self, block: Block, records: int) -> None:
        lines = block.line_count()
        if lines is not None and records != lines and not block.has_empty_lines():
            raise CompressError(
                f"{self.path}: lines {block.first_line}-{block.first_line + lines - 1}: read {records} rows "
                f"from {lines} lines; the CSV is malformed there"
            )

    def _recover(self, block: Block, error: pa.ArrowInvalid, rejected: list[bytes]) -> pa.Table:
        """A block failed to parse: promote inferred columns, or handle bad rows (error or skip)."""
        message = str(error)
        match = CONVERSION_ERROR.search(message)
        if match:
            column = self.names[int(match.group(1))] if int(match.group(1)) < len(self.names) else "?"
            if column in self.types and column not in self.plan.explicit:
                changes = self._inferred_changes(block)
                if changes:
                    raise Promotion(changes) from error
        return self._slow_parse(block, rejected)

    def _inferred_changes(self, block: Block) -> dict[str, pa.DataType]:
        """Inferred columns whose type must widen to hold this block's values."""
        inferred = [name for name in self.columns if name not in self.plan.explicit]
        try:
            table = pacsv.read_csv(
                block.arrow(),
                read_options=pacsv.ReadOptions(column_names=self.names),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=block.has_quotes, invalid_row_handler=lambda _row: "skip"
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=inferred,
                    timestamp_parsers=_timestamp_parsers(self.plan.timestamp_formats),
                ),
            )
        except pa.ArrowInvalid:
            return {}
        changes = {}
        for name in inferred:
            found = table.column(name).type
            if pa.types.is_binary(found):
                continue  # invalid UTF-8 is a bad row, not a type
            current = self.types[name]
            base = current.value_type if pa.types.is_dictionary(current) else current
            if pa.types.is_timestamp(base) and pa.types.is_string(found):
                found = pa.string()
            wider = unify(base, found)
            if pa.types.is_integer(base) and pa.types.is_integer(found):
                # widen only if the block overflows the narrowed integer type
                try:
                    table.column(name).cast(base)
                    wider = base
                except (pa.ArrowInvalid, OverflowError):
                    wider = pa.int64()
            if wider != base and not (pa.types.is_dictionary(current) and pa.types.is_string(wider)):
                changes[name] = wider
        return changes

    def _slow_parse(self, block: Block, rejected: list[bytes]) -> pa.Table:
        """Parse every value as bytes, find the rows that do not fit, then convert the rest."""
        ragged: list[Any] = []

        def note(row: Any) -> str:
            ragged.append(row)
            return "skip"

        options = self.options(block, False, note)
        options["convert_options"] = pacsv.ConvertOptions(
            column_types=dict.fromkeys(self.names, pa.binary()), strings_can_be_null=True
        )
        try:
            raw = pacsv.read_csv(block.arrow(), **options)
        except pa.ArrowInvalid as error:
            raise CompressError(f"{self.path}: near line {block.first_line}: {error}") from error
        if ragged and self.settings.on_bad_rows == "error":
            row = ragged[0]
            line = block.first_line + row.number - 1 if row.number and row.number > 0 else block.first_line
            raise CompressError(
                f"{self.path}: line {line}: expected {row.expected_columns} fields, "
                f"found {row.actual_columns} (ragged row: {row.text[:80]!r}); fix the row or use "
                "--on-bad-rows skip to set such rows aside in a side file"
            )
        rejected += [row.text.encode("utf-8", "surrogateescape") for row in ragged]
        bad = [False] * raw.num_rows
        converted = {}
        for name in self.columns:
            column = raw.column(name).combine_chunks()
            target = self.types[name]
            values, failures = _convert_column(column, target, self.plan.timestamp_formats)
            for index, value in failures:
                if self.settings.on_bad_rows == "error":
                    line = block.first_line + index if not block.has_quotes and not ragged else None
                    where = (
                        f"line {line}" if line else f"row {index + 1} of the block at line {block.first_line}"
                    )
                    if _is_text(target):
                        advice = f'set types.{name} = "binary" in {self.settings.origin} to keep bytes'
                    elif name in self.plan.explicit:
                        advice = f"change types.{name} in {self.settings.origin}"
                    else:
                        advice = f"set types.{name} in {self.settings.origin}"
                    problem = "is not valid UTF-8" if _is_text(target) else f"is not a valid {target}"
                    raise CompressError(
                        f"{self.path}: {where}: column {name!r}: value {value!r} {problem}; {advice}, "
                        "or use --on-bad-rows skip to set such rows aside in a side file"
                    )
                bad[index] = True
            converted[name] = values
        if any(bad):
            keep = pa.array([not flag for flag in bad])
            for index, flag in enumerate(bad):
                if flag:
                    cells = [_csv_bytes(raw.column(name)[index].as_py()) for name in self.names]
                    rejected.append(b",".join(cells))
            converted = {name: pc.filter(values, keep) for name, values in converted.items()}
        return pa.table(converted)


def _timestamp_parsers(formats: tuple[str, ...]) -> list[Any] | None:
    # explicit formats replace Arrow's ISO-8601 parser unless it is listed too
    return [*formats, pacsv.ISO8601] if formats else None


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or (
        pa.types.is_dictionary(data_type) and pa.types.is_string(data_type.value_type)
    )


def _convert_column(
    column: pa.Array, target: pa.DataType, formats: tuple[str, ...]
) -> tuple[pa.Array, list[tuple[int, Any]]]:
    """Convert a binary column to `target`; bad values become null and are listed (index, raw value)."""

    def convert(values: pa.Array) -> pa.Array:
        if pa.types.is_binary(target):
            return values
        text = values.cast(pa.string())
        if pa.types.is_null(target):
            if pc.any(pc.not_equal(text, "")).as_py():
                raise pa.ArrowInvalid("not empty")
            return pa.nulls(len(values), pa.null())
        if _is_text(target):
            return text.cast(target)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        if pa.types.is_timestamp(target) and formats:
            for pattern in formats:
                try:
                    return pc.strptime(text, format=pattern, unit=target.unit)
                except pa.ArrowInvalid:
                    continue
        return text.cast(target)

    try:
        return convert(column), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        pass
    failures = []
    for index, value in enumerate(column.to_pylist()):
        try:
            convert(pa.array([value], pa.binary()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
            failures.append((index, value.decode("utf-8", "backslashreplace") if value is not None else None))
    mask = pa.array([True] * len(column))
    if failures:
        failed = {index for index, _ in failures}
        mask = pa.array([index not in failed for index in range(len(column))])
    good = pc.if_else(mask, column, pa.scalar(None, pa.binary()))
    return convert(good), failures


# ---------------------------------------------------------------------------------------------------
# Writing: one file per source, or hive partitions

TEMP_SUFFIX = ".labship-tmp"


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


class _FileSink:
    """One Parquet file written under a temporary name and renamed once its row count is verified."""

    def __init__(self, path: Path, schema: pa.Schema, options: dict[str, Any]) -> None:
        self.path = path
        self.schema = schema
        self.temporary = _temporary(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer: pq.ParquetWriter | None = pq.ParquetWriter(self.temporary, schema, **options)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        assert self.writer is not None
        self.writer.write_table(table.cast(self.schema), row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows

    def commit(self, expected_rows: int, source: Path) -> list[Path]:
        assert self.writer is not None
        self.writer.close()
        self.writer = None
        _verify(self.temporary, expected_rows, source)
        os.replace(self.temporary, self.path)
        return [self.path]

    def abandon(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):  # the file is deleted anyway
                self.writer.close()
        self.temporary.unlink(missing_ok=True)


def _verify(path: Path, expected_rows: int, source: Path) -> None:
    written = pq.read_metadata(path).num_rows
    if written != expected_rows:
        raise CompressError(f"{source}: wrote {written} rows but read {expected_rows}; output discarded")


MAX_PARTITIONS = 1000


def _partition_dir(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    parts = []
    for name, value in zip(names, values, strict=True):
        if value is None:
            text = "__HIVE_DEFAULT_PARTITION__"
        elif hasattr(value, "isoformat"):
            text = value.isoformat()
        else:
            text = str(value)
        parts.append(f"{quote(name, safe='')}={quote(text, safe='')}")
    return "/".join(parts)


class _PartitionedSink:
    """Hive-style output `COL=value/<name>.parquet`: one writer per partition value of this source."""

    def __init__(
        self, root: Path, file_name: str, schema: pa.Schema, by: tuple[str, ...], options: dict[str, Any]
    ):
        self.root = root
        self.file_name = file_name
        self.by = by
        self.schema = pa.schema([schema.field(name) for name in schema.names if name not in by])
        self.options = options
        self.sinks: dict[tuple[Any, ...], _FileSink] = {}
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        keys = table.select(list(self.by)).group_by(list(self.by), use_threads=False).aggregate([])
        for key in keys.to_pylist():
            values = tuple(key[name] for name in self.by)
            mask = None
            for name, value in zip(self.by, values, strict=True):
                column = table.column(name)
                match = pc.is_null(column) if value is None else pc.fill_null(pc.equal(column, value), False)
                mask = match if mask is None else pc.and_(mask, match)
            part = table.filter(mask).drop_columns(list(self.by))
            sink = self.sinks.get(values)
            if sink is None:
                if len(self.sinks) >= MAX_PARTITIONS:
                    raise CompressError(
                        f"--partition-by {','.join(self.by)}: more than {MAX_PARTITIONS} partitions; "
                        "partition by a column with fewer distinct values"
                    )
                path = self.root / _partition_dir(self.by, values) / self.file_name
                sink = self.sinks[values] = _FileSink(path, self.schema, self.options)
            sink.write(part)
        self.rows += table.num_rows

    def commit(self, expected_rows: int, source: Path) -> list[Path]:
        if self.rows != expected_rows:
            raise CompressError(f"{source}: partitioned {self.rows} rows but read {expected_rows}")
        outputs = []
        for sink in self.sinks.values():
            outputs += sink.commit(sink.rows, source)
        return outputs

    def abandon(self) -> None:
        for sink in self.sinks.values():
            sink.abandon()


def output_name(relative: str) -> str:
    """`a/b.csv` and `a/b.csv.gz` -> `a/b.parquet`."""
    stem = relative[: -len(".csv.gz")] if relative.endswith(".csv.gz") else relative[: -len(".csv")]
    return f"{stem}.parquet"


def convert_file(
    source: Path,
    relative: str,
    target: Path,
    names: list[str],
    plan: Plan,
    settings: Settings,
    on_progress: Callable[[int], None] | None = None,
) -> FileResult:
    """Convert one source; raises CompressError (bad input) or Promotion (the schema must widen)."""
    started = time.perf_counter()
    rejected = _RejectedRows(
        target / REJECTED_DIR / f"{output_name(relative)[: -len('.parquet')]}.csv", names
    )
    converter = _Converter(source, names, plan, settings)
    schema = _output_schema(plan, converter.columns)
    options = _write_options(plan, settings, converter.columns)
    out_name = output_name(relative)
    sink: _FileSink | _PartitionedSink
    if settings.partition_by:
        relative_dir = str(Path(out_name).parent)
        flat_name = out_name.replace("/", "__") if relative_dir != "." else out_name
        sink = _PartitionedSink(target, flat_name, schema, settings.partition_by, options)
    else:
        sink = _FileSink(target / out_name, schema, options)
    reported = [0]
    size = source.stat().st_size

    def progress(count: int) -> None:
        reported[0] += count
        if on_progress is not None:
            on_progress(count)

    plain = not source.name.endswith(".gz")  # a .gz file's progress counts compressed bytes, at its end
    try:
        rows = _pump(source, converter, sink, rejected, settings, progress if plain else None)
        outputs = sink.commit(rows, source)
        if on_progress is not None and size > reported[0]:
            on_progress(size - reported[0])
        rejected.finish()
    except BaseException:
        sink.abandon()
        rejected.abandon()
        raise
    return FileResult(
        source=relative,
        outputs=[str(path.relative_to(target)) for path in outputs],
        rows=rows,
        rejected=rejected.count,
        csv_bytes=size,
        parquet_bytes=sum(path.stat().st_size for path in outputs),
        seconds=time.perf_counter() - started,
    )


_DONE = object()


def _use_lean_allocator() -> None:
    """Streaming allocates and frees a block's worth of memory over and over, from several threads.

    Measured on a 1.6 GB file (peak RSS, same CPU): mimalloc (Arrow's default) ~450 MB, the system
    allocator 389 MB, jemalloc 315 MB. Use jemalloc where pyarrow has it, else the system one."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ or pa.default_memory_pool().backend_name != "mimalloc":
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:
        pa.set_memory_pool(pa.system_memory_pool())


def _pump(
    source: Path,
    converter: _Converter,
    sink: _FileSink | _PartitionedSink,
    rejected: _RejectedRows,
    settings: Settings,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Read blocks here, parse PARSE_THREADS of them at once, and encode row groups in a writer thread.

    Results are taken in block order, so the output does not depend on thread timing."""
    _use_lean_allocator()
    row_groups: queue.Queue[Any] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def write_all() -> None:
        while True:
            item = row_groups.get()
            if item is _DONE:
                return
            if failure:
                continue  # drain so the producer never blocks
            try:
                sink.write(item)
            except BaseException as error:
                failure.append(error)

    writer = threading.Thread(target=write_all, name="parquet-writer", daemon=True)
    writer.start()
    rows = 0
    pending: list[pa.Table] = []
    pending_rows = 0

    def take(parsed: tuple[pa.Table, list[bytes]], size: int) -> None:
        nonlocal rows, pending, pending_rows
        table, set_aside = parsed
        for raw in set_aside:
            rejected.add(raw)
        rows += table.num_rows
        pending.append(table)
        pending_rows += table.num_rows
        if on_progress is not None:
            on_progress(size)
        if pending_rows >= settings.row_group_rows:
            row_groups.put(pa.concat_tables(pending))
            pending, pending_rows = [], 0

    parsing: deque[tuple[Future[tuple[pa.Table, list[bytes]]], int]] = deque()
    try:
        with ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="csv-parse") as parsers:
            blocks = read_blocks(source, settings.block_bytes)
            first = next(blocks, None)
            if first is None:
                raise CompressError(
                    f"{source}: the file is empty (no header line); delete it, or use --on-bad-rows skip"
                )
            _, first = split_header(first, source)
            for block in _chain(first, blocks):
                if failure:
                    break
                if not len(block):
                    continue  # a header-only file
                parsing.append((parsers.submit(converter.parse, block, PARSE_THREADS == 1), len(block)))
                while len(parsing) > PARSE_THREADS:
                    future, size = parsing.popleft()
                    take(future.result(), size)
            while parsing and not failure:
                future, size = parsing.popleft()
                take(future.result(), size)
        if pending and not failure:
            row_groups.put(pa.concat_tables(pending))
    finally:
        for future, _size in parsing:
            future.cancel()
        row_groups.put(_DONE)
        writer.join()
    if failure:
        raise failure[0]
    return rows


def _chain(first: Block, rest: Iterator[Block]) -> Iterator[Block]:
    yield first
    yield from rest


# ---------------------------------------------------------------------------------------------------
# A dataset: discovery, manifest, rounds of conversion, report


@dataclass
class DatasetReport:
    """Totals of one dataset's conversion, for the terminal table and the JSON report."""

    name: str
    source: str
    target: str
    files: int = 0
    converted: int = 0
    skipped: int = 0
    rows: int = 0
    rejected_rows: int = 0
    csv_bytes: int = 0
    parquet_bytes: int = 0
    columns_kept: int = 0
    columns_dropped: int = 0
    seconds: float = 0.0
    converted_csv_bytes: int = 0
    uplink_mbps: float = 24.5
    rejected_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.csv_bytes / self.parquet_bytes if self.parquet_bytes else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.converted_csv_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        from labship.report import transfer_seconds

        payload = asdict(self)
        payload.update(
            ratio=round(self.ratio, 3),
            megabytes_per_second=round(self.megabytes_per_second, 1),
            upload_seconds_csv=round(transfer_seconds(self.csv_bytes, self.uplink_mbps), 1),
            upload_seconds_parquet=round(transfer_seconds(self.parquet_bytes, self.uplink_mbps), 1),
            seconds=round(self.seconds, 3),
        )
        return payload


class ProgressHook:
    """Receives progress in source bytes; the task shows it as a bar (the default shows nothing)."""

    def start(self, description: str, total_bytes: int) -> None:
        """A dataset starts with this many source bytes to convert."""

    def advance(self, count: int) -> None:
        """`count` more source bytes are done."""

    def stop(self) -> None:
        """The dataset is done."""


def find_sources(source: Path, exclude: Path | None = None) -> dict[str, Path]:
    """`.csv` and `.csv.gz` files under `source` by relative path (sorted), hidden ones left out."""
    if not source.is_dir():
        raise CompressError(f"source directory {source} does not exist; create it or fix `source`")
    found: dict[str, Path] = {}
    outputs: dict[str, str] = {}
    for root, directories, files in os.walk(source):
        here = Path(root)
        directories[:] = sorted(
            name
            for name in directories
            if not name.startswith(".") and (exclude is None or here / name != exclude)
        )
        for name in sorted(files):
            if name.startswith(".") or not (name.endswith(".csv") or name.endswith(".csv.gz")):
                continue
            relative = (here / name).relative_to(source).as_posix()
            clash = outputs.get(output_name(relative))
            if clash:
                raise CompressError(
                    f"{source}: {clash} and {relative} would both become {output_name(relative)}; keep one"
                )
            outputs[output_name(relative)] = relative
            found[relative] = here / name
    return dict(sorted(found.items()))


def _load_manifest(target: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": {}}
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        return {"files": {}}
    return manifest


def _save_manifest(target: Path, manifest: dict[str, Any]) -> None:
    from labship.report import write_json_atomic

    write_json_atomic(target / MANIFEST, manifest)


def _check_codec(settings: Settings) -> None:
    codec = "uncompressed" if settings.codec == "none" else settings.codec
    try:
        if settings.level is not None and codec in ("uncompressed", "snappy"):
            raise ValueError("this codec has no levels")
        if codec != "uncompressed":
            pa.Codec(codec, compression_level=settings.level)
    except (ValueError, OSError, pa.ArrowException) as error:
        where = f"{settings.origin}: codec {settings.codec!r} level {settings.level}"
        raise CompressError(f"{where}: {error}; use another level or leave it unset") from None


def _is_current(entry: dict[str, Any] | None, stat: os.stat_result, fingerprint: str, target: Path) -> bool:
    return bool(
        entry
        and entry.get("size") == stat.st_size
        and entry.get("mtime_ns") == stat.st_mtime_ns
        and entry.get("settings") == fingerprint
        and all((target / output).is_file() for output in entry.get("outputs", []))
    )


def _remove_stale_temporaries(target: Path) -> None:
    if target.is_dir():
        for leftover in target.rglob(f".*{TEMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)


def _job(arguments: tuple[Any, ...]) -> tuple[str, Any]:
    """Worker entry point: convert one file, reporting progress through the shared queue."""
    source, relative, target, names, plan, settings = arguments
    hook = _worker_progress.put if _worker_progress is not None else None
    try:
        return "ok", convert_file(source, relative, target, names, plan, settings, hook)
    except Promotion as promotion:
        return "promote", promotion.changes
    except CompressError as error:
        return "error", str(error)
    except (pa.ArrowException, OSError) as error:  # e.g. disk full, permissions: name the file
        return "error", f"{source}: {error}"


_worker_progress: Any = None


def _init_worker(progress_queue: Any) -> None:
    global _worker_progress
    _worker_progress = progress_queue


def compress_dataset(
    name: str,
    source: Path,
    target: Path,
    settings: Settings,
    uplink_mbps: float = 24.5,
    jobs: int | None = None,
    progress: ProgressHook | None = None,
) -> DatasetReport:
    """Convert every source of a dataset that changed since the last run; see the module docstring."""
    started = time.perf_counter()
    _check_codec(settings)
    _use_lean_allocator()
    progress = progress or ProgressHook()
    source, target = Path(source), Path(target)
    report = DatasetReport(name=name, source=str(source), target=str(target), uplink_mbps=uplink_mbps)
    sources = find_sources(source, exclude=target)
    fingerprint = settings.fingerprint()
    manifest = _load_manifest(target)
    entries: dict[str, Any] = manifest.get("files", {}) if manifest.get("settings") == fingerprint else {}
    stats = {relative: path.stat() for relative, path in sources.items()}
    changed = [rel for rel in sources if not _is_current(entries.get(rel), stats[rel], fingerprint, target)]
    gone = [rel for rel in manifest.get("files", {}) if rel not in sources]

    if changed or gone or manifest.get("settings") != fingerprint:
        target.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target)
        for relative in [*gone, *(rel for rel in manifest.get("files", {}) if rel in changed)]:
            for output in manifest["files"][relative].get("outputs", []):
                (target / output).unlink(missing_ok=True)
            entries.pop(relative, None)
        if not sources:
            raise CompressError(f"{source}: no .csv or .csv.gz files found; put the CSV files there")
        plan, headers, report.notes = plan_dataset(list(sources.values()), settings)
        schema = plan.fingerprint()
        if manifest.get("schema") != schema:
            changed = list(sources)
            entries = {}
        manifest = {"version": MANIFEST_VERSION, "settings": fingerprint, "schema": schema, "files": entries}
        changed = [rel for rel in changed if sources[rel] in headers]  # empty files were skipped
        for _round in range(20):
            promotions = _run_round(
                changed, sources, headers, target, plan, settings, jobs, progress, manifest, report
            )
            if not promotions:
                break
            plan = plan.promoted(promotions)
            report.notes.append(
                "widened after reading past the samples: "
                + ", ".join(f"{column} -> {data_type}" for column, data_type in promotions.items())
            )
            manifest["schema"] = plan.fingerprint()
            manifest["files"] = entries = {}
            changed = [rel for rel in sources if sources[rel] in headers]
        columns = plan.columns
        available = list(dict.fromkeys(name for names in headers.values() for name in names))
        manifest["columns"] = {"kept": columns, "available": available}
        _save_manifest(target, manifest)
    else:
        columns = manifest.get("columns", {}).get("kept", [])
        available = manifest.get("columns", {}).get("available", columns)

    report.files = len(sources)
    report.skipped = report.files - report.converted - len(report.errors)
    for relative, entry in manifest.get("files", {}).items():
        report.rows += entry["rows"]
        report.rejected_rows += entry["rejected"]
        report.csv_bytes += entry["csv_bytes"]
        report.parquet_bytes += entry["parquet_bytes"]
        if entry["rejected"]:
            report.rejected_files.append(f"{REJECTED_DIR}/{output_name(relative)[: -len('.parquet')]}.csv")
    report.columns_kept = len(columns)
    report.columns_dropped = len(available) - len(columns)
    report.seconds = time.perf_counter() - started
    return report


def _run_round(
    changed: list[str],
    sources: dict[str, Path],
    headers: dict[Path, list[str]],
    target: Path,
    plan: Plan,
    settings: Settings,
    jobs: int | None,
    progress: ProgressHook,
    manifest: dict[str, Any],
    report: DatasetReport,
) -> dict[str, pa.DataType]:
    """Convert `changed` files (largest first, in parallel); return the promotions any of them needs."""
    order = sorted(changed, key=lambda rel: (-sources[rel].stat().st_size, rel))
    progress.start(f"{report.name}", sum(sources[rel].stat().st_size for rel in order))
    promotions: dict[str, pa.DataType] = {}
    report.converted = 0
    report.converted_csv_bytes = 0
    report.errors = []

    def record(relative: str, status: str, value: Any) -> None:
        if status == "ok":
            stat = sources[relative].stat()
            result: FileResult = value
            manifest["files"][relative] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "settings": manifest["settings"],
                "outputs": result.outputs,
                "rows": result.rows,
                "rejected": result.rejected,
                "csv_bytes": result.csv_bytes,
                "parquet_bytes": result.parquet_bytes,
            }
            manifest["files"] = dict(sorted(manifest["files"].items()))
            _save_manifest(target, manifest)
            report.converted += 1
            report.converted_csv_bytes += result.csv_bytes
        elif status == "promote":
            for column, data_type in value.items():
                promotions[column] = unify(promotions.get(column, pa.null()), data_type)
        else:
            report.errors.append(value)

    workers = min(jobs or os.cpu_count() or 1, len(order))
    if jobs is None and sum(sources[rel].stat().st_size for rel in order) < POOL_MIN_BYTES:
        workers = 1  # starting worker processes costs more than it saves on small data
    try:
        if workers <= 1:
            for relative in order:
                record(relative, *_job_inline(relative, sources, headers, target, plan, settings, progress))
        else:
            _run_pool(order, workers, sources, headers, target, plan, settings, progress, record)
    finally:
        progress.stop()
    if report.errors and not promotions:
        raise CompressError("\n".join(report.errors))
    return promotions


def _job_inline(relative: str, sources, headers, target, plan, settings, progress) -> tuple[str, Any]:
    try:
        path = sources[relative]
        return "ok", convert_file(path, relative, target, headers[path], plan, settings, progress.advance)
    except Promotion as promotion:
        return "promote", promotion.changes
    except CompressError as error:
        return "error", str(error)
    except (pa.ArrowException, OSError) as error:  # e.g. disk full, permissions: name the file
        return "error", f"{sources[relative]}: {error}"


def _run_pool(order, workers, sources, headers, target, plan, settings, progress, record) -> None:
    import multiprocessing

    # forkserver: workers fork from a clean server that imported labship (and pyarrow) once, so they
    # start in milliseconds without inheriting this process's threads; spawn where it is missing
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["labship.compress"])
    except ValueError:
        context = multiprocessing.get_context("spawn")
    progress_queue = context.Queue()
    stop = threading.Event()

    def forward() -> None:
        while not stop.is_set() or not progress_queue.empty():
            try:
                progress.advance(progress_queue.get(timeout=0.1))
            except queue.Empty:
                continue

    forwarder = threading.Thread(target=forward, daemon=True)
    forwarder.start()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(progress_queue,)
        ) as pool:
            running: dict[Future[tuple[str, Any]], str] = {}
            for relative in order:
                path = sources[relative]
                job = (path, relative, target, headers[path], plan, settings)
                running[pool.submit(_job, job)] = relative
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    relative = running.pop(future)
                    record(relative, *future.result())
    finally:
        stop.set()
        forwarder.join()


# ---------------------------------------------------------------------------------------------------
# Entry point for the task: datasets of [tool.labship], options, terminal and JSON report


@dataclass(frozen=True)
class Overrides:
    """Command-line options; each one set replaces the dataset's setting from pyproject.toml."""

    columns: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    codec: str | None = None
    level: int | None = None
    on_bad_rows: str | None = None
    partition_by: tuple[str, ...] = ()


def settings_for(dataset: Any, overrides: Overrides, origin: str) -> Settings:
    """Settings from a `labship.config.Dataset` (or None for --source/--target) plus the options."""
    columns = overrides.columns or (() if overrides.drop else tuple(getattr(dataset, "columns", ())))
    drop = overrides.drop or (() if overrides.columns else tuple(getattr(dataset, "drop", ())))
    return Settings(
        columns=columns,
        drop=drop,
        types=tuple(sorted(getattr(dataset, "types", {}).items())),
        timestamp_formats=tuple(getattr(dataset, "timestamp_formats", ())),
        partition_by=overrides.partition_by or tuple(getattr(dataset, "partition_by", ())),
        codec=overrides.codec or getattr(dataset, "codec", "zstd"),
        level=overrides.level if overrides.level is not None else getattr(dataset, "level", None),
        on_bad_rows=overrides.on_bad_rows or getattr(dataset, "on_bad_rows", "error"),
        origin=origin,
    )


class RichProgress(ProgressHook):
    """A progress bar in bytes on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: Any = None

    def start(self, description: str, total_bytes: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(f"compress {description}", total=total_bytes)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)

    def stop(self) -> None:
        self.progress.stop()


def report_rows(reports: list[DatasetReport]) -> list[list[str]]:
    """One terminal-table row per dataset."""
    from labship.report import format_bytes, format_duration, transfer_change

    return [
        [
            report.name,
            str(report.files),
            str(report.converted),
            f"{report.rows:,}",
            f"{report.rejected_rows:,}",
            format_bytes(report.csv_bytes),
            format_bytes(report.parquet_bytes),
            f"{report.ratio:.1f}x",
            f"{report.columns_kept}/{report.columns_dropped}",
            format_duration(report.seconds),
            f"{report.megabytes_per_second:.0f}" if report.converted else "-",
            transfer_change(report.csv_bytes, report.parquet_bytes, report.uplink_mbps),
        ]
        for report in reports
    ]


REPORT_HEADERS = [
    "dataset",
    "files",
    "converted",
    "rows",
    "rejected",
    "CSV",
    "Parquet",
    "ratio",
    "columns kept/dropped",
    "time",
    "MB/s",
    "upload",
]


def print_reports(reports: list[DatasetReport], uplink_mbps: float, console: Any = None) -> None:
    """The summary table, then notes (renamed headers, widened types, rejected-row side files)."""
    from labship.report import print_table

    headers = [*REPORT_HEADERS[:-1], f"upload at {uplink_mbps:g} Mbit/s: CSV -> Parquet"]
    print_table("labship compress", headers, report_rows(reports), console)
    for report in reports:
        for note in report.notes:
            print(f"note: {report.name}: {note}")
        if report.rejected_rows:
            files = ", ".join(str(Path(report.target) / name) for name in report.rejected_files)
            print(f"note: {report.name}: {report.rejected_rows} rejected rows written to {files}")


def run(
    dataset: str | None = None,
    source: Path | None = None,
    target: Path | None = None,
    overrides: Overrides = Overrides(),
    report_path: Path | None = None,
    jobs: int | None = None,
    root: Path | None = None,
    progress: bool = True,
) -> list[DatasetReport]:
    """What `invoke compress` does: convert the chosen datasets, print the table, write the JSON report."""
    from labship.config import DEFAULT_UPLINK_MBPS, ConfigError, load_config
    from labship.report import write_json_atomic

    if (source is None) != (target is None):
        raise CompressError(
            "--source and --target go together: give both, or neither to use [tool.labship.datasets]"
        )
    if source is not None and dataset is not None:
        raise CompressError("give either --dataset or --source/--target, not both")
    if overrides.columns and overrides.drop:
        raise CompressError("give either --columns (keep these) or --drop, not both")
    if source is not None and target is not None:
        try:
            config = load_config(root)
            uplink, base = config.uplink_mbps, Path.cwd()
        except ConfigError:
            uplink, base = DEFAULT_UPLINK_MBPS, Path.cwd()
        jobs_list = [
            ("adhoc", base / source, base / target, settings_for(None, overrides, "--source/--target"))
        ]
    else:
        config = load_config(root)
        uplink = config.uplink_mbps
        chosen = [config.dataset(dataset)] if dataset else list(config.datasets.values())
        if not chosen:
            raise CompressError(
                f"{config.pyproject}: no [tool.labship.datasets.NAME] table: declare one (source, target), "
                "or pass --source DIR --target DIR"
            )
        jobs_list = [
            (
                item.name,
                item.source,
                item.target,
                settings_for(item, overrides, f"{config.pyproject} [tool.labship.datasets.{item.name}]"),
            )
            for item in chosen
        ]
    reports = []
    errors = []
    for name, source_dir, target_dir, settings in jobs_list:
        hook = RichProgress() if progress else None
        try:
            reports.append(compress_dataset(name, source_dir, target_dir, settings, uplink, jobs, hook))
        except CompressError as error:
            errors.append(f"dataset {name}: {error}")
    if reports:
        print_reports(reports, uplink)
    if report_path is not None:
        write_json_atomic(
            report_path,
            {"uplink_mbps": uplink, "datasets": [report.as_json() for report in reports], "errors": errors},
        )
    if errors:
        raise CompressError("\n".join(errors))
    return reports
