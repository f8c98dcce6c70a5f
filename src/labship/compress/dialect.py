"""How a CSV file is written, detected from its first bytes: delimiter, quoting, line endings,
header, leading lines, BOM; or a refusal that names the setting deciding it.

`Dialect` is what the reader and the parser consume (`reader.read_blocks`, `Dialect.parse_options`);
`DialectSettings` is what a user may fix per dataset (`[tool.labship.datasets.X]`: `delimiter`,
`quote`, `escape`, `header`, `skip_lines`, `comment`) or per run (flags of the ad-hoc form);
`detect(head, settings, ...)` turns the first bytes of one file (64 KB is plenty; `at_eof` says
whether they are the whole file) plus those settings into the file's `Dialect`, with the evidence
for each choice. Every property a setting fixes is taken as given and not detected.

Precision over recall: when the evidence allows two readings, `detect` raises `DialectError`
listing the candidates and the setting that decides, instead of guessing. In particular (the peers'
mistakes seen on real files): tokens such as `f` or `YES` say nothing about a header; a ragged
file keeps the delimiter that splits most of its rows (the reader then refuses the odd rows by line
number) and is never read as one column of raw lines; leading lines are skipped only when they are
blank, start with the comment prefix, or are a preamble above a table whose first row is a header.

The algorithm:
1. Byte-level checks: UTF-8 BOM (stripped and recorded), UTF-16 BOM / NUL bytes / gzip magic
   (refused), line endings counted as CRLF, bare CR and bare LF (one kind or "mixed"; records are
   cut after CR when bare CRs are present, after LF otherwise).
2. For each candidate delimiter (`,` `;` `|` tab) the text is split into records with Python's
   csv module (which reads a stray quote inside an unquoted field literally, like the reader); the
   table width is the most common field count in the lower half of the rows, the table starts at
   the first row of that width; blank and comment rows never count. A candidate is plausible when
   the width is at least 2.
3. A single candidate whose rows all have the table width wins (when several do, the one that
   also splits the first row, e.g. `;` over decimal commas); several consistent candidates, or none
   consistent and several plausible, is ambiguous. Without a plausible candidate the file has one
   column.
4. Header: each column whose data values (below the first table row) all look typed (integer,
   decimal, ISO or US date) votes: a first-row value of that type says "data", anything else says
   "name". All-text tables have a header when their first row is distinct, non-blank and none of
   its values reappears in its column below. Mixed votes, and increasing years above numbers, are
   ambiguous.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv

from labship.compress.errors import CompressError

BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", ";", "|", "\t")
QUOTES = ('"', "'")
ESCAPES = ("double", "backslash")
COMMENT = "#"
# 64 KB holds hundreds of rows of any ordinary table; wider rows still give a few complete lines
SNIFF_BYTES = 64 << 10
# the header vote uses at most this many data rows (the rest of the head adds time, not evidence)
HEADER_ROWS = 200
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "--", "?", "#n/a", "nil"})
KINDS = {
    "integer": re.compile(r"[+-]?\d+"),
    # one way to match any text (no `\d+\d*` split): a failing match backtracks in linear time
    "decimal": re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?"),
    "date": re.compile(
        r"(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}\.\d{1,2}\.\d{4})"
        r"([ T]\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?( ?(Z|[+-]\d{2}:?\d{2}|[AaPp][Mm]))?)?"
    ),
}
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "|": "pipe", "\t": "tab"}


class DialectError(CompressError):
    """The dialect of a file cannot be told (or is unsupported); the message lists what decides."""


@dataclass(frozen=True, kw_only=True)
class DialectSettings:
    """Dialect properties a user fixed (None: detect); keys as in `[tool.labship.datasets.X]`."""

    delimiter: str | None = None
    quote: str | None = None  # '"', "'" or "" (no quoting)
    escape: str | None = None  # "double" (`""` inside quotes) or "backslash" (`\"`)
    header: bool | None = None
    skip_lines: int | None = None  # physical lines before the header (or first data row)
    comment: str | None = None  # leading lines starting with it are skipped; "" turns detection off

    def check(self, origin: str) -> None:
        """Refuse settings the reader cannot honour, naming the key."""
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            shown = ", ".join(repr(item) for item in DELIMITERS)
            raise DialectError(f"{origin}: delimiter {self.delimiter!r}: use one of {shown}", exit_code=2)
        if self.quote is not None and (len(self.quote) > 1 or self.quote in ("\r", "\n")):
            raise DialectError(
                f"{origin}: quote {self.quote!r}: use one character, or '' for none", exit_code=2
            )
        if self.quote and self.delimiter is not None and self.quote == self.delimiter:
            raise DialectError(
                f"{origin}: quote and delimiter are both {self.quote!r}; pick two characters", exit_code=2
            )
        if self.escape is not None and self.escape not in ESCAPES:
            raise DialectError(
                f"{origin}: escape {self.escape!r}: use one of {', '.join(ESCAPES)}", exit_code=2
            )
        if self.skip_lines is not None and self.skip_lines < 0:
            raise DialectError(f"{origin}: skip-lines {self.skip_lines}: use 0 or more", exit_code=2)
        if self.comment is not None and len(self.comment) > 1:
            raise DialectError(
                f"{origin}: comment {self.comment!r}: use one character, or '' for none", exit_code=2
            )

    def overridden_by(self, other: DialectSettings) -> DialectSettings:
        """These settings with every property `other` sets replaced."""
        chosen = {item.name: getattr(other, item.name) for item in fields(other)}
        return replace(self, **{name: value for name, value in chosen.items() if value is not None})

    def chosen(self) -> dict[str, Any]:
        """The settings that were given (for the report)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """How one file is written; everything the reader and parser need to read it right."""

    delimiter: str = ","
    quote: str = '"'  # "" for no quoting
    escape: str = "double"
    newline: bytes = b"\n"  # the byte records are cut after: b"\n" (LF, CRLF) or b"\r" (bare CR)
    line_endings: str = "LF"  # as found, for the report: LF, CRLF, CR, mixed, none
    header: bool = True
    skip_lines: int = 0  # physical lines before the header (blank, comment and preamble lines)
    comment: str | None = None
    bom: bool = False
    columns: int = 0
    names: tuple[str, ...] = ()  # header names as read (or column_1.. without a header)
    explicit: tuple[str, ...] = ()  # properties taken from settings, not detected
    evidence: tuple[str, ...] = field(default=(), compare=False)

    def parse_options(self, *, newlines_in_values: bool, invalid_row_handler: Any = None) -> Any:
        """Arrow's parse options for this dialect."""
        return pacsv.ParseOptions(
            delimiter=self.delimiter,
            quote_char=self.quote or False,
            double_quote=self.escape == "double",
            escape_char="\\" if self.escape == "backslash" else False,
            newlines_in_values=newlines_in_values,
            invalid_row_handler=invalid_row_handler,
        )

    def describe(self) -> dict[str, Any]:
        """JSON-friendly form for the report."""
        described = asdict(self)
        described["newline"] = self.newline.decode()
        described["delimiter_name"] = DELIMITER_NAMES.get(self.delimiter, self.delimiter)
        for key in ("names", "explicit", "evidence"):
            described[key] = list(described[key])
        return described

    def summary(self) -> str:
        """One short line for the terminal report."""
        parts = [DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter)), self.line_endings]
        parts.append("header" if self.header else "no header")
        if self.skip_lines:
            parts.append(f"skip {self.skip_lines}")
        if self.bom:
            parts.append("BOM")
        if self.escape == "backslash":
            parts.append("backslash escapes")
        if self.quote != '"':
            parts.append(f"quote {self.quote!r}" if self.quote else "no quoting")
        return ", ".join(parts)


