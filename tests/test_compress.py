"""labship.compress and `invoke compress`: what a user checks after converting CSV to Parquet."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from labship.compress import CompressError, Settings, compress_dataset
from labship.sample import write_traffic_csv

TIMESTAMP = ("%m/%d/%Y %H:%M:%S",)
INVOKE = Path(sys.executable).with_name("invoke")


def convert(source: Path, target: Path, **settings: object) -> object:
    return compress_dataset("test", source, target, Settings(**settings), jobs=1)  # type: ignore[arg-type]


def write(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("traffic")
    write_traffic_csv(directory, files=4, rows_per_file=3000)
    return directory


def test_sample_data_round_trips_with_compact_types(traffic: Path, tmp_path: Path) -> None:
    report = convert(traffic, tmp_path, timestamp_formats=TIMESTAMP)
    assert report.files == report.converted == 4 and report.rows == 12000
    source = pacsv.read_csv(traffic / "d07_station_5min_2024_01_02.csv")
    output = pq.read_table(tmp_path / "d07_station_5min_2024_01_02.parquet")
    assert output.num_rows == source.num_rows
    schema = output.schema
    assert pa.types.is_timestamp(schema.field("Timestamp").type)
    assert schema.field("Station").type == pa.int32()
    assert pa.types.is_dictionary(schema.field("Direction").type)
    assert schema.field("Avg Speed").type == pa.float64()
    assert schema.field("Lane 8 Flow").type == pa.string()  # empty in the whole file
    assert output.column("Station").to_pylist() == source.column("Station").to_pylist()
    assert output.column("Avg Speed").to_pylist() == source.column("Avg Speed").to_pylist()
    assert output.column("Direction").cast(pa.string()).to_pylist() == source.column("Direction").to_pylist()
    assert report.ratio > 4
    assert report.parquet_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.parquet"))
    assert report.csv_bytes == sum(p.stat().st_size for p in traffic.glob("*.csv"))


def test_two_runs_write_identical_bytes(traffic: Path, tmp_path: Path) -> None:
    convert(traffic, tmp_path / "a")
    compress_dataset("test", traffic, tmp_path / "b", Settings(), jobs=2)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.parquet"))
    assert len(names) == 4
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_rerun_skips_unchanged_files_quickly_and_redoes_a_changed_one(tmp_path: Path) -> None:
    source = tmp_path / "csv"
    write_traffic_csv(source, files=200, rows_per_file=5)
    first = convert(source, tmp_path / "out")
    assert first.converted == 200
    started = time.perf_counter()
    again = convert(source, tmp_path / "out")
    assert time.perf_counter() - started < 0.5
    assert again.converted == 0 and again.skipped == 200 and again.rows == first.rows
    changed = source / "d07_station_5min_2024_01_05.csv"
    changed.write_bytes(changed.read_bytes() + changed.read_bytes().splitlines(keepends=True)[1])
    third = convert(source, tmp_path / "out")
    assert third.converted == 1 and third.rows == first.rows + 1


def test_a_value_after_the_first_megabytes_widens_the_type(tmp_path: Path) -> None:
    # 800k integer rows (~10 MB; the sampled head is 4 MB), then a decimal and text far beyond the sampled head of a .gz file
    lines = [b"id,reading,label"] + [b"%d,%d,%d" % (i, i % 50, i % 7) for i in range(800_000)]
    lines[600_001] = b"600000,2.5,late text"
    write(tmp_path / "csv", "late.csv.gz", gzip.compress(b"\n".join(lines) + b"\n"))
    report = convert(tmp_path / "csv", tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "late.parquet")
    assert table.num_rows == 800_000
    assert table.schema.field("reading").type == pa.float64()
    assert table.schema.field("label").type in (pa.string(), pa.dictionary(pa.int32(), pa.string()))
    assert table.column("reading")[600_000].as_py() == 2.5
    assert table.column("label")[600_000].as_py() == "late text"
    assert table.column("reading")[599_999].as_py() == 599_999 % 50
    assert any("widened" in note for note in report.notes)


def test_integer_overflow_past_the_samples_is_lossless(tmp_path: Path) -> None:
    lines = [b"n"] + [b"%d" % i for i in range(1_000_000)]
    lines[900_001] = b"9000000000"
    write(tmp_path / "csv", "big.csv.gz", gzip.compress(b"\n".join(lines) + b"\n"))
    convert(tmp_path / "csv", tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "big.parquet")
    assert table.schema.field("n").type == pa.int64()
    assert table.column("n")[900_000].as_py() == 9_000_000_000


def test_columns_and_drop_prune_and_unknown_names_list_the_available_ones(
    traffic: Path, tmp_path: Path
) -> None:
    report = convert(traffic, tmp_path / "keep", columns=("Timestamp", "Station", "Total Flow"))
    assert pq.read_schema(tmp_path / "keep" / "d07_station_5min_2024_01_01.parquet").names == [
        "Timestamp",
        "Station",
        "Total Flow",
    ]
    assert (report.columns_kept, report.columns_dropped) == (3, 49)
    convert(traffic, tmp_path / "drop", drop=("District",))
    assert "District" not in pq.read_schema(tmp_path / "drop" / "d07_station_5min_2024_01_01.parquet").names
    with pytest.raises(
        CompressError, match=r"unknown column\(s\) 'Speed'.*available columns: Timestamp, Station"
    ):
        convert(traffic, tmp_path / "bad", columns=("Station", "Speed"))


def test_explicit_types_and_codec(traffic: Path, tmp_path: Path) -> None:
    convert(traffic, tmp_path, types=(("Station", "int64"), ("Freeway", "string")), codec="snappy")
    path = tmp_path / "d07_station_5min_2024_01_01.parquet"
    schema = pq.read_schema(path)
    assert schema.field("Station").type == pa.int64() and schema.field("Freeway").type == pa.string()
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "SNAPPY"


def test_partition_by_writes_hive_directories(traffic: Path, tmp_path: Path) -> None:
    convert(traffic, tmp_path, partition_by=("District",))
    districts = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("District="))
    assert districts and all(d.split("=")[1].isdigit() for d in districts)
    import pyarrow.dataset as ds

    dataset = ds.dataset(tmp_path, format="parquet", partitioning="hive")
    assert dataset.count_rows() == 12000
    assert "District" in dataset.schema.names


# --- bad input: converts correctly, or fails naming file + line + the option that helps -------------


@pytest.mark.parametrize(
    ("name", "data", "rows", "values"),
    [
        ("crlf", b"a,b\r\n1,x\r\n3,y\r\n", 2, {"a": [1, 3], "b": ["x", "y"]}),
        ("bom", b"\xef\xbb\xbfa,b\n1,x\n", 1, {"a": [1], "b": ["x"]}),
        ("quoted newline", b'a,b\n1,"x\ny"\n2,"say ""hi"""\n', 2, {"b": ["x\ny", 'say "hi"']}),
        ("header only", b"a,b\n", 0, {"a": [], "b": []}),
        ("bare cr", b"a,b\r1,x\r3,y\r", 2, {"a": [1, 3], "b": ["x", "y"]}),
        ("bare cr, no last", b"a,b\r1,x\r3,y", 2, {"a": [1, 3], "b": ["x", "y"]}),
        ("blank first lines", b"\n\r\na,b\n1,x\n", 1, {"a": [1], "b": ["x"]}),
        (
            "stray quotes",
            b'a,b\n1,12" long\n2,E"(1 Hz)\n3,9"\n4,"x\ny"\n',
            4,
            {"b": ['12" long', 'E"(1 Hz)', '9"', "x\ny"]},
        ),
        ("leading zeros", b"zip\n08123\n00001\n10000\n", 3, {"zip": ["08123", "00001", "10000"]}),
        ("not booleans", b"a,b,c\nf,YES,1\nt,NO,0\n", 2, {"a": ["f", "t"], "b": ["YES", "NO"], "c": [1, 0]}),
        (
            "duplicate and blank names",
            b"a,a,,b\n1,2,3,4\n",
            1,
            {"a": [1], "a_2": [2], "column_3": [3], "b": [4]},
        ),
    ],
)
def test_awkward_but_valid_input_converts(
    tmp_path: Path, name: str, data: bytes, rows: int, values: dict
) -> None:
    write(tmp_path / "csv", "f.csv", data)
    convert(tmp_path / "csv", tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "f.parquet")
    assert table.num_rows == rows
    for column, expected in values.items():
        assert table.column(column).to_pylist() == expected


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "ragged",
            b"a,b\n1,2\n3,4,5\n6,7\n",
            r"f\.csv: line 3: expected 2 fields, found 3.*--on-bad-rows skip",
        ),
        (
            "invalid utf-8",
            b"a,b\n1,x\n2,\xff\xfe\n",
            r"f\.csv: line 3: column 'b'.*not valid UTF-8.*binary.*--on-bad-rows skip",
        ),
        ("unterminated quote", b'a,b\n1,2\n3,"x\n4,5\n', r"f\.csv: line 3: a quoted field is never closed"),
        ("empty", b"", r"f\.csv: the file is empty.*--on-bad-rows skip"),
    ],
)
def test_bad_input_fails_naming_file_line_and_option(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    write(tmp_path / "csv", "f.csv", data)
    with pytest.raises(CompressError, match=message):
        convert(tmp_path / "csv", tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.parquet")) if (tmp_path / "out").exists() else True
    assert (
        not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != ".labship-manifest.json"]
        if (tmp_path / "out").exists()
        else True
    )
    assert (tmp_path / "csv" / "f.csv").read_bytes() == data  # the source is never modified


def test_explicit_type_violation_names_line_and_option(tmp_path: Path) -> None:
    write(tmp_path / "csv", "f.csv", b"a,b\n1,2\n2,x\n")
    with pytest.raises(
        CompressError, match=r"line 3: column 'b': value 'x' is not a valid int32; change types\.b"
    ):
        convert(tmp_path / "csv", tmp_path / "out", types=(("b", "int32"),))


def test_skip_sets_bad_rows_aside_and_counts_them(tmp_path: Path) -> None:
    write(tmp_path / "csv", "f.csv", b"a,b\n1,x\n2,y,extra\n3,\xff\n4,z\n")
    report = convert(tmp_path / "csv", tmp_path / "out", on_bad_rows="skip")
    assert (report.rows, report.rejected_rows) == (2, 2)
    assert pq.read_table(tmp_path / "out" / "f.parquet").column("a").to_pylist() == [1, 4]
    side = (tmp_path / "out" / "_rejected" / "f.csv").read_bytes().splitlines()
    assert side[0] == b"a,b" and b"2,y,extra" in side and b"3,\xff" in side
    assert report.rejected_files == ["_rejected/f.csv"]


def test_truncated_gzip_names_the_last_intact_line(tmp_path: Path) -> None:
    body = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(200_000))
    packed = gzip.compress(body)
    write(tmp_path / "csv", "f.csv.gz", packed[: len(packed) // 2])
    with pytest.raises(
        CompressError, match=r"f\.csv\.gz: the compressed file is truncated or damaged after line \d+"
    ):
        convert(tmp_path / "csv", tmp_path / "out")
    assert not (tmp_path / "out" / "f.parquet").exists()


def test_a_killed_run_leaves_no_partial_file_and_the_rerun_completes(tmp_path: Path) -> None:
    source = tmp_path / "csv"
    write_traffic_csv(source, files=1, rows_per_file=150_000)
    target = tmp_path / "out"
    script = (
        "import sys; from pathlib import Path; from labship.compress import Settings, compress_dataset; "
        "compress_dataset('t', Path(sys.argv[1]), Path(sys.argv[2]), Settings(block_bytes=1 << 20, row_group_rows=4096), jobs=1)"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(source), str(target)])
    deadline = time.monotonic() + 60
    while not list(target.rglob(".*.labship-tmp")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    assert process.poll() is None, "the conversion finished before it could be killed; make the input bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(target.glob("*.parquet")), "no output under its final name"
    report = convert(source, target)
    assert report.converted == 1
    assert pq.read_metadata(target / "d07_station_5min_2024_01_01.parquet").num_rows == 150_000
    assert not list(target.rglob(".*.labship-tmp"))


# --- the task ----------------------------------------------------------------------------------


def experiment(tmp_path: Path, dataset: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "exp"\n\n[tool.labship]\nuplink-mbps = 24.5\n\n'
        '[tool.labship.datasets.pems]\nsource = "data/raw/pems"\ntarget = "data/processed/pems"\n'
        'timestamp-formats = ["%m/%d/%Y %H:%M:%S"]\n' + dataset
    )
    (tmp_path / "tasks.py").write_text("from labship.tasks import namespace\n\nns = namespace()\n")
    write_traffic_csv(tmp_path / "data" / "raw" / "pems", files=3, rows_per_file=1000)
    return tmp_path


def invoke(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INVOKE), "compress", *arguments], cwd=directory, capture_output=True, text=True, timeout=300
    )


