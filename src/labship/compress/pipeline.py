"""Converting one source: read blocks, parse them in parallel, encode row groups in a writer thread.

The main thread reads and cuts blocks (`reader.read_blocks`); `PARSE_THREADS` blocks are parsed at
once (Arrow releases the GIL); results are taken in block order and buffered into row groups of
`row_group_rows`, which a writer thread encodes while the next blocks parse. The output depends on
the input only, never on thread timing.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from labship.compress.errors import CompressError
from labship.compress.parse import BlockParser, ParsedBlock
from labship.compress.reader import Block, read_blocks, split_header
from labship.compress.schema import Plan, SourceHeader
from labship.compress.settings import Settings
from labship.compress.sinks import (
    FileSink,
    PartitionedSink,
    RejectedRows,
    Sink,
    output_name,
    output_schema,
    rejected_name,
    write_options,
)

PARSE_THREADS = 2  # blocks parsed at once (each single-threaded); the writer thread runs beside them
# Arrow pays a fixed cost per column and block: a 4 MB block of a 10,000-column file holds ~600 rows,
# and the 67 MB benchmark file took 5.1 s in 4 MB blocks, 3.3 s in 16 MB ones (2.9 s in 64 MB).
# Wide files get blocks of at least 1,600 bytes a column (16 MB for 10,000 columns; peak RSS
# unchanged, the 128 K-row group dominates it); files up to 2,600 columns keep the 4 MB blocks.
BLOCK_BYTES_PER_COLUMN = 1600
WIDE_BLOCK_BYTES_MAX = 64 << 20
_DONE = object()


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
    staged: list[tuple[str, str]] = field(default_factory=list)  # (temporary, final), target-relative


def use_lean_allocator() -> None:
    """Streaming allocates and frees a block's worth of memory over and over, from several threads.

    Measured on a 1.6 GB file (peak RSS, same CPU): mimalloc (Arrow's default) ~450 MB, the system
    allocator 389 MB, jemalloc 315 MB. Use jemalloc where pyarrow has it, else the system one."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ or pa.default_memory_pool().backend_name != "mimalloc":
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:
        pa.set_memory_pool(pa.system_memory_pool())


class _Writer:
    """A thread that encodes row groups into the sink; the first failure is kept and re-raised."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if self.failure is not None:
                continue  # drain so the producer never blocks
            try:
                self.sink.write(item)
            except BaseException as error:
                self.failure = error

    def put(self, table: pa.Table) -> None:
        self.queue.put(table)

    def close(self) -> None:
        """Wait for the queued row groups; raise the writer's failure, if any."""
        self.queue.put(_DONE)
        self.thread.join()


class _Pump:
    """Takes parsed blocks in order: rejected rows to the side file, rows buffered into row groups."""

    def __init__(self, writer: _Writer, rejected: RejectedRows, settings: Settings, on_progress: Any) -> None:
        self.writer = writer
        self.rejected = rejected
        self.row_group_rows = settings.row_group_rows
        self.on_progress = on_progress
        self.rows = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def take(self, parsed: ParsedBlock, size: int) -> None:
        for raw in parsed.rejected:
            self.rejected.add(raw)
        self.rows += parsed.table.num_rows
        self.pending.append(parsed.table)
        self.pending_rows += parsed.table.num_rows
        if self.on_progress is not None:
            self.on_progress(size)
        if self.pending_rows >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            # each parsed block has its own dictionaries; a column chunk whose dictionary changes
            # midway falls back to plain encoding: dictionary columns came out 1.6-2x bigger in row
            # groups spanning several blocks (long files, packs) until the chunks shared one
            self.writer.put(pa.concat_tables(self.pending).unify_dictionaries())
            self.pending, self.pending_rows = [], 0


def _record_blocks(source: Path, header: SourceHeader, settings: Settings) -> Iterator[Block]:
    """The blocks after the header; an empty file is an error."""
    wide = min(len(header.names) * BLOCK_BYTES_PER_COLUMN, WIDE_BLOCK_BYTES_MAX)
    blocks = read_blocks(source, block_bytes=max(settings.block_bytes, wide), dialect=header.dialect)
    first = next(blocks, None)
    if first is None:
        raise CompressError(
            f"{source}: the file is empty (no header line); delete it, or use --on-bad-rows skip"
        )
    _, first = split_header(first, source, header.dialect)
    yield first
    yield from blocks


def _feed(
    source: Path, parser: BlockParser, taker: _Pump, settings: Settings, parsers: ThreadPoolExecutor
) -> None:
    """Read one source's blocks and parse them (PARSE_THREADS at once) into `taker`, in order."""
    parsing: deque[tuple[Future[ParsedBlock], int]] = deque()
    try:
        for block in _record_blocks(source, parser.header, settings):
            if taker.writer.failure is not None:
                break
            if len(block):  # an empty block: a header-only file
                parsing.append((parsers.submit(parser.parse, block, threads=False), len(block)))
            while len(parsing) > PARSE_THREADS:
                future, size = parsing.popleft()
                taker.take(future.result(), size)
        while parsing and taker.writer.failure is None:
            future, size = parsing.popleft()
            taker.take(future.result(), size)
    finally:
        for future, _size in parsing:
            future.cancel()


def pump_all(
    members: list[tuple[Path, BlockParser, RejectedRows]],
    sink: Sink,
    settings: Settings,
    on_progress: Callable[[int], None] | None,
) -> list[int]:
    """Read, parse and write sources one after the other into one sink (row groups span sources);
    return the rows each one wrote."""
    use_lean_allocator()
    writer = _Writer(sink)
    taker = _Pump(writer, members[0][2], settings, on_progress)
    rows = []
    try:
        with ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="csv-parse") as parsers:
            for source, parser, rejected in members:
                taker.rejected, before = rejected, taker.rows
                _feed(source, parser, taker, settings, parsers)
                rows.append(taker.rows - before)
                if writer.failure is not None:
                    break
        if writer.failure is None:
            taker.flush()
    finally:
        writer.close()
    if writer.failure is not None:
        raise writer.failure
    return rows


