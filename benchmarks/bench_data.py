"""Push / pull times per DVC remote kind (local directory, SSH, S3 on moto) for the CSV and the
Parquet version of the same sample data, through labship.data (what `invoke data.push/pull` run).

    .venv/bin/python benchmarks/bench_data.py               # ~40 MB of CSV (20 files)
    .venv/bin/python benchmarks/bench_data.py --files 5     # quick look

Data: `labship.sample` CSV (all 52 columns), and its Parquet made by `invoke compress` (labship's
engine, default zstd, every column kept), once per CSV file ("Parquet") and once in the packed
layout (`--pack-mb`, "packed": the same rows in a few files). Each version lives in its own DVC repository
(`dvc add`). Servers run on 127.0.0.1 and share the machine's cores with the client, so network
latency and bandwidth are not part of these numbers: the transfer estimate at the experiment's
uplink is printed next to them. Each timing is the median of --repeat runs; before each push the
remote is emptied, before each pull the cache and workspace copy are removed. "no-op" is a push
with nothing to send (the cost of the status checks alone).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labship import data  # noqa: E402
from labship.report import format_bytes, format_duration, transfer_seconds  # noqa: E402
from labship.sample import write_traffic_csv  # noqa: E402
from tests.data_servers import (  # noqa: E402
    VENV_BIN,
    MotoServer,
    Relay,
    SshServer,
    make_sshd,
    run,
    sshd_available,
    start_moto,
    stop,
)

UPLINK_MBPS = 24.5
PYPROJECT = """\
[project]
name = "bench"

[tool.labship]
uplink-mbps = 24.5

[tool.labship.datasets.pems]
source = "data/raw/pems"
target = "data/processed/pems"
"""


def build_versions(work: Path, files: int, rows: int, pack_mb: int) -> dict[str, Path]:
    """Three DVC repositories: `csv` tracks the raw CSV directory, `parquet` its compressed copy (one
    file per CSV), `packed` the packed layout."""
    source = work / "source"
    source.mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "tasks.py").write_text("from labship.tasks import namespace\n\nns = namespace()\n")
    write_traffic_csv(source / "data" / "raw" / "pems", files=files, rows_per_file=rows)
    run(source, str(VENV_BIN / "invoke"), "compress", "--dataset", "pems")
    run(
        source,
        str(VENV_BIN / "invoke"),
        "compress",
        "--source=data/raw/pems",
        "--target=data/processed/packed",
        f"--pack-mb={pack_mb}",
    )
    repos = {}
    versions = (
        ("csv", "data/raw/pems"),
        ("parquet", "data/processed/pems"),
        ("packed", "data/processed/packed"),
    )
    for version, directory in versions:
        repo = work / version
        repo.mkdir()
        shutil.copytree(source / directory, repo / "data")
        run(repo, "git", "init", "-q")
        run(repo, str(VENV_BIN / "dvc"), "init", "-q")
        run(repo, str(VENV_BIN / "dvc"), "add", "-q", "data")
        repos[version] = repo
    return repos


def timed(action: Callable[..., object], repo: Path, kind: str) -> float:
    started = time.perf_counter()
    action(repo, remote=kind, uplink_mbps=UPLINK_MBPS)
    return time.perf_counter() - started


def measure(
    repos: dict[str, Path], kind: str, empty_remote: Callable[[str], None], repeat: int
) -> dict[str, dict[str, float]]:
    """Median push / no-op / pull seconds per version, CSV and Parquet interleaved in every round so
    that load from other processes on the machine weighs on both alike."""
    timings: dict[str, dict[str, list[float]]] = {v: {"push": [], "no-op": [], "pull": []} for v in repos}
    for _ in range(repeat):
        for version, repo in repos.items():
            empty_remote(version)
            timings[version]["push"].append(timed(data.push, repo, kind))
            timings[version]["no-op"].append(timed(data.push, repo, kind))
            shutil.rmtree(repo / ".dvc" / "cache")
            shutil.rmtree(repo / "data")
            timings[version]["pull"].append(timed(data.pull, repo, kind))
    return {
        version: {action: statistics.median(values) for action, values in actions.items()}
        for version, actions in timings.items()
    }


def size_of(directory: Path) -> tuple[int, int]:
    files = [path for path in directory.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20, help="sample CSV files (default 20)")
    parser.add_argument("--rows", type=int, default=13_000, help="rows per file (default 13000, ~2 MB)")
    parser.add_argument("--pack-mb", type=int, default=16, help="pack size of the packed version (MB of CSV)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the median is shown")
    parser.add_argument(
        "--uplink-repeat", type=int, default=2, help="runs through the uplink-capped relay (0: skip them)"
    )
    return parser.parse_args()


def add_remotes(repos: dict[str, Path], work: Path, moto: MotoServer, ssh: SshServer | None) -> None:
    """The loopback remotes of every version: a local directory, sshd (if installed), moto S3."""
    for version, repo in repos.items():
        data.set_remote(repo, str(work / f"remote-{version}"), name="local")
        if ssh is not None:
            data.set_remote(repo, f"{ssh.url()}/{version}", name="ssh", keyfile=str(ssh.key))
        data.set_remote(
            repo,
            f"s3://{moto.bucket}/{version}",
            name="s3-moto",
            endpoint_url=moto.endpoint,
            access_key_id="bench",
            secret_access_key="bench-secret",
        )


def empty_bucket(moto: MotoServer, prefix: str) -> None:
    client = moto.client()
    for key in moto.objects(prefix + "/"):
        client.delete_object(Bucket=moto.bucket, Key=key)


def loopback_emptiers(
    work: Path, moto: MotoServer, ssh: SshServer | None
) -> dict[str, Callable[[str], None]]:
    """Per remote name, how to empty a version's storage before a push."""
    emptiers: dict[str, Callable[[str], None]] = {
        "local": lambda version: shutil.rmtree(work / f"remote-{version}", ignore_errors=True),
        "s3-moto": lambda version: empty_bucket(moto, version),
    }
    if ssh is not None:
        storage = ssh.storage
        emptiers["ssh"] = lambda version: shutil.rmtree(storage / version, ignore_errors=True)
    return emptiers


