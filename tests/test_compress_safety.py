"""Target safety of labship.compress: what a user checks after a run that went wrong."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from labship.compress import MANIFEST, CompressError, Overrides, Settings, compress_dataset, run
from labship.compress.resume import RESUME_DIR


def convert(source: Path, target: Path, **settings: object) -> object:
    return compress_dataset("t", source, target, Settings(**settings), jobs=1)  # type: ignore[arg-type]


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def converted(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.csv").write_bytes(b"id,name\n1,x\n2,y\n")
    (source / "b.csv").write_bytes(b"id,name\n3,z\n")
    convert(source, tmp_path / "out")
    return source, tmp_path / "out"


@pytest.mark.parametrize("where", ["same", "inside", "dotdot", "ancestor"])
def test_a_target_overlapping_the_source_is_refused(tmp_path: Path, where: str) -> None:
    source = tmp_path / "data" / "src"
    source.mkdir(parents=True)
    (source / "a.csv").write_bytes(b"a\n1\n")
    target = {
        "same": source,
        "inside": source / "out",
        "dotdot": source / "x" / ".." / ".",
        "ancestor": tmp_path / "data",
    }[where]
    with pytest.raises(
        CompressError, match=r"target .* (is the source|is inside the source|contains the source)"
    ):
        convert(source, target)
    assert files_of(tmp_path) == {"data/src/a.csv": b"a\n1\n"}


@pytest.mark.parametrize(
    "settings",
    [
        {"columns": ("NoSuchColumn",)},
        {"types": (("id", "nonsense"),)},
        {"codec": "gzip", "level": 99},
        {"on_bad_rows": "maybe"},
    ],
)
def test_a_run_with_failing_settings_leaves_the_previous_outputs_intact(
    converted: tuple[Path, Path], settings: dict
) -> None:
    source, target = converted
    before = files_of(target)
    with pytest.raises(CompressError):
        convert(source, target, **settings)
    assert files_of(target) == before


def test_a_run_failing_on_one_file_leaves_every_previous_output_intact(converted: tuple[Path, Path]) -> None:
    source, target = converted
    before = files_of(target)
    (source / "a.csv").write_bytes(b"id,name\n1,x\n2,y\n4,w\n")  # good: would be replaced
    (source / "b.csv").write_bytes(b"id,name\n3,z,extra\n")  # bad
    with pytest.raises(CompressError, match=r"b\.csv: line 2"):
        convert(source, target)
    published = {name: data for name, data in files_of(target).items() if not name.startswith(RESUME_DIR)}
    assert published == before  # the finished a.parquet waits in RESUME_DIR for the re-run
    (source / "b.csv").write_bytes(b"id,name\n3,z\n")
    assert convert(source, target).rows == 4  # type: ignore[attr-defined]
    assert not (target / RESUME_DIR).exists()


def test_manifest_paths_outside_the_target_are_never_removed(converted: tuple[Path, Path]) -> None:
    source, target = converted
    victim = target.parent / "precious.txt"
    victim.write_text("keep me")
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["files"]["a.csv"]["outputs"].append("../precious.txt")
    manifest["files"]["gone.csv"] = dict(
        manifest["files"]["a.csv"], outputs=["../precious.txt", "/etc/hostname"]
    )
    (target / MANIFEST).write_text(json.dumps(manifest))
    (source / "a.csv").write_bytes(b"id,name\n9,q\n")
    convert(source, target)
    assert victim.read_text() == "keep me"
    assert pq.read_table(target / "a.parquet").column("id").to_pylist() == [9]


def test_leftover_temporaries_are_removed_and_use_the_one_dvc_ignored_pattern(
    converted: tuple[Path, Path],
) -> None:
    source, target = converted
    (target / "_rejected").mkdir()
    leftovers = [target / ".a.parquet.labship-tmp", target / "_rejected" / ".b.csv.labship-tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"partial")
    (source / "b.csv").write_bytes(b"id,name\n3,z\n4,w,extra\n")
    convert(source, target, on_bad_rows="skip")
    assert not any(leftover.exists() for leftover in leftovers)
    assert (target / "_rejected" / "b.csv").exists()
    assert not [p for p in target.rglob("*") if p.name.startswith(".") and p.name != MANIFEST]
    ignored = (Path(__file__).parents[1] / "template" / ".dvcignore").read_text().splitlines()
    assert "*.labship-tmp" in ignored and MANIFEST in ignored


def test_a_fifo_and_broken_links_are_skipped_with_a_note(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "good.csv").write_bytes(b"a\n1\n")
    os.mkfifo(source / "pipe.csv")
    (source / "dangling.csv").symlink_to(source / "missing.csv")
    (source / "loop.csv").symlink_to(source / "loop.csv")
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(convert(source, tmp_path / "out")), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "a FIFO source hung the run"
    report = result[0]
    assert report.converted == 1  # type: ignore[attr-defined]
    notes = "\n".join(report.notes)  # type: ignore[attr-defined]
    assert "pipe.csv: skipped: not a regular file" in notes
    assert "dangling.csv: skipped" in notes and "loop.csv: skipped" in notes


def test_os_errors_become_messages_naming_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.csv").write_bytes(b"a\n1\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CompressError, match=rf"target {blocker}/out: cannot write there"):
        convert(source, blocker / "out")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    with pytest.raises(CompressError, match=r"--report .*reports: is a directory"):
        run(source=Path("src"), target=Path("out"), report_path=tmp_path / "reports", progress=False)
    with pytest.raises(CompressError, match=r"--report .*file/r\.json: cannot write the report"):
        run(source=Path("src"), target=Path("out"), report_path=blocker / "r.json", progress=False)


def test_control_characters_in_source_text_are_escaped_in_messages(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.csv").write_bytes(b"id,\x1b[31mred\n1,x\n2,\x1b]0;pwned\x07,extra\n")
    with pytest.raises(CompressError) as raised:
        convert(source, tmp_path / "out")
    assert "line 3" in str(raised.value)
    assert "\x1b" not in str(raised.value) and "\x07" not in str(raised.value)
    with pytest.raises(CompressError) as raised:
        convert(source, tmp_path / "out", columns=("nope",))
    assert "\x1b" not in str(raised.value) and "\\x1b[31mred" in str(raised.value)


def test_outputs_follow_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.csv").write_bytes(b"a\n1\n2,3\n")
    previous = os.umask(0o027)
    try:
        convert(source, tmp_path / "out", on_bad_rows="skip")
        monkeypatch.chdir(tmp_path)
        run(
            source=Path("src"),
            target=Path("out2"),
            overrides=Overrides(on_bad_rows="skip"),
            report_path=tmp_path / "r.json",
            progress=False,
        )
    finally:
        os.umask(previous)
    written = [
        tmp_path / "out" / "a.parquet",
        tmp_path / "out" / MANIFEST,
        tmp_path / "out" / "_rejected" / "a.csv",
        tmp_path / "r.json",
    ]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