def test_invoke_compress_prints_table_and_writes_json_report(tmp_path: Path) -> None:
    root = experiment(tmp_path)
    result = invoke(root, "--report", "report.json", "--columns", "Timestamp,Station,Total Flow")
    assert result.returncode == 0, result.stderr
    assert "pems" in result.stdout and "upload at 24.5 Mbit/s" in result.stdout
    report = json.loads((root / "report.json").read_text())["datasets"][0]
    outputs = sorted((root / "data" / "processed" / "pems").glob("*.parquet"))
    assert len(outputs) == 3 and report["rows"] == 3000
    assert report["parquet_bytes"] == sum(p.stat().st_size for p in outputs)
    assert report["csv_bytes"] == sum(
        p.stat().st_size for p in (root / "data" / "raw" / "pems").glob("*.csv")
    )
    assert report["columns_kept"] == 3 and report["columns_dropped"] == 49
    assert report["ratio"] == pytest.approx(report["csv_bytes"] / report["parquet_bytes"], rel=1e-3)
    assert report["upload_seconds_csv"] == pytest.approx(report["csv_bytes"] * 8 / 24.5e6, abs=0.1)
    again = invoke(root, "--report", "report.json", "--columns", "Timestamp,Station,Total Flow")
    assert json.loads((root / "report.json").read_text())["datasets"][0]["converted"] == 0, again.stderr


