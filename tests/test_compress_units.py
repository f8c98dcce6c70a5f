"""Unit tests per module of labship.compress: block cutting, dialect detection, lossless types, unification."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from labship.compress import CompressError, DialectSettings, Settings, validate
from labship.compress.dialect import Dialect, detect, line_endings
from labship.compress.reader import parity_holds, read_blocks, read_header, safe_cut, split_header
from labship.compress.schema import unify
from labship.compress.types import infer

# --- reader: block cutting ------------------------------------------------------------------------

AWKWARD = (
    b'id,text\n1,plain\n2,"quoted, comma"\n3,"multi\nline\nvalue"\n4,12" long\n5,"say ""hi"""\n'
    b'6,E"(1.000 Hz)\n7,12"\n8,"again\nnewline"\n9,last\n'
)


def records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def blocks_of(tmp_path: Path, data: bytes, block_bytes: int, dialect: Dialect | None = None) -> list[bytes]:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    dialect = dialect or detect(data, DialectSettings())
    return [
        bytes(b.buffer[b.start : b.end]) for b in read_blocks(path, block_bytes=block_bytes, dialect=dialect)
    ]


@pytest.mark.parametrize("block_bytes", [1, 7, 16, 33, 64, 1 << 20])
def test_blocks_hold_whole_records_as_the_csv_module_reads_them(tmp_path: Path, block_bytes: int) -> None:
    pieces = blocks_of(tmp_path, AWKWARD, block_bytes)
    assert b"".join(pieces) == AWKWARD
    assert [row for piece in pieces for row in records(piece)] == records(AWKWARD)


@pytest.mark.parametrize("ending", [b"\r", b"\r\n"])
def test_bare_cr_and_crlf_files_are_cut_at_their_line_ends(tmp_path: Path, ending: bytes) -> None:
    data = AWKWARD.replace(b"\n", ending)
    pieces = blocks_of(tmp_path, data, 16)
    assert b"".join(pieces) == data
    assert [row for piece in pieces for row in records(piece)] == records(data)


def test_a_quote_never_closed_names_the_line_it_opens_on(tmp_path: Path) -> None:
    with pytest.raises(CompressError, match=r"f\.csv: line 4: a quoted field is never closed"):
        blocks_of(tmp_path, b'a,b\n1,2\n3,"fine"\n4,"open\n5,6\n', 8)


def test_parity_is_trusted_only_when_every_quote_sits_at_a_field_boundary() -> None:
    dialect = Dialect()
    for data, holds in [
        (b'1,"a,b"\n2,"x""y"\n', True),
        (b'"a","",""""\n', True),
        (b'1,12" long\n', False),
        (b'1,12"\n2,"x\ny"\n', False),
        (b'1,"a"b\n', False),
    ]:
        assert parity_holds(data, len(data), dialect) is holds, data
    # the stray quote makes counting wrong; the exact scan cuts after the complete second record
    data = b'1,12"\n2,"x\ny"\n3,"open'
    assert safe_cut(data, len(data), dialect) == data.index(b"3,")


def test_header_of_a_file_starting_with_blank_lines_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbf\n\r\n  \na;b\n1;2\n")
    dialect = detect(path.read_bytes(), DialectSettings(delimiter=";"))
    assert (dialect.bom, dialect.skip_lines) == (True, 3)
    assert read_header(path, dialect) == (["a", "b"], [])
    first = next(read_blocks(path, block_bytes=1 << 20, dialect=dialect))
    names, rest = split_header(first, path, dialect)
    assert names == ["a", "b"] and rest.first_line == 5


def test_a_headerless_file_gets_generated_names(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"1,2,3\n4,5,6\n")
    dialect = detect(path.read_bytes(), DialectSettings(header=False))
    assert read_header(path, dialect) == (["column_1", "column_2", "column_3"], [])


# --- dialect ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected", "newline"),
    [
        (b"a\n1\n", "LF", b"\n"),
        (b"a\r\n1\r\n", "CRLF", b"\n"),
        (b"a\r1\r", "CR", b"\r"),
        (b"a\r\n1\n", "mixed", b"\n"),
        (b"a\r1\n", "mixed", b"\r"),
        (b"a", "none", b"\n"),
    ],
)
def test_line_endings_are_detected(data: bytes, expected: str, newline: bytes) -> None:
    assert line_endings(data) == expected
    assert detect(data, DialectSettings()).newline == newline


