"""Shared test helpers: when CI sets LABSHIP_REQUIRE_ALL=1, a missing tool fails instead of skipping."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("LABSHIP_REQUIRE_ALL") == "1"


def require(ok: bool, reason: str) -> None:
    """Skip the test when `ok` is false, or fail it when LABSHIP_REQUIRE_ALL=1 (CI has every part)."""
    if ok:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by LABSHIP_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)


def import_tiny_image(tag: str) -> None:
    """Make `tag`: a one-file image from `docker import` (no registry, no shell: enough for metadata)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"hi\n"))
    subprocess.run(["docker", "import", "-", tag], input=buffer.getvalue(), capture_output=True, check=True)


@pytest.fixture(scope="session")
def committed_experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed experiment with raw CSV tracked and compressed, built once per test run. Its DVC
    remote is `../remote`, so each copy (and clone) uses the remote next to it."""
    from tests.data_servers import make_experiment

    return make_experiment(tmp_path_factory.mktemp("data") / "exp", "../remote")


@pytest.fixture
def experiment(committed_experiment: Path, tmp_path: Path) -> Path:
    """A private copy of `committed_experiment` for one test."""
    copy = tmp_path / "exp"
    shutil.copytree(committed_experiment, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    """A real Dask cluster on 127.0.0.1: two worker processes of one thread each."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster
