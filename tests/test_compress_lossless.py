"""Lossless conversion: every cell's source text is recoverable from its Parquet value.

"Recoverable" allows number formatting (`1.50` -> 1.5), ISO timestamp forms (`T` or space, `Z` or
`+00:00` for UTC) and null tokens (an empty or `NA` cell of a typed column may become null); nothing
else: a timestamp with any other offset must keep its text.
"""

from __future__ import annotations

import datetime
import gzip
import shutil
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labship.compress import Settings, compress_dataset

NULL_TOKENS = {"", "NA", "N/A", "NULL", "null", "NaN", "nan", "-NaN", "-nan", "#N/A", "n/a", "None"}

integers = st.integers(-(10**30), 10**30).map(str)
leading_zero = st.integers(0, 99_999).map(lambda n: f"0{n}")
decimals = st.decimals(-(10**12), 10**12, allow_nan=False, allow_infinity=False, places=3).map(str)
long_decimals = st.tuples(st.integers(0, 10**20), st.integers(0, 10**6)).map(lambda p: f"{p[0]}.{p[1]:06d}")
floats = st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr)
booleans = st.sampled_from(["true", "false", "TRUE", "False", "t", "f", "YES", "no", "1", "0"])
timestamps = st.tuples(
    st.datetimes(min_value=datetime.datetime(1900, 1, 1), max_value=datetime.datetime(2200, 1, 1)),
    st.sampled_from([" ", "T"]),
).map(lambda pair: pair[0].replace(microsecond=0).isoformat(sep=pair[1]))
zoned_timestamps = st.tuples(  # UTC marks become timestamp[tz=UTC]; any other offset keeps the text
    st.datetimes(min_value=datetime.datetime(1900, 1, 1), max_value=datetime.datetime(2200, 1, 1)),
    st.sampled_from(["Z", "Z", "+00:00", "+0000", "+02:00", "-05:30"]),
).map(lambda pair: pair[0].replace(microsecond=0).isoformat(sep="T") + pair[1])
nulls = st.sampled_from(["", "NA", "null"])
awkward_text = st.sampled_from(
    ['12" long', 'E"(1.000 Hz)', "a,b", 'say "hi"', "two\nlines", "x\r\ny", " padded "]
)
free_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t"), min_size=0, max_size=12
)
KINDS = [
    integers,
    leading_zero,
    decimals,
    long_decimals,
    floats,
    booleans,
    timestamps,
    zoned_timestamps,
    awkward_text,
    free_text,
]


@st.composite
def tables(draw: st.DrawFn) -> list[list[str]]:
    """A header and rows; each column mostly one kind of value, sometimes mixed, with nulls."""
    width = draw(st.integers(1, 5))
    height = draw(st.integers(1, 25))
    columns = []
    for _ in range(width):
        main = draw(st.sampled_from(KINDS))
        mixed = st.one_of(main, main, main, nulls, draw(st.sampled_from(KINDS)))
        columns.append(
            draw(st.lists(mixed if draw(st.booleans()) else main, min_size=height, max_size=height))
        )
    header = [f"c{index}" for index in range(width)]
    return [header, *map(list, zip(*columns, strict=True))]


def recovered(text: str, value: Any, data_type: pa.DataType) -> bool:
    """Whether `value` (read from Parquet) gives back `text` up to the allowed differences."""
    if value is None:
        return text in NULL_TOKENS
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, int | Decimal):
        try:
            return Decimal(text) == Decimal(value)
        except InvalidOperation:
            return False
    if isinstance(value, float):
        return Decimal(text) == Decimal(repr(value))
    if isinstance(value, datetime.datetime):
        source = datetime.datetime.fromisoformat(text)
        if value.tzinfo is not None:  # only a UTC-marked source may become a zoned value
            return source.utcoffset() == datetime.timedelta(0) and source == value
        return source == value
    return text == value


def cell(value: str) -> str:
    """A CSV cell as a careful writer quotes it (any line-end character, comma or quote)."""
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\r\n') else value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_every_cell_round_trips_as_text(table: list[list[str]], ending: str) -> None:
    # a lone empty field is written `""` (as the csv module does): an empty line is no record
    text = ending.join(",".join(map(cell, row)) if row != [""] else '""' for row in table) + ending
    directory = Path(tempfile.mkdtemp())
    try:
        (directory / "src").mkdir()
        (directory / "src" / "t.csv").write_bytes(text.encode())
        compress_dataset("p", directory / "src", directory / "out", Settings(), jobs=1)
        output = pq.read_table(directory / "out" / "t.parquet")
        assert output.column_names == table[0]
        assert output.num_rows == len(table) - 1
        for index, name in enumerate(table[0]):
            column = output.column(name)
            data_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            for row, value in zip(table[1:], column.to_pylist(), strict=True):
                assert recovered(row[index], value, data_type), (name, data_type, row[index], value)
    finally:
        shutil.rmtree(directory)


def test_values_past_the_samples_that_a_number_type_would_change_keep_their_text(tmp_path: Path) -> None:
    # the sampled head of a .gz file is 4 MB; far past it a zip code with a leading zero, a decimal
    # with 20 significant digits and an integer beyond int64 must widen their columns, not lose digits
    lines = [b"zip,amount,big"] + [b"%d,%d.5,%d" % (10000 + i % 80000, i, i) for i in range(700_000)]
    lines[650_001] = b"08123,82544000000000707.52,123456789012345678901234"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "late.csv.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n", 1))
    report = compress_dataset("late", tmp_path / "src", tmp_path / "out", Settings(), jobs=1)
    table = pq.read_table(tmp_path / "out" / "late.parquet")
    assert table.num_rows == 700_000
    row = {name: table.column(name)[650_000].as_py() for name in table.column_names}
    assert row["zip"] == "08123"
    assert Decimal(row["amount"]) == Decimal("82544000000000707.52")
    assert Decimal(row["big"]) == Decimal("123456789012345678901234")
    assert str(table.column("zip")[0].as_py()) == "10000"
    assert any("widened" in note for note in report.notes)


def test_an_offset_past_the_samples_keeps_a_utc_timestamp_column_as_text(tmp_path: Path) -> None:
    # Arrow would read `+02:00` into a UTC column by shifting it: the offset would be lost
    lines = [b"id,at"] + [b"%d,2013-01-01T%02d:00:00Z" % (i, i % 24) for i in range(700_000)]
    lines[650_001] = b"650000,2013-01-01T05:00:00+02:00"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "late.csv.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n", 1))
    report = compress_dataset("late", tmp_path / "src", tmp_path / "out", Settings(), jobs=1)
    table = pq.read_table(tmp_path / "out" / "late.parquet")
    assert table.schema.field("at").type == pa.string()
    assert table.column("at")[650_000].as_py() == "2013-01-01T05:00:00+02:00"
    assert table.column("at")[1].as_py() == "2013-01-01T01:00:00Z"
    assert any("widened" in note and "at" in note for note in report.notes)
    (tmp_path / "src" / "late.csv.gz").write_bytes(gzip.compress(b"\n".join(lines[:650_001]) + b"\n", 1))
    compress_dataset("late", tmp_path / "src", tmp_path / "out", Settings(), jobs=1)
    assert pq.read_schema(tmp_path / "out" / "late.parquet").field("at").type == pa.timestamp("ms", "UTC")


def test_of_many_files_an_unsampled_one_still_keeps_its_values(tmp_path: Path) -> None:
    # of 70 files only 64 are sampled (schema.SAMPLED_FILES_MAX); day-11 is not: its leading-zero
    # code and its text in a numeric column must widen their columns when converted, not be changed
    from labship.compress.schema import sampled_positions

    assert 11 not in sampled_positions(70) and {0, 69} <= sampled_positions(70)
    (tmp_path / "src").mkdir()
    for day in range(70):
        rows = [f"{day},{row},{1000 + row}" for row in range(50)]
        if day == 11:
            rows[7] = "11,7,08123"
            rows[8] = "11,n/a-yet,1008"
        (tmp_path / "src" / f"day-{day:02d}.csv").write_text("day,row,code\n" + "\n".join(rows) + "\n")
    report = compress_dataset("many", tmp_path / "src", tmp_path / "out", Settings(), jobs=2)
    table = pq.read_table(tmp_path / "out" / "day-11.parquet")
    assert table.column("code")[7].as_py() == "08123" and table.column("row")[8].as_py() == "n/a-yet"
    assert pq.read_table(tmp_path / "out" / "day-12.parquet").column("code")[0].as_py() == "1000"
    assert any("widened" in note for note in report.notes)
