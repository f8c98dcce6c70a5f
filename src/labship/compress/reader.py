"""Reading a source as blocks of whole records, in the file's dialect.

A file is read in `block_bytes` pieces; each piece is cut after the last record terminator that is
not inside a quoted field, and the rest is carried into the next piece, so every block holds whole
records and can be parsed on its own (in parallel). Finding that terminator:

- no quote character in the piece: the last newline (one `rfind`);
- quotes, all at field boundaries (the usual case, checked vectorised by `parity_holds`): the last
  newline with an even number of quotes before it (`count`, C speed);
- a stray quote (`12" long`, `12"`: a literal character, as Python's csv module and Arrow read it),
  backslash escapes, or parity that finds no terminator: an exact scan with a regular expression
  of the dialect's record grammar (~10 MB/s, so only for such pieces).

A quoted field that is really never closed is an error naming the line it starts on. The dialect
(`labship.compress.dialect.Dialect`) decides the delimiter, quote, record terminator, leading lines
to skip and whether the first record is a header.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

from labship.compress.dialect import BOM, Dialect
from labship.compress.errors import CompressError, printable
from labship.compress.storage import Location, open_read

# a record longer than this is almost certainly an unterminated quote; bounding it bounds memory
MAX_RECORD_BYTES = 64 << 20
ANY_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)")


@dataclass
class Block:
    """Whole records of one source: `buffer[start:end]`, the 1-based line they start on, quotes or not."""

    buffer: bytes | bytearray
    start: int
    end: int
    first_line: int
    has_quotes: bool | None = None  # computed when not given; the reader knows it already
    newlines: int | None = None
    newline: bytes = b"\n"
    exact: bool = True  # False when line counts cannot be trusted (bare-CR files with CRLF too)

    def __post_init__(self) -> None:
        if self.has_quotes is None:
            self.has_quotes = self.find(b'"') >= 0

    def __len__(self) -> int:
        return self.end - self.start

    def find(self, needle: bytes) -> int:
        """Index of `needle` inside the block, or -1."""
        return self.buffer.find(needle, self.start, self.end)

    def count(self, needle: bytes) -> int:
        """Occurrences of `needle` inside the block."""
        return self.buffer.count(needle, self.start, self.end)

    def arrow(self) -> pa.Buffer:
        """The records as an Arrow buffer, without copying them."""
        return pa.py_buffer(self.buffer)[self.start : self.end]

    def has_empty_lines(self) -> bool:
        """Empty lines are skipped by the parser, so they do not count as records."""
        nl = self.newline
        return self.find(nl + nl) >= 0 or self.find(b"\n\r\n") >= 0 or self.buffer[self.start] in b"\r\n"

    def line_count(self) -> int | None:
        """Number of lines (records plus empty lines), or None when quotes make lines differ from records."""
        if self.has_quotes or not len(self) or not self.exact:
            return None
        ends_with_newline = self.buffer[self.end - 1] == self.newline[0]
        newlines = self.count(self.newline) if self.newlines is None else self.newlines
        return newlines + (0 if ends_with_newline else 1)


class _OwningGzip(gzip.GzipFile):
    """A gzip reader over an opened stream that closes the stream too (as `gzip.open(path)` does)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self.raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.raw.close()


def open_bytes(path: Location) -> io.BufferedIOBase:
    """The file's bytes, decompressed for `.gz`; OS errors name the path (local or `s3://`)."""
    if not isinstance(path, Path):
        try:
            raw = open_read(path)
        except OSError as error:  # it names the object already
            raise CompressError(str(error)) from None
        return _OwningGzip(raw) if path.name.endswith(".gz") else raw  # type: ignore[return-value]
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except OSError as error:
        raise CompressError(f"{path}: cannot open: {error.strerror or error}") from error