@dataclass
class _Row:
    line: int  # 1-based physical line (after skipped bytes) where the record starts
    fields: list[str]
    kind: str  # "blank", "comment" or "row"


@dataclass
class _Candidate:
    delimiter: str
    rows: list[_Row]
    width: int = 0
    start: int = 0  # index in rows of the first table row
    consistent: bool = False
    share: float = 0.0  # share of table rows with the table width

    @property
    def table(self) -> list[_Row]:
        return [row for row in self.rows[self.start :] if row.kind == "row"]


def setting_hint(key: str, value: Any, origin: str) -> str:
    """How a user sets `key`: a flag for the ad-hoc form, a TOML line otherwise."""
    name = key.replace("_", "-")
    if origin.startswith("--"):
        if isinstance(value, bool):
            return f"--{name} {'true' if value else 'false'}"
        if key == "delimiter":
            return f"--delimiter {DELIMITER_NAMES.get(value, repr(value))}"
        return f"--{name} {value if isinstance(value, int) else repr(value)}"
    if isinstance(value, bool):
        toml = "true" if value else "false"
    elif isinstance(value, int):
        toml = str(value)
    else:
        toml = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'
    return f"{name} = {toml} in {origin}"


def delimiter_from(text: str) -> str:
    """A delimiter as a user may write it: the character, or comma / semicolon / pipe / tab / \\t."""
    named = {name: char for char, name in DELIMITER_NAMES.items()} | {"\\t": "\t"}
    return named.get(text.strip().lower(), text) if text.strip() else text


