"""labship._fs: atomic writes with the intended mode, whatever was left on disk before."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labship._fs import TEMP_SUFFIX, atomic_file, clean_temporaries, write_atomic, write_secret
from labship.errors import EXIT_CONFIG, LabshipError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_is_0600_even_over_a_world_readable_file_and_a_planted_temporary(tmp_path: Path) -> None:
    target = tmp_path / "config.local"
    target.write_text("old")
    target.chmod(0o644)
    planted = tmp_path / ".config.local.tmp"  # the fixed name older versions used
    planted.write_text("attacker")
    planted.chmod(0o666)
    write_secret(target, "secret=1\n")
    assert target.read_text() == "secret=1\n" and mode(target) == 0o600
    assert planted.read_text() == "attacker"  # never opened, never reused


def test_other_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write_atomic(tmp_path / "report.json", "{}\n")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "report.json") == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_file(target) as handle:
        handle.write(b"half")
        raise RuntimeError("killed")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_clean_temporaries_removes_only_labship_leftovers(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    leftover = tmp_path / "sub" / f".x.parquet.abc123{TEMP_SUFFIX}"
    leftover.write_bytes(b"partial")
    keep = tmp_path / "sub" / "x.parquet"
    keep.write_bytes(b"whole")
    assert clean_temporaries(tmp_path) == 1
    assert not leftover.exists() and keep.exists()


def test_errors_carry_their_exit_code() -> None:
    from labship.config import ConfigError
    from labship.data import DataError

    assert ConfigError("x").exit_code == EXIT_CONFIG
    assert DataError("x", 4).exit_code == 4
    assert LabshipError("x", exit_code=3).exit_code == 3 and LabshipError("x").exit_code == 1