def linked_remotes(
    repos: dict[str, Path], moto: MotoServer, ssh: SshServer | None
) -> dict[str, tuple[str, Callable[[str], None]]]:
    """The same servers behind a relay capped at the uplink: label -> (remote name, emptier)."""
    link = f"{UPLINK_MBPS:g} Mbit/s"
    moto_link = Relay(moto.port, mbps=UPLINK_MBPS)
    for version, repo in repos.items():
        data.set_remote(
            repo,
            f"s3://{moto.bucket}/{version}-link",
            name="s3-link",
            endpoint_url=f"http://127.0.0.1:{moto_link.port}",
            access_key_id="bench",
            secret_access_key="bench-secret",
        )
    linked = {f"s3 {link}": ("s3-link", lambda version: empty_bucket(moto, f"{version}-link"))}
    if ssh is not None:
        ssh_link = Relay(ssh.port, mbps=UPLINK_MBPS)
        for version, repo in repos.items():
            data.set_remote(
                repo, f"{ssh.url(ssh_link.port)}/{version}-link", name="ssh-link", keyfile=str(ssh.key)
            )
        storage = ssh.storage
        linked[f"ssh {link}"] = (
            "ssh-link",
            lambda version: shutil.rmtree(storage / f"{version}-link", ignore_errors=True),
        )
    return linked


def measure_all(
    repos: dict[str, Path], work: Path, options: argparse.Namespace
) -> tuple[dict[tuple[str, str], dict[str, float]], bool]:
    """Medians per (remote label, version); and whether sshd was available."""
    moto: MotoServer = start_moto()
    ssh: SshServer | None = make_sshd(work / "sshd") if sshd_available() else None
    results: dict[tuple[str, str], dict[str, float]] = {}
    try:
        moto.client().create_bucket(Bucket=moto.bucket)
        if ssh is not None:
            ssh.start()
        add_remotes(repos, work, moto, ssh)
        plan = {
            kind: (kind, emptier, options.repeat)
            for kind, emptier in loopback_emptiers(work, moto, ssh).items()
        }
        if options.uplink_repeat > 0:
            for label, (name, emptier) in linked_remotes(repos, moto, ssh).items():
                plan[label] = (name, emptier, options.uplink_repeat)
        for label, (name, emptier, repeat) in plan.items():
            for version, medians in measure(repos, name, emptier, repeat).items():
                results[(label, version)] = medians
    finally:
        stop(moto.process)
        if ssh is not None:
            ssh.stop()
    return results, ssh is not None


def print_results(
    results: dict[tuple[str, str], dict[str, float]], sizes: dict[str, tuple[int, int]], had_ssh: bool
) -> None:
    print()
    header = (
        f"{'remote':20} {'action':6} {'CSV':>8} {'Parquet':>8} {'packed':>8} {'CSV/Parquet':>11} "
        f"{'Parquet/packed':>14}"
    )
    print(header)
    print("-" * len(header))
    for kind in dict.fromkeys(kind for kind, _ in results):
        for action in ("push", "pull", "no-op"):
            csv_time, parquet_time, packed_time = (
                results[(kind, version)][action] for version in ("csv", "parquet", "packed")
            )
            print(
                f"{kind:20} {action:6} {csv_time:7.2f}s {parquet_time:7.2f}s {packed_time:7.2f}s "
                f"{csv_time / parquet_time:10.1f}x {parquet_time / packed_time:13.1f}x"
            )
    if not had_ssh:
        print("ssh: skipped (/usr/sbin/sshd not installed)")
    csv_bytes, parquet_bytes = sizes["csv"][1], sizes["parquet"][1]
    print(
        f"\nsize: CSV {format_bytes(csv_bytes)}, Parquet {format_bytes(parquet_bytes)} "
        f"({csv_bytes / parquet_bytes:.1f}x smaller); at {UPLINK_MBPS} Mbit/s: "
        f"CSV {format_duration(transfer_seconds(csv_bytes, UPLINK_MBPS))}, "
        f"Parquet {format_duration(transfer_seconds(parquet_bytes, UPLINK_MBPS))}"
    )


def main() -> int:
    options = parse_args()
    with tempfile.TemporaryDirectory(prefix="labship-bench-data-") as temporary:
        work = Path(temporary)
        repos = build_versions(work, options.files, options.rows, options.pack_mb)
        sizes = {version: size_of(repo / "data") for version, repo in repos.items()}
        for version, (count, size) in sizes.items():
            print(f"{version:8} {count} files, {format_bytes(size)}")
        results, had_ssh = measure_all(repos, work, options)
    print_results(results, sizes, had_ssh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