def settings_from(values: dict[str, Any]) -> DialectSettings:
    """DialectSettings from plain values (a `[tool.labship.datasets.X]` table or flags)."""
    values = dict(values)
    if isinstance(values.get("delimiter"), str):
        values["delimiter"] = delimiter_from(values["delimiter"])
    return DialectSettings(**values)


def _fail(path: str, line: int | None, problem: str) -> DialectError:
    where = f"{path}: line {line}: " if line else f"{path}: "
    return DialectError(where + problem)


def _check_bytes(head: bytes, path: str) -> None:
    if head.startswith(b"\x1f\x8b"):
        raise _fail(path, None, "this is gzip-compressed data, not text; name it .csv.gz (or decompress it)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(path, None, "the file is UTF-16 (byte-order mark); save it as UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise _fail(
            path, line, "a NUL byte: this is a binary file (or UTF-16 without a BOM); save it as UTF-8 text"
        )


def line_endings(data: bytes | str) -> str:
    """LF, CRLF, CR, mixed or none, from the head of a file."""
    return _ending_counts(data.decode("latin-1") if isinstance(data, bytes) else data)[0]


def _ending_counts(text: str) -> tuple[str, Counter[str]]:
    """The line endings of `text` and the counts behind them."""
    crlf = text.count("\r\n")
    counts = Counter({"CRLF": crlf, "CR": text.count("\r") - crlf, "LF": text.count("\n") - crlf})
    present = [kind for kind in ("LF", "CRLF", "CR") if counts[kind]]
    if not present:
        return "none", counts
    return (present[0] if len(present) == 1 else "mixed"), counts


def _decode(head: bytes, at_eof: bool) -> str:
    """Text for sniffing: a character cut at the end of the head is dropped, bad bytes replaced
    (the reader names the line of invalid UTF-8; the sniffer only needs the structure)."""
    if not at_eof:
        for cut in range(1, 4):
            if len(head) >= cut and head[-cut] & 0xC0 == 0xC0:
                head = head[:-cut]  # a lead byte whose continuation was cut off
                break
    return head.decode("utf-8", errors="replace")


def _complete(text: str, at_eof: bool) -> str:
    """Drop a last line the head cut off (and a CR that may be half a CRLF)."""
    if at_eof:
        return text
    end = max(text.rfind("\n"), text.rfind("\r"))
    text = text[: end + 1]
    if text.endswith("\r"):
        text = text[:-1]  # may be the first half of CRLF: the line it ends is kept only without it
        end = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: end + 1]
    return text


def _csv_options(delimiter: str, quote: str, escape: str) -> dict[str, Any]:
    if not quote:
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE, "escapechar": None}
    if escape == "backslash":
        return {"delimiter": delimiter, "quotechar": quote, "doublequote": False, "escapechar": "\\"}
    return {"delimiter": delimiter, "quotechar": quote, "doublequote": True}


def _rows(text: str, delimiter: str, quote: str, escape: str, comment: str | None) -> list[_Row]:
    """Records of `text` with the physical line each starts on; blank and comment lines marked."""
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, strict=False, **_csv_options(delimiter, quote, escape))
    rows: list[_Row] = []
    line = 1
    try:
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                kind = "blank"
            elif comment and fields[0].lstrip().startswith(comment):
                kind = "comment"
            else:
                kind = "row"
            rows.append(_Row(line, fields, kind))
            line = reader.line_num + 1
    except csv.Error:
        pass  # a record the head cut inside a quoted field: the rows before it are the evidence
    return rows