@pytest.mark.parametrize(
    ("dialect", "message"),
    [
        (DialectSettings(delimiter=":"), r"delimiter ':': use one of"),
        (DialectSettings(quote="ab"), r"quote 'ab': use one character"),
        (DialectSettings(delimiter=";", quote=";"), r"quote and delimiter are both ';'"),
        (DialectSettings(escape="caret"), r"escape 'caret': use one of double, backslash"),
        (DialectSettings(skip_lines=-1), r"skip-lines -1"),
    ],
)
def test_impossible_dialect_settings_are_refused_naming_the_key(
    dialect: DialectSettings, message: str
) -> None:
    with pytest.raises(CompressError, match=message):
        validate(Settings(dialect=dialect, origin="pyproject.toml [tool.labship.datasets.x]"))


# --- types: lossless inference ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", "0"], pa.int64()),
        (["+3", "1"], pa.string()),
        (["08123", "1"], pa.string()),
        (["0", "10"], pa.int64()),
        (["01.5", "2"], pa.string()),
        (["9223372036854775808"], pa.decimal128(19, 0)),
        (["1" * 40], pa.string()),
        (["82544000000000707.52", "1.5"], pa.decimal128(19, 2)),
        (["0.1", "2.25", "1e5"], pa.float64()),
        (["123456789012345.6"], pa.decimal128(16, 1)),  # 16 significant digits: not exact in float64
        (["12345678901234.56", "1.5e300"], pa.string()),  # too many digits and an exponent
        (["true", "FALSE", "True"], pa.bool_()),
        (["t", "f"], pa.string()),
        (["YES", "NO"], pa.string()),
        (["1", "0", "1"], pa.int64()),
        (["2024-01-31 10:00:00", "2024-02-01T11:30:00"], pa.timestamp("s")),
        (
            ["2013-01-01T10:00:00Z", "2013-01-01 11:00:00+00:00", "2013-01-01T12:00+0000"],
            pa.timestamp("s", "UTC"),
        ),
        (["2013-01-01T10:00:00.25Z"], pa.timestamp("ns", "UTC")),
        (["2013-01-01T10:00:00Z", "2013-01-01T10:00:00+02:00"], pa.string()),  # the offset would be lost
        (["2013-01-01T10:00:00Z", "2013-01-01 10:00:00"], pa.string()),  # zoned and naive mixed
        (["abc", "1"], pa.string()),
        ([None, None], pa.null()),
    ],
)
def test_infer_keeps_every_value_recoverable(values: list[str | None], expected: pa.DataType) -> None:
    assert infer(pa.chunked_array([pa.array(values, pa.string())])) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.null(), pa.bool_(), pa.bool_()),
        (pa.int64(), pa.decimal128(25, 2), pa.decimal128(25, 2)),
        (pa.decimal128(10, 4), pa.decimal128(20, 0), pa.decimal128(24, 4)),
        (pa.decimal128(30, 0), pa.decimal128(10, 9), pa.string()),
        (pa.float64(), pa.decimal128(20, 2), pa.string()),  # a float64 value cannot widen to exact
        (pa.bool_(), pa.int64(), pa.string()),
        (pa.timestamp("s"), pa.timestamp("ns"), pa.timestamp("ns")),
        (pa.timestamp("s", "UTC"), pa.timestamp("ns", "UTC"), pa.timestamp("ns", "UTC")),
        (pa.timestamp("s", "UTC"), pa.timestamp("s"), pa.string()),
        (pa.string(), pa.binary(), pa.binary()),
    ],
)
def test_unify_gives_the_narrowest_type_holding_both(
    left: pa.DataType, right: pa.DataType, expected: pa.DataType
) -> None:
    assert unify(left, right) == expected
    assert unify(right, left) == expected


# --- sampling: all columns typed at once agree with column-by-column inference ----------------


