"""`invoke compress --cluster`: the same conversion on a real Dask cluster (2 worker processes on
127.0.0.1) writes the bytes a local run writes, survives a killed worker, and reports bad input the
way a local run does."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
from pathlib import Path

import pytest

from labship.compress import CompressError, Settings, compress_dataset
from labship.compress import cluster as cluster_module
from labship.compress.report import ProgressHook

distributed = pytest.importorskip("distributed")

FILES = 6


def write_sensors(directory: Path, *, files: int = FILES, rows: int = 8_000, seed: int = 7) -> Path:
    """Deterministic sensor-like CSV files: ids with leading zeros, timestamps, floats, text."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = random.Random(seed)
    for index in range(files):
        lines = ["station,time,flow,speed,lane_type"]
        for row in range(rows):
            lines.append(
                f"{generator.randrange(1, 999):05d},2024-01-{1 + row % 28:02d}T{row % 24:02d}:00:00,"
                f"{generator.randrange(0, 900)},{generator.uniform(5, 80):.1f},{generator.choice('MLHO')}"
            )
        (directory / f"day{index:02d}.csv").write_text("\n".join(lines) + "\n")
    return directory


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (the manifest included) by relative path."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def sensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sensors(tmp_path_factory.mktemp("sensors") / "raw")


@pytest.fixture(scope="module")
def local_output(sensors: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    target = tmp_path_factory.mktemp("local") / "out"
    compress_dataset("sensors", sensors, target, Settings(), jobs=1)
    return tree(target)


def test_cluster_run_writes_the_bytes_of_a_local_run(
    dask_cluster: object, sensors: Path, local_output: dict[str, bytes], tmp_path: Path
) -> None:
    target = tmp_path / "out"
    report = compress_dataset("sensors", sensors, target, Settings(), cluster=dask_cluster.scheduler_address)
    assert tree(target) == local_output
    assert report.converted == FILES
    # both workers took part, and the report says how much each converted
    assert len(report.workers) == 2
    assert sum(worker["files"] for worker in report.workers.values()) == FILES
    assert sum(worker["csv_bytes"] for worker in report.workers.values()) == report.csv_bytes


def test_progress_counts_the_bytes_converted_on_the_workers_as_they_go(
    dask_cluster: object, sensors: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "REPORT_EVERY_S", 0.0)  # an event per block (sent with the task)
    advances: list[int] = []

    class Record(ProgressHook):
        def advance(self, count: int) -> None:
            advances.append(count)

    report = compress_dataset(
        "sensors",
        sensors,
        tmp_path / "out",
        Settings(block_bytes=32 << 10),  # ~10 blocks per file
        cluster=dask_cluster.scheduler_address,
        progress=Record(),
    )
    assert sum(advances) == report.csv_bytes  # exact: nothing lost, nothing counted twice
    assert len(advances) > FILES  # the bar moved within files, not only when each one finished


class KillOneWorker(ProgressHook):
    """A progress hook that SIGKILLs one worker process of the cluster at the first progress report
    (the nanny restarts it; its tasks run elsewhere)."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        with Client(address, set_as_default=False) as client:
            self.victim = sorted(client.run(os.getpid).values())[0]
        self.killed = threading.Event()

    def advance(self, count: int) -> None:
        if not self.killed.is_set():
            self.killed.set()
            os.kill(self.victim, signal.SIGKILL)


def test_a_killed_worker_loses_no_file_and_leaves_nothing_partial(
    dask_cluster: object, sensors: Path, local_output: dict[str, bytes], tmp_path: Path
) -> None:
    killer = KillOneWorker(dask_cluster.scheduler_address)  # type: ignore[attr-defined]
    killed = killer.killed
    target = tmp_path / "out"
    try:
        compress_dataset(
            "sensors",
            sensors,
            target,
            Settings(),
            cluster=dask_cluster.scheduler_address,
            progress=killer,
        )
    except CompressError as error:  # allowed: the run may fail, but only naming a file
        assert "sensors/raw/day" in str(error) or ".csv" in str(error)
    assert killed.is_set()
    compress_dataset("sensors", sensors, target, Settings(), cluster=dask_cluster.scheduler_address)
    assert tree(target) == local_output  # complete, identical, no temporary left behind


def test_bad_input_on_a_worker_reads_as_in_a_local_run(dask_cluster: object, tmp_path: Path) -> None:
    source = write_sensors(tmp_path / "raw", files=2, rows=500)
    with (source / "day01.csv").open("a") as handle:
        handle.write("00042,2024-01-02T03:00:00,12,not-a-speed,M,extra\n")
    messages = []
    for cluster in ("local", dask_cluster.scheduler_address):
        with pytest.raises(CompressError) as caught:
            compress_dataset(
                "sensors", source, tmp_path / f"out-{len(messages)}", Settings(), cluster=cluster
            )
        messages.append(str(caught.value))
    assert "day01.csv" in messages[0]
    assert messages[0] == messages[1]


def test_an_unreachable_scheduler_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 2)
    source = write_sensors(tmp_path / "raw", files=1, rows=10)
    with pytest.raises(CompressError, match=r"cannot reach the Dask scheduler.*scheduler is running"):
        compress_dataset("sensors", source, tmp_path / "out", Settings(), cluster="tcp://127.0.0.1:9")


@pytest.mark.parametrize("address", ["scheduler:8786", "--help", ""])
def test_an_address_that_is_not_one_is_refused(address: str) -> None:
    with pytest.raises(CompressError, match="Dask scheduler address"):
        cluster_module.check_address(address)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