@functools.lru_cache(maxsize=16)
def _record(dialect: Dialect) -> bytes:
    """The dialect's grammar of one record, as a regular expression (possessive: never backtracks)."""
    delimiter = re.escape(dialect.delimiter.encode())
    stop = rb"\r\n" + re.escape(dialect.delimiter.encode())
    if not dialect.quote:
        field = rb"[^" + stop + rb"]*+"
    else:
        quote = re.escape(dialect.quote.encode())
        if dialect.escape == "backslash":
            inner = rb"[^" + quote + rb"\\]*+(?:\\[\s\S][^" + quote + rb"\\]*+)*+"
        else:
            inner = rb"[^" + quote + rb"]*+(?:" + quote + quote + rb"[^" + quote + rb"]*+)*+"
        quoted = quote + inner + quote + rb"[^" + stop + rb"]*+"
        unquoted = rb"[^" + quote + stop + rb"][^" + stop + rb"]*+"
        field = rb"(?:" + quoted + rb"|" + unquoted + rb")?+"
    return field + rb"(?:" + delimiter + field + rb")*+(?:\r\n|\n|\r)"


@functools.lru_cache(maxsize=16)
def record_grammar(dialect: Dialect) -> re.Pattern[bytes]:
    """A regular expression matching as many whole records as possible from a record boundary."""
    return re.compile(rb"(?:" + _record(dialect) + rb")*+")


@functools.lru_cache(maxsize=16)
def one_record(dialect: Dialect) -> re.Pattern[bytes]:
    """A regular expression matching one whole record."""
    return re.compile(_record(dialect))


def _parity_cut(buffer: bytes | bytearray, end: int, newline: bytes, quote: bytes) -> int:
    """Just past the last terminator before `end` with an even number of quotes before it, or -1."""
    terminator = buffer.rfind(newline, 0, end)
    quotes = buffer.count(quote, 0, terminator) if terminator >= 0 else 0
    while terminator >= 0:
        if quotes % 2 == 0:
            return terminator + 1
        previous = buffer.rfind(newline, 0, terminator)
        quotes -= buffer.count(quote, previous + 1, terminator)
        terminator = previous
    return -1


def parity_holds(buffer: bytes | bytearray, end: int, dialect: Dialect) -> bool:
    """Whether counting quotes reads `buffer[:end]` as the record grammar does (vectorised).

    Counting pairs quotes in order: the 1st, 3rd, ... open a field, the 2nd, 4th, ... close it.
    That agrees with the grammar when every opening quote starts a field (after a delimiter, a
    line end, the start, or a quote: `""`) and every closing one ends it (before a delimiter, a
    line end, the end, or a quote). A stray quote (`12" long`, `12"`) breaks one of the two.
    Costs about half a parse of the block on quote-dense data (numpy), nothing without quotes."""
    if end < 2:
        return True
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with pandas/pyarrow extras almost always
        return _parity_holds_arrow(buffer, end, dialect)
    data = np.frombuffer(buffer, np.uint8, end)
    quote = ord(dialect.quote)
    positions = np.flatnonzero(data == quote)
    if not len(positions):
        return True
    boundary = np.zeros(256, bool)
    boundary[[ord(dialect.delimiter), 10, 13, quote]] = True
    opening, closing = positions[0::2], positions[1::2]
    opens = boundary[data[np.maximum(opening - 1, 0)]] | (opening == 0)
    closes = boundary[data[np.minimum(closing + 1, end - 1)]] | (closing == end - 1)
    return bool(opens.all() and closes.all())


def _parity_holds_arrow(buffer: bytes | bytearray, end: int, dialect: Dialect) -> bool:
    data = pa.Array.from_buffers(pa.uint8(), end, [None, pa.py_buffer(buffer)])
    quote = ord(dialect.quote)
    positions = pc.indices_nonzero(pc.equal(data, pa.scalar(quote, pa.uint8())))
    count = len(positions)
    if count == 0:
        return True
    boundary = pa.array([ord(dialect.delimiter), 10, 13, quote], pa.uint8())
    pairs = pa.FixedSizeListArray.from_arrays(positions.slice(0, count - count % 2), 2)
    opening = pa.concat_arrays([pc.list_element(pairs, 0), positions.slice(count - count % 2)])
    closing = pc.list_element(pairs, 1)
    before = pc.take(data, pc.max_element_wise(pc.subtract(opening, 1), 0))
    after = pc.take(data, pc.min_element_wise(pc.add(closing, 1), end - 1))
    opens_ok = pc.or_(pc.is_in(before, boundary), pc.equal(opening, 0))
    closes_ok = pc.or_(pc.is_in(after, boundary), pc.equal(closing, end - 1))
    return bool(pc.all(opens_ok).as_py() is not False and pc.all(closes_ok).as_py() is not False)


