"""The packed layout (`pack-mb`): many small CSV files into few Parquet files, same rows, incremental."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labship.compress import CompressError, Settings, compress_dataset
from labship.compress.packing import group
from labship.compress.resume import RESUME_DIR

PACK = 64 << 10  # 64 KB of CSV per pack: ~6 of the 10 KB files below


def make_sources(directory: Path, count: int, *, seed: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for index in range(count):
        rows = "".join(
            f"{index},{row},{rng.randint(0, 99999)},{rng.choice(['JFK', 'LGA', 'EWR'])},{rng.random():.4f}\n"
            for row in range(300)
        )
        (directory / f"day-{index:03d}.csv").write_text("file,row,value,origin,share\n" + rows)
    return directory


def convert(source: Path, target: Path, *, pack_bytes: int = PACK, jobs: int = 1) -> object:
    return compress_dataset("t", source, target, Settings(pack_bytes=pack_bytes), jobs=jobs)


def table_of(target: Path) -> pa.Table:
    tables = [pq.read_table(path) for path in sorted(target.rglob("*.parquet"))]
    table = pa.concat_tables(tables)
    columns = {
        name: column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return pa.table(columns).sort_by([("file", "ascending"), ("row", "ascending")])


def outputs(target: Path) -> dict[str, bytes]:
    """The published Parquet files (not what a failed run kept for the next one)."""
    return {
        path.relative_to(target).as_posix(): path.read_bytes()
        for path in sorted(target.rglob("*.parquet"))
        if RESUME_DIR not in path.parts
    }


def test_packed_output_holds_the_same_rows_in_few_bounded_files(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "src", 40)
    convert(source, tmp_path / "files", pack_bytes=0)
    report = convert(source, tmp_path / "packed", jobs=2)
    per_file, packed = outputs(tmp_path / "files"), outputs(tmp_path / "packed")
    assert len(per_file) == 40
    assert 2 <= len(packed) <= 15 and all(name.startswith("packs/pack-") for name in packed)
    assert table_of(tmp_path / "packed").equals(table_of(tmp_path / "files"))
    assert report.rows == 40 * 300  # type: ignore[attr-defined]
    sizes = {path.name: path.stat().st_size for path in source.iterdir()}
    for pack in group(sizes, pack_bytes=PACK):
        assert sum(sizes[name] for name in pack.members) < 2 * PACK + max(sizes.values())
    # members are written in path order: each pack is a run of consecutive files
    for name in packed:
        files = pq.read_table(tmp_path / "packed" / name).column("file").to_pylist()
        assert files == sorted(files) and sorted(set(files)) == list(range(min(files), max(files) + 1))


def test_packs_are_deterministic(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "src", 25)
    convert(source, tmp_path / "one", jobs=2)
    convert(source, tmp_path / "two", jobs=1)
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")


def test_a_change_rewrites_only_its_pack_and_a_new_file_few(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "src", 40)
    target = tmp_path / "out"
    convert(source, target)
    before = outputs(target)
    assert convert(source, target).converted == 0  # type: ignore[attr-defined]
    assert outputs(target) == before

    inodes = {name: (target / name).stat().st_ino for name in before}
    changed = source / "day-017.csv"
    changed.write_text(changed.read_text().replace("\n17,0,", "\n17,0,1", 1))
    report = convert(source, target)
    after = outputs(target)
    assert set(after) == set(before)  # same membership, same names
    assert sum(after[name] != before[name] for name in after) == 1
    rewritten = [name for name in after if (target / name).stat().st_ino != inodes[name]]
    assert len(rewritten) == 1 and after[rewritten[0]] != before[rewritten[0]]
    assert report.converted == len(pq.read_table(target / rewritten[0]).column("file").unique())  # type: ignore[attr-defined]

    make_sources(tmp_path / "extra", 41, seed=1)
    os.replace(tmp_path / "extra" / "day-040.csv", source / "day-020b.csv")
    convert(source, target)
    added = outputs(target)
    assert len(set(added) - set(after)) <= 2 and len(set(after) - set(added)) <= 2
    assert table_of(target).num_rows == 41 * 300
    assert not [path for path in target.rglob("*") if ".tmp" in path.name]


def test_removing_a_file_rewrites_its_pack_and_removes_the_old_one(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "src", 30)
    target = tmp_path / "out"
    convert(source, target)
    (source / "day-011.csv").unlink()
    convert(source, target)
    assert table_of(target).num_rows == 29 * 300
    assert 11 not in set(table_of(target).column("file").to_pylist())


def test_a_failed_packed_run_leaves_the_previous_packs(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "src", 30)
    target = tmp_path / "out"
    convert(source, target)
    before = outputs(target)
    (source / "day-013.csv").write_text("file,row,value,origin,share\n13,0,1,JFK\n13,1,2,JFK,0.1,extra\n")
    with pytest.raises(CompressError, match=r"day-013\.csv"):
        convert(source, target)
    assert outputs(target) == before


def test_packing_and_partitioning_are_refused_together(tmp_path: Path) -> None:
    source = make_sources(tmp_path / "src", 2)
    with pytest.raises(CompressError, match="pack-mb and partition-by cannot be combined"):
        compress_dataset("t", source, tmp_path / "out", Settings(pack_bytes=PACK, partition_by=("origin",)))
    assert not (tmp_path / "out").exists()


def test_cut_points_do_not_move_when_a_file_is_added() -> None:
    sizes = {f"f{index:04d}.csv": 10_000 for index in range(500)}
    packs = group(sizes, pack_bytes=80_000)
    grown = group({**sizes, "f0250a.csv": 10_000}, pack_bytes=80_000)
    assert 40 <= len(packs) <= 100
    assert len({pack.name for pack in packs} - {pack.name for pack in grown}) <= 2


def test_packed_on_a_dask_cluster_is_byte_identical_to_a_local_run(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    source = make_sources(tmp_path / "src", 20)
    convert(source, tmp_path / "local")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        report = compress_dataset(
            "t", source, tmp_path / "cluster", Settings(pack_bytes=PACK), cluster=cluster.scheduler_address
        )
    assert outputs(tmp_path / "cluster") == outputs(tmp_path / "local")
    assert sum(item["csv_bytes"] for item in report.workers.values()) == sum(  # type: ignore[attr-defined]
        path.stat().st_size for path in source.iterdir()
    )


@pytest.mark.parametrize("pack_bytes", [PACK, 0])
def test_an_empty_file_skipped_once_does_not_make_every_run_convert_again(
    tmp_path: Path, pack_bytes: int
) -> None:
    source = make_sources(tmp_path / "src", 12)
    (source / "day-005b.csv").write_bytes(b"")  # inside a pack, between day-005 and day-006
    target = tmp_path / "out"
    settings = Settings(pack_bytes=pack_bytes, on_bad_rows="skip")
    first = compress_dataset("t", source, target, settings, jobs=1)
    assert any("day-005b.csv: empty file skipped" in note for note in first.notes)
    inodes = {path: path.stat().st_ino for path in target.rglob("*.parquet")}
    again = compress_dataset("t", source, target, settings, jobs=1)
    assert again.converted == 0 and again.notes == []
    assert {path: path.stat().st_ino for path in target.rglob("*.parquet")} == inodes
    assert again.rows == 12 * 300
    (source / "day-005b.csv").write_text("file,row,value,origin,share\n99,0,1,JFK,0.5\n")
    third = compress_dataset("t", source, target, settings, jobs=1)
    assert third.converted >= 1 and table_of(target).num_rows == 12 * 300 + 1
