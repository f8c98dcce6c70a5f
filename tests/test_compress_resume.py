"""A failed run keeps what it finished; the re-run converts only what is left (`compress.resume`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labship.compress import MANIFEST, CompressError
from labship.compress.resume import RECORD, RESUME_DIR
from tests.test_compress_safety import convert

GOOD = "id,name,score\n" + "".join(f"{i},n{i},{i * 0.5}\n" for i in range(200))
BAD = "id,name,score\n1,x,0.5\n2,y\n"  # a ragged row on line 3


def parquet_files(target: Path) -> dict[str, bytes]:
    return {
        path.relative_to(target).as_posix(): path.read_bytes()
        for path in sorted(target.rglob("*.parquet"))
        if RESUME_DIR not in path.parts
    }


@pytest.fixture
def failed(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A dataset converted once, then changed so that a.csv converts and b.csv fails."""
    source, target = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    for name in ("a", "b", "c"):
        (source / f"{name}.csv").write_text(GOOD)
    convert(source, target)
    before = parquet_files(target)
    (source / "a.csv").write_text(GOOD.replace("n7,", "seven,"))
    (source / "b.csv").write_text(BAD)
    with pytest.raises(CompressError, match=r"b\.csv.*line 3"):
        convert(source, target)
    return source, target, before


def test_a_failed_run_keeps_the_previous_outputs_and_what_it_finished(
    failed: tuple[Path, Path, dict[str, bytes]],
) -> None:
    _source, target, before = failed
    assert parquet_files(target) == before  # nothing published
    record = json.loads((target / RESUME_DIR / RECORD).read_text())
    assert set(record["files"]) == {"a.csv"}
    assert (target / RESUME_DIR / "a.parquet").is_file()
    assert not [path for path in target.rglob(".*.labship-tmp") if path.is_file()]


def test_the_re_run_converts_only_what_is_left_and_matches_a_fresh_run(
    failed: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    source, target, _before = failed
    (source / "b.csv").write_text(GOOD.replace("n9,", "nine,"))
    report = convert(source, target)
    assert report.converted == 2  # type: ignore[attr-defined]
    assert any(note.startswith("resumed: 1 files") for note in report.notes)  # type: ignore[attr-defined]
    assert not (target / RESUME_DIR).exists()
    fresh = tmp_path / "fresh"
    convert(source, fresh)
    assert parquet_files(target) == parquet_files(fresh)
    manifest = json.loads((target / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["a.csv", "b.csv", "c.csv"]


def test_a_kept_output_whose_source_changed_again_is_converted_again(
    failed: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    source, target, _before = failed
    (source / "a.csv").write_text(GOOD.replace("n8,", "eight,"))
    (source / "b.csv").write_text(GOOD)
    report = convert(source, target)
    assert not any(note.startswith("resumed") for note in report.notes)  # type: ignore[attr-defined]
    fresh = tmp_path / "fresh"
    convert(source, fresh)
    assert parquet_files(target) == parquet_files(fresh)


def test_a_record_naming_paths_outside_its_directory_is_ignored(
    failed: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    source, target, _before = failed
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    record_path = target / RESUME_DIR / RECORD
    record = json.loads(record_path.read_text())
    record["files"]["a.csv"]["result"]["staged"] = [["../../precious.txt", "a.parquet"]]
    record_path.write_text(json.dumps(record))
    (source / "b.csv").write_text(GOOD)
    report = convert(source, target)
    assert outside.read_text() == "keep me"
    assert not any(note.startswith("resumed") for note in report.notes)  # type: ignore[attr-defined]
    fresh = tmp_path / "fresh"
    convert(source, fresh)
    assert parquet_files(target) == parquet_files(fresh)


def test_the_kept_directory_is_ignored_by_dvc_and_not_cleaned_as_a_temporary(
    failed: tuple[Path, Path, dict[str, bytes]],
) -> None:
    from labship._fs import clean_temporaries

    _source, target, _before = failed
    clean_temporaries(target)
    assert (target / RESUME_DIR / "a.parquet").is_file()
    ignore = (Path(__file__).parent.parent / "template" / ".dvcignore").read_text().splitlines()
    assert any(RESUME_DIR.endswith(pattern.lstrip("*")) for pattern in ignore if pattern.startswith("*."))
    assert os.path.basename(RESUME_DIR).startswith(".")
