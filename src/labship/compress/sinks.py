"""Where parsed rows go: one Parquet file per source, hive partitions, and the rejected-rows side file.

Every sink writes under a temporary name of the one labship pattern (`.<name>.<attempt>.labship-tmp`,
`labship._fs.TEMP_SUFFIX`, ignored by the generated `.dvcignore`), unique per attempt so a retried
cluster task never shares a file with a zombie attempt; `commit` closes and verifies the row count
and returns (temporary, final) pairs: the dataset publishes them (renames into place, or copies on
object storage: `labship.compress.storage`) only once every file of the run succeeded, so a failed
run leaves the previous outputs intact. `abandon` removes the temporary. Nothing under a final name
is ever partial.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import IO, Any, Protocol
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from labship.compress import encodings, storage
from labship.compress.errors import CompressError
from labship.compress.schema import Plan
from labship.compress.settings import Settings
from labship.compress.storage import Location

REJECTED_DIR = "_rejected"
MAX_PARTITIONS = 1000


def temporary(path: Location) -> Location:
    """A fresh in-progress name of `path` (hidden, unique to this attempt, labship's temporary suffix)."""
    return storage.attempt_temporary(path, uuid.uuid4().hex[:12])


def output_name(relative: str) -> str:
    """`a/b.csv` and `a/b.csv.gz` -> `a/b.parquet`."""
    stem = relative[: -len(".csv.gz")] if relative.endswith(".csv.gz") else relative[: -len(".csv")]
    return f"{stem}.parquet"


def rejected_name(relative: str) -> str:
    """The side file of `relative`'s rejected rows, relative to the target."""
    return f"{REJECTED_DIR}/{output_name(relative)[: -len('.parquet')]}.csv"


def write_options(plan: Plan, settings: Settings, columns: list[str]) -> dict[str, Any]:
    """ParquetWriter options: zstd 3, one data page per column chunk, delta-encoded timestamps
    (`encodings.choose` picks each column's encoding on the first row group of a large output)."""
    timestamps = [name for name in columns if pa.types.is_timestamp(plan.types[name])]
    codec = "none" if settings.codec == "none" else settings.codec
    level = settings.level if settings.level is not None else (3 if codec == "zstd" else None)
    stamped = set(timestamps)
    return {
        "compression": codec,
        "compression_level": level,
        "use_dictionary": [name for name in columns if name not in stamped],
        "column_encoding": dict.fromkeys(timestamps, "DELTA_BINARY_PACKED") or None,
        "data_page_size": 64 << 20,
        "max_rows_per_page": settings.row_group_rows * 2,
        "dictionary_pagesize_limit": 4 << 20,
        "write_statistics": True,
    }


def output_schema(plan: Plan, columns: list[str]) -> pa.Schema:
    """The file schema; a column empty in the whole dataset is stored as string (readable everywhere)."""
    return pa.schema(
        [(name, pa.string() if pa.types.is_null(plan.types[name]) else plan.types[name]) for name in columns]
    )


class Sink(Protocol):
    """Receives row groups of one source; `commit` makes them visible, `abandon` removes them."""

    rows: int

    def write(self, table: pa.Table) -> None: ...

    def commit(self, expected_rows: int, source: Location) -> list[tuple[Location, Location]]: ...

    def abandon(self) -> None: ...


def _verify(path: Location, expected_rows: int, source: Location) -> None:
    written = storage.parquet_metadata(path).num_rows
    if written != expected_rows:
        raise CompressError(f"{source}: wrote {written} rows but read {expected_rows}; output discarded")


class FileSink:
    """One Parquet file written under a temporary name and renamed once its row count is verified.

    `staged=True` leaves the verified file under its temporary name (`staged_path`) for the caller
    to rename once every file of the run is done."""

    def __init__(self, path: Location, schema: pa.Schema, options: dict[str, Any]) -> None:
        self.path = path
        self.schema = schema
        self.options = options
        self.temporary = temporary(path)
        storage.make_parent(path)
        self.writer: pq.ParquetWriter | None = None  # opened by the first row group (or commit)
        self.rows = 0

    def _open(self, options: dict[str, Any]) -> pq.ParquetWriter:
        where, filesystem = storage.parquet_destination(self.temporary)
        self.writer = pq.ParquetWriter(where, self.schema, filesystem=filesystem, **options)
        return self.writer

    def write(self, table: pa.Table) -> None:
        """Append one row group (the first one also chooses the column encodings)."""
        if not table.schema.equals(self.schema):
            table = table.cast(self.schema)
        writer = self.writer or self._open(encodings.choose(table, self.options))
        writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows

    def commit(self, expected_rows: int, source: Location) -> list[tuple[Location, Location]]:
        """Close and verify the row count; the (temporary, final) pair to publish."""
        (self.writer or self._open(self.options)).close()
        self.writer = None
        _verify(self.temporary, expected_rows, source)
        return [(self.temporary, self.path)]

    def abandon(self) -> None:
        """Remove the temporary."""
        if self.writer is not None:
            with contextlib.suppress(Exception):  # the file is deleted anyway
                self.writer.close()
        storage.delete(self.temporary)


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


class PartitionedSink:
    """Hive-style output `COL=value/<name>.parquet`: one writer per partition value of this source."""

    def __init__(
        self, root: Location, file_name: str, schema: pa.Schema, by: tuple[str, ...], options: dict[str, Any]
    ) -> None:
        self.root = root
        self.file_name = file_name
        self.by = by
        self.schema = pa.schema([schema.field(name) for name in schema.names if name not in by])
        self.options = options
        self.sinks: dict[tuple[Any, ...], FileSink] = {}
        self.rows = 0

    def _mask(self, table: pa.Table, values: tuple[Any, ...]) -> Any:
        mask = None
        for name, value in zip(self.by, values, strict=True):
            column = table.column(name)
            match = pc.is_null(column) if value is None else pc.fill_null(pc.equal(column, value), False)
            mask = match if mask is None else pc.and_(mask, match)
        return mask

    def _sink(self, values: tuple[Any, ...]) -> FileSink:
        sink = self.sinks.get(values)
        if sink is None:
            if len(self.sinks) >= MAX_PARTITIONS:
                raise CompressError(
                    f"--partition-by {','.join(self.by)}: more than {MAX_PARTITIONS} partitions; "
                    "partition by a column with fewer distinct values"
                )
            path = self.root / _partition_dir(self.by, values) / self.file_name
            sink = self.sinks[values] = FileSink(path, self.schema, self.options)
        return sink

    def write(self, table: pa.Table) -> None:
        """Split the rows by partition value and append each part to its file."""
        keys = table.select(list(self.by)).group_by(list(self.by), use_threads=False).aggregate([])
        for key in keys.to_pylist():
            values = tuple(key[name] for name in self.by)
            self._sink(values).write(table.filter(self._mask(table, values)).drop_columns(list(self.by)))
        self.rows += table.num_rows

    def commit(self, expected_rows: int, source: Location) -> list[tuple[Location, Location]]:
        """Commit every partition file."""
        if self.rows != expected_rows:
            raise CompressError(f"{source}: partitioned {self.rows} rows but read {expected_rows}")
        outputs = []
        for sink in self.sinks.values():
            outputs += sink.commit(sink.rows, source)
        return outputs

    def abandon(self) -> None:
        """Remove every partition's temporary."""
        for sink in self.sinks.values():
            sink.abandon()


def _csv_cell(value: str) -> str:
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\r\n') else value


class RejectedRows:
    """Side file of rows set aside by `--on-bad-rows skip`: the header, then each row as read."""

    def __init__(self, path: Location, header: list[str]) -> None:
        self.path = path
        self.header = header
        self.temporary = temporary(path)
        self.handle: IO[bytes] | None = None
        self.count = 0

    def add(self, raw: bytes) -> None:
        """Append one raw row."""
        if self.handle is None:
            storage.make_parent(self.path)
            self.handle = storage.open_write(self.temporary)
            self.handle.write((",".join(_csv_cell(name) for name in self.header) + "\n").encode())
        self.handle.write(raw.rstrip(b"\r\n") + b"\n")
        self.count += 1

    def finish(self) -> list[tuple[Location, Location]]:
        """Close; the (temporary, final) pair to publish, if any row was set aside."""
        if self.handle is None:
            return []
        self.handle.close()
        self.handle = None
        return [(self.temporary, self.path)]

    def abandon(self) -> None:
        """Remove the temporary."""
        if self.handle is not None:
            self.handle.close()
        storage.delete(self.temporary)
