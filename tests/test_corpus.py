"""The awkward-CSV corpus (tests/corpus/): every file converts exactly, or is refused naming file and line.

Each `tests/corpus/<category>/<name>.csv` is converted alone with default settings, as a user's
`invoke compress --source DIR --target DIR` would; its `<name>.expected.json` says what the user must
see (see tests/corpus/make_corpus.py): the column names, a type family per column and every value
(text compared exactly; decimals and timestamps compared as the number / instant the text says), the
dialect the report records, or the words a refusal must contain besides the file name. Cases the
engine does not handle yet are strict xfails: the suite stays green and such a case fails loudly
the day it starts passing, so its mark must go.
"""

from __future__ import annotations

import datetime
import decimal
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labship.compress import CompressError, Settings, compress_dataset

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(CORPUS.glob("*/*.csv"))
# case id -> why it does not pass yet (strict: the mark must go when it does)
NOT_YET: dict[str, str] = {}


def family(data_type: pa.DataType) -> str:
    if pa.types.is_dictionary(data_type):
        return family(data_type.value_type)
    checks = [
        ("bool", pa.types.is_boolean),
        ("int", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("decimal", pa.types.is_decimal),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
        ("timestamp", pa.types.is_timestamp),
        ("date", pa.types.is_date),
    ]
    return next((name for name, check in checks if check(data_type)), str(data_type))


def same_value(actual: Any, expected: Any) -> bool:
    """Text exactly; a decimal or timestamp equal to what its source text says; numbers by value.
    An empty text field may be read as null or as "" (both give the source text back)."""
    if expected is None and actual == "":
        return True
    if isinstance(expected, str) and not isinstance(actual, str) and actual is not None:
        if isinstance(actual, decimal.Decimal):
            return actual == decimal.Decimal(expected)
        if isinstance(actual, datetime.datetime):
            return actual.replace(tzinfo=None) == datetime.datetime.fromisoformat(expected.replace("Z", ""))
        if isinstance(actual, datetime.date):
            return actual == datetime.date.fromisoformat(expected)
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    return actual == expected


def convert_alone(path: Path, work: Path) -> tuple[Any, Path]:
    source = work / "source"
    source.mkdir()
    shutil.copyfile(path, source / path.name)
    report = compress_dataset("corpus", source, work / "target", Settings(), jobs=1)
    return report, work / "target" / f"{path.stem}.parquet"


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def params() -> list[Any]:
    marks = {key: pytest.mark.xfail(strict=True, reason=reason) for key, reason in NOT_YET.items()}
    return [pytest.param(path, id=case_id(path), marks=marks.get(case_id(path), ())) for path in CASES]


def test_the_corpus_has_at_least_three_files_per_category() -> None:
    categories: dict[str, int] = {}
    for path in CASES:
        categories[path.parent.name] = categories.get(path.parent.name, 0) + 1
        assert path.with_suffix(".expected.json").exists(), path
    assert len(categories) >= 16 and min(categories.values()) >= 3, categories


@pytest.mark.parametrize("path", params())
def test_corpus_file(path: Path, tmp_path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    original = path.read_bytes()
    if expected["outcome"] == "refused":
        with pytest.raises(CompressError) as caught:
            convert_alone(path, tmp_path)
        message = str(caught.value)
        assert path.name in message, message
        for words in expected["mentions"]:
            assert words in message, message
        assert not list((tmp_path / "target").rglob("*.parquet")) if (tmp_path / "target").exists() else True
    else:
        report, output = convert_alone(path, tmp_path)
        table = pq.read_table(output)
        names = [name for name, _ in expected["columns"]]
        assert table.column_names == names
        for (name, families), field in zip(expected["columns"], table.schema, strict=True):
            assert family(field.type) in families.split("|"), f"{name}: {field.type}, expected {families}"
        rows = [list(row.values()) for row in table.to_pylist()]
        assert len(rows) == len(expected["rows"])
        for line, (row, wanted) in enumerate(zip(rows, expected["rows"], strict=True), start=1):
            for name, actual, value in zip(names, row, wanted, strict=True):
                assert same_value(actual, value), f"row {line} column {name}: {actual!r} != {value!r}"
        recorded = report.dialects.get(path.name, {})
        for key, value in expected["dialect"].items():
            assert recorded.get(key) == value, f"dialect {key}: {recorded.get(key)!r} != {value!r}"
    assert path.read_bytes() == original  # the source is never modified


def write_wide(path: Path, columns: int, rows: int, delimiter: str, seed: int) -> list[list[str]]:
    """A wide table: integer, decimal, text and wholly empty columns in turn; returns the cells."""
    rng = random.Random(seed)
    makers = [
        lambda: str(rng.randint(-500, 5000)),
        lambda: f"{rng.randint(0, 99999) / 100:.2f}",
        lambda: rng.choice(["ok", "warn", "fail", "n/a x"]),
        lambda: "",
    ]
    cells = [[makers[c % 4]() for c in range(columns)] for _ in range(rows)]
    header = delimiter.join(f"sensor_{c:05d}" for c in range(columns))
    body = "\n".join(delimiter.join(row) for row in cells)
    path.write_text(header + "\n" + body + "\n")
    return cells


@pytest.mark.parametrize(
    ("columns", "rows", "delimiter"),
    # column counts bounded by the suite budget: each column costs the engine ~0.5 ms of type sampling
    [(1_000, 30, ","), (2_000, 10, ";"), (600, 50, "\t")],
    ids=["1000-comma", "2000-semicolon", "600-tab"],
)
def test_wide_generated_file(tmp_path: Path, columns: int, rows: int, delimiter: str) -> None:
    source = tmp_path / "source" / "wide.csv"
    source.parent.mkdir()
    cells = write_wide(source, columns, rows, delimiter, seed=columns)
    compress_dataset("wide", source.parent, tmp_path / "target", Settings(), jobs=1)
    table = pq.read_table(tmp_path / "target" / "wide.parquet")
    assert table.num_rows == rows and table.num_columns == columns
    assert table.column_names[:2] == ["sensor_00000", "sensor_00001"]
    wanted = {0: "int", 1: "float", 2: "string"}
    for index in (0, 1, 2, columns - 4, columns - 3, columns - 2):
        column = table.column(index)
        assert family(column.type) == wanted[index % 4], (index, column.type)
        texts = [row[index] for row in cells]
        values = column.to_pylist()
        if index % 4 == 0:
            assert values == [int(text) for text in texts]
        elif index % 4 == 1:
            assert values == [float(text) for text in texts]
        else:
            assert values == texts
    assert table.column(3).null_count == rows  # an empty column stays empty, never invented values