def _table(candidate: _Candidate, skip_lines: int | None) -> None:
    """Width, start and consistency of the table a delimiter makes."""
    rows = candidate.rows
    if skip_lines is not None:
        start = next((i for i, row in enumerate(rows) if row.line > skip_lines), len(rows))
        data = [row for row in rows[start:] if row.kind == "row"]
        widths = Counter(len(row.fields) for row in data)
    else:
        data = [row for row in rows if row.kind == "row"]
        # the bottom half decides: a preamble sits at the top, however long it is
        widths = Counter(len(row.fields) for row in data[len(data) // 2 :])
    if not data:
        candidate.width, candidate.start = 0, len(rows)
        return
    # the most common width; on a tie the more common one over all rows, then the wider one (a
    # preamble line is usually narrower)
    overall = Counter(len(row.fields) for row in data)
    candidate.width = max(widths, key=lambda width: (widths[width], overall[width], width))
    if skip_lines is None:
        start = next(
            i for i, row in enumerate(rows) if row.kind == "row" and len(row.fields) == candidate.width
        )
    first = next(i for i, row in enumerate(rows) if row.kind == "row")
    if skip_lines is None and start > first and len(rows) - start < 2:
        # one row below a "preamble" is no evidence of one: the first row starts the table and the
        # reader names the odd row
        start, candidate.width = first, len(rows[first].fields)
    candidate.start = start
    table = candidate.table
    matching = sum(len(row.fields) == candidate.width for row in table)
    candidate.share = matching / len(table)
    candidate.consistent = matching == len(table)


def _kind(value: str) -> str | None:
    text = value.strip()
    if text.lower() in NULL_TOKENS:
        return None
    for kind, pattern in KINDS.items():
        if pattern.fullmatch(text):
            return kind
    return "text"


def _fits(value: str, kind: str) -> bool:
    found = _kind(value)
    return found is None or found == kind or (kind == "decimal" and found == "integer")


# each kind's pattern anchored to the lines of the newline-joined values: one regex scan per column
# and kind instead of one call per value. Line by line (MULTILINE), never one pattern repeated over
# the joined text: Python's backtracking would try every split of every earlier value before giving
# up on a late text value (exponential: a 51-row column hung a worker for minutes)
_LINES = {kind: re.compile(f"^(?:{pattern.pattern})$", re.MULTILINE) for kind, pattern in KINDS.items()}


def _column_kind(values: list[str]) -> str | None:
    """integer / decimal / date when every non-null value is one, text otherwise, None if all null."""
    present = {text for text in (value.strip() for value in set(values)) if text.lower() not in NULL_TOKENS}
    if not present:
        return None
    joined = "\n".join(present)
    if joined.count("\n") + 1 != len(present):
        return "text"  # a value holding a line break is no number or date
    for kind in ("integer", "decimal", "date"):
        if sum(1 for _ in _LINES[kind].finditer(joined)) == len(present):
            return kind
    return "text"


def _all_years(values: list[str]) -> bool:
    return all(not value.strip() or re.fullmatch(r"[12]\d{3}", value.strip()) for value in values)


def _looks_like_year_header(first: list[str], typed: list[int]) -> bool:
    """`Country,1990,1991,...`: increasing integers across typed columns are column names as often
    as data (wide open-data tables), so they prove nothing."""
    numbers = [first[i].strip() for i in typed if re.fullmatch(r"[12]\d{3}", first[i].strip())]
    if len(numbers) < 2 or len(numbers) != len(typed):
        return False
    values = [int(number) for number in numbers]
    return all(a < b for a, b in itertools.pairwise(values))


def detect_header(table: list[_Row], path: str, origin: str) -> tuple[bool, str]:
    """Whether the first table row names the columns, and why; raises when the votes disagree."""
    first = table[0].fields
    body = [row.fields for row in table[1 : HEADER_ROWS + 1] if len(row.fields) == len(first)]
    if not body:
        return True, "a single row: read as the header"
    columns = [[row[i] for row in body] for i in range(len(first))]
    kinds = [_column_kind(values) for values in columns]
    typed = [i for i, kind in enumerate(kinds) if kind not in (None, "text")]
    line = table[0].line
    if typed:
        data = [i for i in typed if _fits(first[i], kinds[i] or "text") and first[i].strip()]
        names = [i for i in typed if not _fits(first[i], kinds[i] or "text")]
        if names and not data:
            shown = ", ".join(repr(first[i]) for i in names[:3])
            return True, f"line {line} has names ({shown}) above typed columns"
        years = _looks_like_year_header(first, typed)
        if data and not names and not years:
            shown = ", ".join(repr(first[i]) for i in data[:3])
            return False, f"line {line} has values ({shown}) typed like the columns below: no header"
        if years and not names and not all(_all_years(columns[i]) for i in typed):
            # World Bank style: `Country Name,...,1960,1961` above measures that are not years
            return True, f"line {line} names columns by increasing years above values that are not years"
        if data and names:
            problem = (
                f"cannot tell whether this row is a header: {', '.join(repr(first[i]) for i in names[:3])} "
                f"look like names, {', '.join(repr(first[i]) for i in data[:3])} like values"
            )
        else:
            problem = "cannot tell whether this row is a header: it holds increasing integers (years?)"
        raise _fail(
            path,
            line,
            f"{problem}; set {setting_hint('header', True, origin)} (or false)",
        )
    blank = [i for i, value in enumerate(first) if not value.strip()]
    repeated = [i for i, values in enumerate(columns) if first[i] in values and first[i].strip()]
    if len(set(first)) == len(first) and not blank and not repeated:
        return True, f"line {line}: all-text columns; its values are distinct and none reappears below"
    reason = (
        f"{first[repeated[0]]!r} reappears in its column below"
        if repeated
        else "it has blank or repeated values"
    )
    raise _fail(
        path,
        line,
        f"cannot tell whether this row is a header (all columns are text and {reason}); "
        f"set {setting_hint('header', True, origin)} (or false)",
    )


def _escape_style(text: str, quote: str, delimiter: str) -> tuple[str, str]:
    """doubled vs backslash: a backslash-quote in the middle of a field vs doubled quotes."""
    if not quote:
        return "double", "no quoting"
    # a backslash before a doubled quote (`\""`) is a literal backslash in a doubled-quote file
    inner = re.compile(re.escape("\\" + quote) + r"(?![" + re.escape(delimiter + quote) + r"\r\n]|$)")
    backslashed = len(inner.findall(text))
    doubled = len(re.findall(re.escape(quote * 2) + r"(?=[^" + re.escape(delimiter) + r"\r\n])", text))
    if backslashed and not doubled:
        return "backslash", f"{backslashed} backslash-escaped quotes inside fields"
    if backslashed and doubled:
        return "ambiguous", f"{backslashed} backslash-escaped and {doubled} doubled quotes"
    return "double", "doubled quotes (the default)" if not doubled else f"{doubled} doubled quotes"


def _quote_char(text: str, delimiter: str) -> tuple[str, str]:
    """`"` unless the file has none and its fields are wrapped in single quotes."""
    if '"' in text:
        return '"', "double quotes"
    if "'" not in text:
        return '"', "no quotes seen (double quotes assumed)"
    sep = re.escape(delimiter)
    wrapped = re.findall(r"(?:^|" + sep + r")'[^'\r\n]*'(?=" + sep + r"|\r?\n|\r|$)", text, re.MULTILINE)
    lines = max(1, len([line for line in text.splitlines() if line.strip()]))
    if len(wrapped) >= lines:
        return "'", f"{len(wrapped)} fields wrapped in single quotes and no double quote"
    return '"', "no quotes seen (double quotes assumed)"


def _choose(candidates: list[_Candidate], path: str, origin: str) -> tuple[_Candidate, str]:
    plausible = [c for c in candidates if c.width >= 2 and c.table]
    consistent = [c for c in plausible if c.consistent and len(c.table) >= 1]
    if len(consistent) == 1:
        c = consistent[0]
        return c, f"{DELIMITER_NAMES[c.delimiter]}: every one of {len(c.table)} rows has {c.width} fields"
    whole = [c for c in consistent if not any(row.kind == "row" for row in c.rows[: c.start])]
    if len(consistent) > 1 and len(whole) == 1:
        # `;` splits the header too, `,` (decimal commas) only the rows below it: the file's own
        # first row decides
        c = whole[0]
        return c, (
            f"{DELIMITER_NAMES[c.delimiter]}: every one of {len(c.table)} rows has {c.width} fields, "
            "the first row included"
        )
    if len(consistent) > 1:
        shown = "; ".join(
            f"{c.delimiter!r} makes {c.width} columns in all {len(c.table)} rows" for c in consistent
        )
        hints = " or ".join(setting_hint("delimiter", c.delimiter, origin) for c in consistent)
        raise _fail(path, None, f"cannot tell the delimiter: {shown}; set {hints}")
    best = sorted(plausible, key=lambda c: -c.share)
    if len(best) == 1 or (best and best[0].share >= 0.8 and best[1].share < 0.5):
        c = best[0]
        return c, (
            f"{DELIMITER_NAMES[c.delimiter]}: {c.width} fields in {c.share:.0%} of {len(c.table)} rows "
            "(the other rows are ragged; the reader reports them by line)"
        )
    if best:
        shown = "; ".join(
            f"{c.delimiter!r} gives {c.width} fields in {c.share:.0%} of the rows" for c in best[:3]
        )
        hints = " or ".join(setting_hint("delimiter", c.delimiter, origin) for c in best[:3])
        raise _fail(
            path, None, f"cannot tell the delimiter, the rows are ragged with each: {shown}; set {hints}"
        )
    c = next(c for c in candidates if c.delimiter == ",")
    return c, "one column: no delimiter splits the rows (comma assumed)"


def _leading(rows: list[_Row], start: int) -> tuple[int, Counter[str]]:
    """Physical lines before the table row `start`, and how many of them are blank / comment / preamble."""
    kinds: Counter[str] = Counter(row.kind for row in rows[:start])
    kinds["preamble"] = kinds.pop("row", 0)
    return (rows[start].line - 1 if start < len(rows) else 0), kinds


def detect(
    head: bytes,
    settings: DialectSettings | None = None,
    *,
    path: str | Path = "<data>",
    at_eof: bool | None = None,
    origin: str = "[tool.labship.datasets.NAME]",
) -> Dialect:
    """The dialect of a file from its first bytes; see the module docstring. Raises `DialectError`.

    `at_eof`: whether `head` is the whole file (default: when it is shorter than SNIFF_BYTES)."""
    settings = settings or DialectSettings()
    at_eof = len(head) < SNIFF_BYTES if at_eof is None else at_eof
    path = str(path)
    _check_bytes(head, path)
    evidence: list[str] = []
    bom = head.startswith(BOM)
    if bom:
        head = head[len(BOM) :]
        evidence.append("UTF-8 byte-order mark (stripped)")
    text = _complete(_decode(head, at_eof), at_eof)
    if not text.strip():
        raise _fail(
            path,
            None,
            "the file is empty (no header line, only blank lines or nothing); delete it, "
            "or use --on-bad-rows skip",
        )
    ending, counts = _ending_counts(text)
    evidence.append(
        f"line endings {ending} ("
        + ", ".join(f"{counts[kind]} {kind}" for kind in ("LF", "CRLF", "CR") if counts[kind])
        + ")"
        if ending != "none"
        else "a single line without a line ending"
    )
    explicit = tuple(settings.chosen())
    candidate, delimiter_reason, quote, escape, comment = _structure(text, settings, path, origin, evidence)
    evidence.append(("set: " if settings.delimiter else "") + delimiter_reason)
    table = candidate.table
    if not table:
        raise _fail(path, None, "no table after the skipped lines (only blank or comment lines)")
    skip, kinds = _leading(candidate.rows, candidate.start)
    if settings.skip_lines is not None:
        skip = settings.skip_lines
        evidence.append(f"set: skip {skip} leading lines")
    elif skip:
        evidence.append(
            f"skip {skip} leading lines ("
            + ", ".join(f"{kinds[kind]} {kind}" for kind in ("blank", "comment", "preamble") if kinds[kind])
            + ")"
        )
    header, header_reason = _header(table, candidate.rows, kinds, settings, path, origin)
    evidence.append(header_reason)
    names = tuple(table[0].fields) if header else tuple(f"column_{i}" for i in range(1, candidate.width + 1))
    return Dialect(
        delimiter=candidate.delimiter,
        quote=quote,
        escape=escape,
        newline=b"\r" if counts["CR"] and ending in ("CR", "mixed") else b"\n",
        line_endings=ending,
        header=header,
        skip_lines=skip,
        comment=comment,
        bom=bom,
        columns=candidate.width,
        names=names,
        explicit=explicit,
        evidence=tuple(evidence),
    )


def _structure(
    text: str, settings: DialectSettings, path: str, origin: str, evidence: list[str]
) -> tuple[_Candidate, str, str, str, str | None]:
    """Delimiter (with its rows), quote, escape and comment prefix."""
    # a delimiter absent from the text splits nothing (one column: never plausible), so it is not
    # parsed; the comma always is (the one-column fallback)
    delimiters = (
        (settings.delimiter,)
        if settings.delimiter
        else tuple(item for item in DELIMITERS if item == "," or item in text)
    )
    comment = settings.comment if settings.comment is not None else None
    if comment is None:
        first = re.search(r"\S", text)  # the first character of the first non-blank line
        comment = COMMENT if first and first.group() == COMMENT else None
        if comment:
            evidence.append(f"comment lines start with {COMMENT!r}")
    comment = comment or None
    candidates = []
    quote_choices: dict[str, tuple[str, str, str]] = {}
    for delimiter in delimiters:
        assert delimiter is not None
        if settings.quote is not None:
            quote, quote_reason = settings.quote, "set: quote"
        else:
            quote, quote_reason = _quote_char(text, delimiter)
        if settings.escape is not None:
            escape, escape_reason = settings.escape, "set: escape"
        else:
            escape, escape_reason = _escape_style(text, quote, delimiter)
        quote_choices[delimiter] = (quote, escape, f"{quote_reason}; {escape_reason}")
        candidate = _Candidate(
            delimiter,
            _rows(text, delimiter, quote, "backslash" if escape == "backslash" else "double", comment),
        )
        _table(candidate, settings.skip_lines)
        candidates.append(candidate)
    if settings.delimiter:
        chosen, reason = (
            candidates[0],
            f"delimiter {DELIMITER_NAMES.get(settings.delimiter, repr(settings.delimiter))}",
        )
    else:
        chosen, reason = _choose(candidates, path, origin)
    quote, escape, quote_reason = quote_choices[chosen.delimiter]
    if escape == "ambiguous":
        raise _fail(
            path,
            None,
            f"cannot tell how quotes are escaped ({quote_reason.split('; ')[1]}); set "
            f"{setting_hint('escape', 'double', origin)} or {setting_hint('escape', 'backslash', origin)}",
        )
    evidence.append(quote_reason)
    return chosen, reason, quote, escape, comment


def _row_at(rows: list[_Row], line: int, width: int) -> bool:
    """Whether a (preamble) record starting on `line` has `width` fields."""
    return any(row.line == line and row.kind == "row" and len(row.fields) == width for row in rows)


def _header(
    table: list[_Row],
    rows: list[_Row],
    kinds: Counter[str],
    settings: DialectSettings,
    path: str,
    origin: str,
) -> tuple[bool, str]:
    if settings.header is not None:
        return settings.header, "set: header" if settings.header else "set: no header"
    header, reason = detect_header(table, path, origin)
    above = table[0].line - 1
    if kinds["preamble"] and header and _row_at(rows, above, len(table[0].fields) - 1):
        raise _fail(
            path,
            above,
            f"this line has one field fewer than the {len(table[0].fields)} of the next line: either a "
            "preamble line or a header without a name for a first (row-name) column; set "
            f"{setting_hint('skip_lines', above, origin)} (preamble) or "
            f"{setting_hint('skip_lines', above - 1, origin)} (header)",
        )
    if kinds["preamble"] and not header:
        first = table[0]
        raise _fail(
            path,
            first.line,
            f"the {kinds['preamble']} line(s) above have a different number of fields than the "
            f"{len(first.fields)} from here on, and this row looks like data, not a header: either a "
            f"preamble above a headerless table or a header shorter than its rows; set "
            f"{setting_hint('skip_lines', first.line - 1, origin)} and "
            f"{setting_hint('header', False, origin)}, or {setting_hint('skip_lines', 0, origin)}",
        )
    return header, reason


def detect_file(
    path: Path,
    settings: DialectSettings | None = None,
    *,
    origin: str = "[tool.labship.datasets.NAME]",
    size: int = SNIFF_BYTES,
) -> Dialect:
    """`detect` on the first `size` bytes of a plain or gzip-compressed file."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        head = stream.read(size + 1)
    return detect(head[:size], settings, path=path, at_eof=len(head) <= size, origin=origin)