def safe_cut(
    buffer: bytes | bytearray,
    end: int,
    dialect: Dialect,
    quoted: bool | None = None,
    *,
    trusted: bool = False,
) -> int:
    """Index just past the last record terminator before `end` outside quotes, or -1 if there is none.

    `trusted`: parity held on the file's first block, so it is not checked again (it costs about
    as much as parsing); a parity cut in the first half of the piece is checked all the same."""
    newline = dialect.newline
    if quoted is None:
        quoted = bool(dialect.quote) and buffer.find(dialect.quote.encode(), 0, end) >= 0
    if not quoted:
        terminator = buffer.rfind(newline, 0, end)
        return terminator + 1 if terminator >= 0 else -1
    if dialect.escape == "double":
        cut = _parity_cut(buffer, end, newline, dialect.quote.encode())
        if cut > 0 and parity_holds(buffer, end, dialect):
            return cut
    cut = record_grammar(dialect).match(buffer, 0, end).end()
    return cut if cut > 0 else -1


def _unclosed_line(buffer: bytes | bytearray, first_line: int, dialect: Dialect) -> int:
    """The line of the first record that does not end (where the never-closed quote opens)."""
    complete = record_grammar(dialect).match(buffer).end()
    return first_line + _lines_in(buffer, 0, complete, dialect)


def _lines_in(buffer: bytes | bytearray, start: int, end: int, dialect: Dialect) -> int:
    return buffer.count(dialect.newline, start, end)


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
    except (EOFError, zlib.error) as error:
        intact = line - 1 + pending.count(b"\n") + sum(piece.count(b"\n") for piece in pieces)
        raise CompressError(
            f"{path}: the compressed file is truncated or damaged after line {intact}: {error}; "
            "re-create or re-download it (nothing was written for this file)"
        ) from error
    except OSError as error:
        if path.name.endswith(".gz"):
            intact = line - 1 + pending.count(b"\n") + sum(piece.count(b"\n") for piece in pieces)
            raise CompressError(
                f"{path}: the compressed file is truncated or damaged after line {intact}: {error}; "
                "re-create or re-download it (nothing was written for this file)"
            ) from error
        raise CompressError(f"{path}: cannot read: {error.strerror or error}") from error
    return b"".join(pieces) if len(pieces) != 1 else pieces[0]


def _read_after(
    stream: io.BufferedIOBase, size: int, path: Path, line: int, pending: bytes
) -> bytes | bytearray:
    """`pending` followed by up to `size` more bytes of the stream (the result is shorter at the end).

    Plain files are read straight into place (one copy fewer: the GIL is held for every copy)."""
    if not path.name.endswith(".gz"):
        buffer = bytearray(len(pending) + size)
        buffer[: len(pending)] = pending
        try:
            got = stream.readinto(memoryview(buffer)[len(pending) :])  # type: ignore[attr-defined]
        except OSError as error:
            raise CompressError(f"{path}: cannot read: {error.strerror or error}") from error
        del buffer[len(pending) + got :]
        return buffer
    return pending + _read_checked(stream, size, path, line, pending)


def skip_leading(buffer: bytes | bytearray, lines: int) -> int:
    """Index just past the first `lines` lines of `buffer` (any line ending)."""
    position = 0
    for _ in range(lines):
        match = ANY_LINE.match(buffer, position)
        if match is None:
            return len(buffer)
        position = match.end()
    return position


def _last_block(buffer: bytes | bytearray, line: int, path: Path, dialect: Dialect) -> Block | None:
    """The end of the file: the rest must be whole records (the last may lack its terminator)."""
    if not buffer:
        return None
    if dialect.quote and buffer.find(dialect.quote.encode()) >= 0:
        closed = bytes(buffer) + dialect.newline
        if safe_cut(closed, len(closed), dialect, True) != len(closed):
            raise CompressError(
                f"{path}: line {_unclosed_line(closed, line, dialect)}: a quoted field is never "
                f'closed (unterminated quote); fix the quote or escape it as ""'
            )
    return Block(buffer, 0, len(buffer), line, newline=dialect.newline, exact=dialect.line_endings != "mixed")