def test_invoke_compress_errors_exit_nonzero_with_the_message(tmp_path: Path) -> None:
    root = experiment(tmp_path)
    result = invoke(root, "--columns", "Nope")
    assert result.returncode == 1
    assert "unknown column(s) 'Nope'" in result.stderr and "available columns: Timestamp" in result.stderr
    assert "Traceback" not in result.stderr
    result = invoke(root, "--dataset", "other")
    assert result.returncode == 2 and "no [tool.labship.datasets.other]" in result.stderr
    write(root / "adhoc", "x.csv", b"a,b\n1,2\n1,2,3\n")
    result = invoke(root, "--source", "adhoc", "--target", "adhoc-out")
    assert result.returncode == 1 and "x.csv: line 3" in result.stderr
    result = invoke(root, "--source", "adhoc", "--target", "adhoc-out", "--on-bad-rows", "skip")
    assert result.returncode == 0 and (root / "adhoc-out" / "_rejected" / "x.csv").exists()
    help_text = subprocess.run(
        [str(INVOKE), "--help", "compress"], cwd=root, capture_output=True, text=True
    ).stdout
    for flag in (
        "--dataset",
        "--source",
        "--target",
        "--columns",
        "--drop",
        "--codec",
        "--level",
        "--on-bad-rows",
        "--partition-by",
        "--report",
        "--jobs",
    ):
        assert flag in help_text


