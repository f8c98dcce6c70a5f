"""How a CSV file is written: delimiter, quoting, line endings, header, leading lines, BOM.

`Dialect` is what the reader and the parser consume (`reader.read_blocks`, `Dialect.parse_options`);
`DialectSettings` is what a user may fix per dataset (`[tool.labship.datasets.X]`) or per run
(flags); `detect` turns the head of one file plus those settings into the file's `Dialect`.

`detect` is the single place where the evidence of a file is read: today it finds the BOM, the
line endings (LF, CRLF, bare CR, mixed) and leading blank lines, and takes the delimiter, quote,
escape style and header from the settings (defaults: `,` `"` doubled quotes, header present).
A sniffer that also guesses delimiter, header and preamble plugs in here, returning the same
`Dialect`; nothing downstream changes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import pyarrow.csv as pacsv

from labship.compress.errors import CompressError

BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", ";", "|", "\t")
ESCAPES = ("double", "backslash")
LEADING_BLANK = re.compile(rb"(?:[ \t]*(?:\r\n|\n|\r))*")


@dataclass(frozen=True, kw_only=True)
class DialectSettings:
    """Dialect properties a user fixed (None: detect from the file)."""

    delimiter: str | None = None
    quote: str | None = None  # "" for no quoting
    escape: str | None = None  # "double" (`""` inside quotes) or "backslash"
    header: bool | None = None
    skip_lines: int | None = None  # lines before the header (preamble), beyond leading blank lines

    def check(self, origin: str) -> None:
        """Refuse settings the reader cannot honour, naming the key."""
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            shown = ", ".join(repr(item) for item in DELIMITERS)
            raise CompressError(f"{origin}: delimiter {self.delimiter!r}: use one of {shown}")
        if self.quote is not None and (len(self.quote) > 1 or self.quote in ("\r", "\n")):
            raise CompressError(f"{origin}: quote {self.quote!r}: use one character, or '' for none")
        if self.quote and self.delimiter is not None and self.quote == self.delimiter:
            raise CompressError(f"{origin}: quote and delimiter are both {self.quote!r}; pick two characters")
        if self.escape is not None and self.escape not in ESCAPES:
            raise CompressError(f"{origin}: escape {self.escape!r}: use one of {', '.join(ESCAPES)}")
        if self.skip_lines is not None and self.skip_lines < 0:
            raise CompressError(f"{origin}: skip-lines {self.skip_lines}: use 0 or more")

    def overridden_by(self, other: DialectSettings) -> DialectSettings:
        """These settings with every property `other` sets replaced."""
        chosen = {item.name: getattr(other, item.name) for item in fields(other)}
        return replace(self, **{name: value for name, value in chosen.items() if value is not None})


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """How one file is written; everything the reader and parser need to read it right."""

    delimiter: str = ","
    quote: str = '"'  # "" for no quoting
    escape: str = "double"
    newline: bytes = b"\n"  # the byte records are cut after: b"\n" (LF, CRLF) or b"\r" (bare CR)
    line_endings: str = "LF"  # as found, for the report: LF, CRLF, CR, mixed, none
    header: bool = True
    skip_lines: int = 0  # lines before the header (blank lines and preamble)
    bom: bool = False

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
        return described


def line_endings(head: bytes) -> str:
    """LF, CRLF, CR, mixed or none, from the head of a file."""
    crlf = head.count(b"\r\n")
    lf = head.count(b"\n") - crlf
    cr = head.count(b"\r") - crlf
    found = [name for name, count in (("CRLF", crlf), ("LF", lf), ("CR", cr)) if count]
    if not found:
        return "none"
    return found[0] if len(found) == 1 else "mixed"


def detect(head: bytes, settings: DialectSettings) -> Dialect:
    """The dialect of a file from its first bytes (the sniffer's entry point; see the module docstring)."""
    bom = head.startswith(BOM)
    body = head[len(BOM) :] if bom else head
    endings = line_endings(body)
    # bare CR anywhere: cut records after CR (a CRLF then ends in an empty line, which is skipped)
    newline = b"\r" if endings == "CR" or (endings == "mixed" and _has_bare_cr(body)) else b"\n"
    blank = LEADING_BLANK.match(body)
    blank_lines = _count_lines(body[: blank.end()] if blank else b"")
    return Dialect(
        delimiter=settings.delimiter or ",",
        quote='"' if settings.quote is None else settings.quote,
        escape=settings.escape or "double",
        newline=newline,
        line_endings=endings,
        header=True if settings.header is None else settings.header,
        skip_lines=blank_lines + (settings.skip_lines or 0),
        bom=bom,
    )


def _has_bare_cr(data: bytes) -> bool:
    return data.count(b"\r") > data.count(b"\r\n")


def _count_lines(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