def pump(
    source: Path,
    parser: BlockParser,
    sink: Sink,
    rejected: RejectedRows,
    settings: Settings,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Read, parse (PARSE_THREADS at once) and write one source; return the rows written."""
    return pump_all([(source, parser, rejected)], sink, settings, on_progress)[0]


def make_sink(target: Path, relative: str, plan: Plan, settings: Settings, columns: list[str]) -> Sink:
    """A file sink, or a partitioned one when the settings partition the output."""
    schema = output_schema(plan, columns)
    options = write_options(plan, settings, columns)
    out_name = output_name(relative)
    if settings.partition_by:
        flat_name = out_name.replace("/", "__")
        return PartitionedSink(target, flat_name, schema, settings.partition_by, options)
    return FileSink(target / out_name, schema, options)


class _Progress:
    """A conversion's progress in CSV bytes: counted block by block as they are read, except for .gz
    sources (their blocks count uncompressed bytes): then all of it when the output is committed."""

    def __init__(self, hook: Callable[[int], None] | None, sources: list[Path]) -> None:
        self.hook = hook
        self.reported = 0
        plain = not any(source.name.endswith(".gz") for source in sources)
        self.per_block = self._step if plain and hook is not None else None

    def _step(self, count: int) -> None:
        self.reported += count
        assert self.hook is not None
        self.hook(count)

    def finish(self, total: int) -> None:
        """Report what is left of `total`."""
        if self.hook is not None and total > self.reported:
            self.hook(total - self.reported)


def convert_file(
    source: Path,
    relative: str,
    target: Path,
    header: SourceHeader,
    plan: Plan,
    settings: Settings,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> FileResult:
    """Convert one source; raises CompressError (bad input) or Promotion (the schema must widen)."""
    started = time.perf_counter()
    rejected = RejectedRows(target / rejected_name(relative), list(header.names))
    parser = BlockParser(source, header, plan, settings)
    sink = make_sink(target, relative, plan, settings, parser.columns)
    size = source.stat().st_size
    progress = _Progress(on_progress, [source])
    try:
        rows = pump(source, parser, sink, rejected, settings, progress.per_block)
        outputs = sink.commit(rows, source)
        progress.finish(size)
        side = rejected.finish()
    except BaseException:
        sink.abandon()
        rejected.abandon()
        raise
    return FileResult(
        source=relative,
        outputs=[final.relative_to(target).as_posix() for _, final in outputs],
        rows=rows,
        rejected=rejected.count,
        csv_bytes=size,
        parquet_bytes=sum(staged.stat().st_size for staged, _ in outputs),
        seconds=time.perf_counter() - started,
        staged=[
            (staged.relative_to(target).as_posix(), final.relative_to(target).as_posix())
            for staged, final in [*outputs, *side]
        ],
    )


def _shares(total: int | float, weights: list[int]) -> list[int | float]:
    """`total` split in proportion to `weights` (integers sum exactly to an integer total)."""
    whole = sum(weights) or 1
    if isinstance(total, int):
        cuts = [total * sum(weights[: index + 1]) // whole for index in range(len(weights))]
        return [cut - previous for cut, previous in zip(cuts, [0, *cuts[:-1]], strict=True)]
    return [total * weight / whole for weight in weights]


def convert_pack(
    members: list[tuple[Path, str, SourceHeader]],
    name: str,
    target: Path,
    plan: Plan,
    settings: Settings,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> list[FileResult]:
    """Convert several sources, in order, into one Parquet file `name` (the packed layout); one
    result per source, the output's bytes and time shared in proportion to their CSV bytes."""
    started = time.perf_counter()
    parsers = [BlockParser(source, header, plan, settings) for source, _rel, header in members]
    rejected = [
        RejectedRows(target / rejected_name(relative), list(header.names))
        for _src, relative, header in members
    ]
    sink = FileSink(
        target / name,
        output_schema(plan, parsers[0].columns),
        write_options(plan, settings, parsers[0].columns),
    )
    sizes = [source.stat().st_size for source, _rel, _header in members]
    progress = _Progress(on_progress, [source for source, _rel, _header in members])
    try:
        rows = pump_all(
            [
                (source, parser, side)
                for (source, _rel, _h), parser, side in zip(members, parsers, rejected, strict=True)
            ],
            sink,
            settings,
            progress.per_block,
        )
        outputs = sink.commit(sum(rows), target / name)
        progress.finish(sum(sizes))
        sides = [side.finish() for side in rejected]
    except BaseException:
        sink.abandon()
        for side in rejected:
            side.abandon()
        raise
    [(staged, final)] = outputs
    parquet = _shares(staged.stat().st_size, sizes)
    seconds = _shares(time.perf_counter() - started, sizes)
    return [
        FileResult(
            source=relative,
            outputs=[name],
            rows=count,
            rejected=side.count,
            csv_bytes=size,
            parquet_bytes=int(parquet_bytes),
            seconds=float(spent),
            staged=[
                (a.relative_to(target).as_posix(), b.relative_to(target).as_posix())
                for a, b in ([(staged, final)] if index == 0 else []) + list(side_pairs)
            ],
        )
        for index, ((_src, relative, _h), count, side, side_pairs, size, parquet_bytes, spent) in enumerate(
            zip(members, rows, rejected, sides, sizes, parquet, seconds, strict=True)
        )
    ]