def test_timestamp_formats_keep_iso_columns_parsed_too(tmp_path: Path) -> None:
    write(
        tmp_path / "csv",
        "f.csv",
        b"local,iso\n01/31/2024 10:00:00,2024-01-31 10:00:00\n02/01/2024 11:30:00,2024-02-01T11:30:00\n",
    )
    convert(tmp_path / "csv", tmp_path / "out", timestamp_formats=TIMESTAMP)
    table = pq.read_table(tmp_path / "out" / "f.parquet")
    assert pa.types.is_timestamp(table.schema.field("local").type) and pa.types.is_timestamp(
        table.schema.field("iso").type
    )
    assert table.column("local").to_pylist() == table.column("iso").to_pylist()
    assert table.column("local")[0].as_py().isoformat() == "2024-01-31T10:00:00"


def test_a_widened_column_widens_it_in_every_file_of_the_dataset(tmp_path: Path) -> None:
    # three files; only the last has text in `code`, far past its sampled head: after the second
    # round every output has the same (text) type, converted by two worker processes
    body = b"".join(b"%d,%d\n" % (i, i % 9) for i in range(900_000))
    for index in range(3):
        data = b"id,code\n" + body
        if index == 2:
            data = data.replace(b"\n800000,8\n", b"\n800000,X8\n")
        write(tmp_path / "csv", f"f{index}.csv.gz", gzip.compress(data, compresslevel=1))
    report = compress_dataset("test", tmp_path / "csv", tmp_path / "out", Settings(), jobs=2)
    assert report.converted == 3 and report.rows == 2_700_000
    assert any("code" in note for note in report.notes)
    types = {pq.read_schema(tmp_path / "out" / f"f{index}.parquet").field("code").type for index in range(3)}
    assert len(types) == 1 and pa.types.is_string(types.pop())
    assert pq.read_table(tmp_path / "out" / "f2.parquet").column("code")[800_000].as_py() == "X8"
    assert pq.read_table(tmp_path / "out" / "f0.parquet").column("code")[800_000].as_py() == "8"