def read_blocks(path: Path, *, block_bytes: int, dialect: Dialect) -> Iterator[Block]:
    """Yield the file (BOM and leading lines skipped, header included) as blocks of whole records."""
    line = 1
    pending = b""
    first = True
    quote = dialect.quote.encode() if dialect.quote else None
    exact = dialect.line_endings != "mixed"
    with open_bytes(path) as stream:
        while True:
            buffer = _read_after(stream, block_bytes, path, line, pending)
            if first:
                first = False
                if buffer.startswith(BOM):
                    buffer = buffer[len(BOM) :]
                skipped = skip_leading(buffer, dialect.skip_lines)
                line += dialect.skip_lines
                buffer = buffer[skipped:]
                pending = b""
            if len(buffer) == len(pending):
                last = _last_block(buffer, line, path, dialect)
                if last is not None:
                    yield last
                return
            first_quote = buffer.find(quote) if quote else -1
            cut = safe_cut(buffer, len(buffer), dialect, first_quote >= 0)
            if cut < 0:
                if len(buffer) > MAX_RECORD_BYTES:
                    raise CompressError(
                        f"{path}: line {_unclosed_line(buffer, line, dialect)}: a record longer than "
                        f"{MAX_RECORD_BYTES >> 20} MB: most likely an unterminated quote; fix the quote"
                    )
                pending = bytes(buffer)
                continue
            newlines = buffer.count(dialect.newline, 0, cut)
            yield Block(
                buffer,
                0,
                cut,
                line,
                has_quotes=0 <= first_quote < cut,
                newlines=newlines,
                newline=dialect.newline,
                exact=exact,
            )
            line += newlines
            pending = bytes(buffer[cut:])


def split_header(block: Block, path: Path, dialect: Dialect) -> tuple[list[str], Block]:
    """The column names of the first record (or none for a headerless file), and the rest of the block."""
    if not dialect.header:
        return [], block
    buffer = block.buffer
    match = one_record(dialect).match(buffer, block.start, block.end)
    end = match.end() if match else block.end
    header_bytes = bytes(buffer[block.start : end])
    try:
        header_text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CompressError(
            f"{path}: line {block.first_line}: the header is not valid UTF-8 ({error}); "
            "save the file as UTF-8"
        ) from error
    reader = csv.reader(
        io.StringIO(header_text.rstrip("\r\n"), newline=""),
        delimiter=dialect.delimiter,
        quotechar=dialect.quote or None,
        quoting=csv.QUOTE_MINIMAL if dialect.quote else csv.QUOTE_NONE,
        doublequote=dialect.escape == "double",
        escapechar="\\" if dialect.escape == "backslash" else None,
        strict=False,
    )
    names = next(reader, [])
    lines = header_bytes.count(dialect.newline)
    rest = Block(buffer, end, block.end, block.first_line + lines, newline=dialect.newline, exact=block.exact)
    return names, rest


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
            notes.append(
                f"header name {printable(name)!r} repeats (column {index}): named it {name}_{suffix!r}"
            )
            name = f"{name}_{suffix}"
        seen.add(name)
        cleaned.append(name)
    return cleaned, notes


def generated_names(count: int) -> list[str]:
    """Column names of a headerless file: column_1 ... column_N."""
    return [f"column_{index}" for index in range(1, count + 1)]


def read_head(path: Path, size: int = 64 << 10) -> bytes:
    """The first `size` bytes of the (decompressed) file."""
    with open_bytes(path) as stream:
        try:
            return stream.read(size)
        except (EOFError, zlib.error, OSError):
            return b""  # a damaged .gz: its conversion stops with the line where it breaks


def read_header(path: Path, dialect: Dialect) -> tuple[list[str], list[str]]:
    """Cleaned column names of a source and notes on renames; raises on a file with no record."""
    for block in read_blocks(path, block_bytes=64 << 10, dialect=dialect):
        names, rest = split_header(block, path, dialect)
        if not dialect.header:
            count = _first_record_width(rest, path, dialect)
            if count:
                return generated_names(count), []
        elif names:
            return clean_names(names)
        break
    raise CompressError(f"{path}: the file is empty (no header line); delete it, or use --on-bad-rows skip")


def _first_record_width(block: Block, path: Path, dialect: Dialect) -> int:
    names, _ = split_header(block, path, replace(dialect, header=True))
    return len(names)