def test_sampling_all_columns_at_once_agrees_with_infer_per_column() -> None:
    from labship.compress.sampling import sample_table
    from labship.compress.types import sampling_options

    columns = {
        "int": ["1", "2", None, "-7"],
        "zip": ["08123", "1", "2", "3"],
        "big": ["9223372036854775808", "1", "2", "3"],
        "float": ["0.5", "1", "2.25", None],
        "long": ["82544000000000707.52", "1", "2", "3"],
        "bool": ["true", "FALSE", None, "True"],
        "not bool": ["t", "f", "t", "f"],
        "time": ["2024-01-31 10:00:00", "2024-02-01T11:30:00", None, None],
        "utc": ["2013-01-01T10:00:00Z", None, "2013-01-01T11:00:00Z", "2013-01-02T00:00:00+00:00"],
        "offset": ["2013-01-01T10:00:00Z", None, "2013-01-01T11:00:00+01:00", None],
        "text": ["a", "b", "a", "c"],
        "empty": [None, None, None, None],
    }
    source = pa.py_buffer(
        "\n".join(
            ",".join("" if value is None else value for value in row)
            for row in zip(*columns.values(), strict=True)
        ).encode()
    )
    raw, typed = (
        pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=list(columns)),
            convert_options=sampling_options(names),
        )
        for names in (list(columns), None)
    )
    for guessed in (typed, None):  # Arrow's guess checked, and the text-only path of wide pieces
        facts = sample_table(raw, guessed, examples=True)
        for (name, values), found in zip(columns.items(), facts, strict=True):
            assert found.data_type == infer(pa.chunked_array([pa.array(values, pa.string())])), name
        assert (facts[0].minimum, facts[0].maximum, facts[0].values) == (-7, 2, 3)
        text = facts[list(columns).index("text")]
        assert text.distinct == {"a", "b", "c"} and text.examples == ["a", "b", "a", "c"]
    raw, typed = (
        pacsv.read_csv(
            pa.py_buffer(b"1,\xff\n"),
            read_options=pacsv.ReadOptions(column_names=["ok", "bad"]),
            convert_options=sampling_options(names),
        )
        for names in (["ok", "bad"], None)
    )
    for guessed in (typed, None):
        assert [item.data_type for item in sample_table(raw, guessed, examples=False)] == [
            pa.int64(),
            pa.binary(),
        ]


# --- encodings: each integer/timestamp column keeps the smallest of dictionary, delta, plain ------


def test_the_first_row_group_chooses_each_columns_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    from labship.compress import encodings

    monkeypatch.setattr(encodings, "TRIAL_MIN_CELLS", 100_000)
    rows = 70_000
    chance = random.Random(7)
    codes = [chance.randrange(1 << 30) for _ in range(40)]
    table = pa.table(
        {
            "clock": pc.cumulative_sum(pa.array([3] * rows, pa.int64())),  # constant steps
            "kind": pa.array([chance.choice(codes) for _ in range(rows)], pa.int32()),  # 40 large codes
            "x": pa.array([chance.randrange(1440) for _ in range(rows)], pa.int32()),
            "reading": pa.array([chance.random() for _ in range(rows)], pa.float64()),  # all distinct
        }
    )
    options = {"compression": "zstd", "compression_level": 3}
    chosen = encodings.choose(table, options)
    assert chosen["column_encoding"]["clock"] == encodings.DELTA  # constant steps: delta is ~empty
    assert chosen["column_encoding"]["reading"] == encodings.PLAIN
    assert "kind" in chosen["use_dictionary"]
    head = table.slice(0, encodings.TRIAL_ROWS)  # the choice is the smallest chunk, as measured
    sizes = {
        e: encodings.chunk_sizes(head, e, options)
        for e in (encodings.DICTIONARY, encodings.PLAIN, encodings.DELTA)
    }
    for index, name in enumerate(table.column_names):
        picked = chosen["column_encoding"].get(name, encodings.DICTIONARY)
        allowed = [encodings.DICTIONARY, encodings.PLAIN] + ([encodings.DELTA] if name != "reading" else [])
        assert sizes[picked][index] == min(sizes[e][index] for e in allowed), name
    monkeypatch.setattr(encodings, "TRIAL_MIN_CELLS", table.num_rows * table.num_columns + 1)
    assert encodings.choose(table, options) is options