@pytest.mark.parametrize(("codec", "level"), [("snappy", 3), ("none", 1), ("gzip", 99)])
def test_a_codec_level_that_cannot_work_is_refused_before_writing(
    tmp_path: Path, codec: str, level: int
) -> None:
    write(tmp_path / "csv", "f.csv", b"a\n1\n")
    with pytest.raises(CompressError, match=rf"codec '{codec}' level {level}: .*leave it unset"):
        convert(tmp_path / "csv", tmp_path / "out", codec=codec, level=level)
    assert not (tmp_path / "out").exists()


def test_pack_mb_from_the_dataset_table_and_the_flag(tmp_path: Path) -> None:
    root = experiment(tmp_path, "pack-mb = 1\n")
    result = invoke(root)
    assert result.returncode == 0, result.stderr
    target = root / "data" / "processed" / "pems"
    packed = sorted(path.relative_to(target).as_posix() for path in target.rglob("*.parquet"))
    assert packed and all(name.startswith("packs/pack-") for name in packed) and len(packed) < 3
    assert sum(pq.read_metadata(target / name).num_rows for name in packed) == 3000
    result = invoke(root, "--pack-mb", "0")  # the flag wins: one Parquet file per CSV again
    assert result.returncode == 0, result.stderr
    assert len(list(target.glob("*.parquet"))) == 3 and not list(target.rglob("packs/*.parquet"))
    result = invoke(root, "--pack-mb", "-5")
    assert result.returncode == 1 and "--pack-mb -5: give a whole number of MB" in result.stderr
