"""The quickstart's demo (`bash dev.sh demo`), data steps only: the image steps are the e2e tests'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_scaffolds_compresses_pushes_and_pulls_identical_data(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "demo", "--dest", str(demo), "--no-docker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "labship compress" in output  # the report table of `invoke compress`
    assert "Stage 'compress' didn't change, skipping" in output  # the second `dvc repro`
    assert "data/processed/pems: 4 files, identical in the clone" in output
    assert "data/raw/pems: 4 files, identical in the clone" in output
    assert (tmp_path / "demo-dvc-storage" / "files" / "md5").is_dir()
    assert sorted(p.name for p in (tmp_path / "demo-clone" / "data" / "processed" / "pems").glob("*.parquet"))