def test_a_wide_table_tries_some_columns_and_the_rest_follow_their_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from labship.compress import encodings

    monkeypatch.setattr(encodings, "TRIAL_MIN_CELLS", 0)
    chance = random.Random(3)
    names = [f"c{index}" for index in range(600)]
    table = pa.table({name: pa.array([chance.random() for _ in range(50)]) for name in names})
    chosen = encodings.choose(table, {"compression": "zstd"})
    assert chosen["column_encoding"] == dict.fromkeys(names, encodings.PLAIN)  # distinct floats: plain


def test_a_large_output_is_written_with_the_chosen_encodings_and_reads_back_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labship.compress import encodings

    monkeypatch.setattr(encodings, "TRIAL_MIN_CELLS", 100_000)  # this file: 300,000 values
    import pyarrow.parquet as pq

    from labship.compress import compress_dataset

    (tmp_path / "src").mkdir()
    lines = ["id,kind,at"] + [
        f"{i},{'abc'[i % 3]},2013-01-01T{i // 3600 % 24:02d}:00:00Z" for i in range(100_000)
    ]
    (tmp_path / "src" / "f.csv").write_text("\n".join(lines) + "\n")
    compress_dataset("d", tmp_path / "src", tmp_path / "out", Settings(), jobs=1)
    parquet = pq.ParquetFile(tmp_path / "out" / "f.parquet")
    used = {
        parquet.metadata.row_group(0).column(i).path_in_schema: parquet.metadata.row_group(0)
        .column(i)
        .encodings
        for i in range(3)
    }
    assert "DELTA_BINARY_PACKED" in used["id"]
    assert "RLE_DICTIONARY" in used["kind"]
    table = parquet.read()
    assert table.column("id").to_pylist() == list(range(100_000))
    assert table.schema.field("at").type == pa.timestamp("ms", "UTC")
    assert str(table.column("at")[7200].as_py()) == "2013-01-01 02:00:00+00:00"


def test_column_kinds_of_long_columns_with_one_late_text_value_do_not_backtrack() -> None:
    # one pattern repeated over the joined values backtracked through every split of every earlier
    # number before failing on the text value (a worker hung for minutes on a 51-row file)
    import signal

    from labship.compress.dialect import _column_kind

    def hung(*_args: object) -> None:
        raise TimeoutError("the column kind check did not return in 20 s: catastrophic backtracking")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)  # a guard against a hang, not a speed assertion (it returns in milliseconds)
    try:
        for text in ("n/a-yet", "12x", "1/1/2013 noon"):
            numbers = [str(1000 + index) for index in range(200)]
            assert _column_kind([*numbers, text]) == "text"
            assert _column_kind([f"{n}.5" for n in numbers] + [text]) == "text"
            dates = [f"{1 + index % 12}/{1 + index % 28}/2013" for index in range(200)]
            assert _column_kind([*dates, text]) == "text"
        assert _column_kind(["1", "2", "3"]) == "integer"
        assert _column_kind(["1", "2.5", "-3e5"]) == "decimal"
        assert _column_kind(["2024-01-31", "1/2/2013 10:00 PM"]) == "date"
        assert _column_kind(["12\n34", "5"]) == "text"
        assert _column_kind(["", "NA"]) is None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _worker_view(_item: int) -> tuple[bool, int]:
    """In a compress worker: whether pandas can be imported, and whether Arrow still builds arrays."""
    import importlib

    try:
        importlib.import_module("pandas")
        importable = True
    except ImportError:
        importable = False
    return importable, pa.array([1, 2, 3]).to_pylist()[-1]


def test_compress_workers_never_load_pandas() -> None:
    # pyarrow would import pandas (installed: the test extra has it) on a worker's first pa.array():
    # 39 MB and 0.45 s per worker; this process is left alone
    from labship.compress.dataset import _Workers

    with _Workers(2) as workers:
        assert workers.map(_worker_view, [0, 1]) == [(False, 3), (False, 3)]
    assert _worker_view(0) == (True, 3)
