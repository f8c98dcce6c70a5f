"""Converting a dataset's files on a Dask distributed cluster instead of the local process pool.

The client does everything but the conversions, exactly as a local run: it finds the sources,
reads their dialects and headers, unifies the schema, and owns the manifest and the report. Each
`FileJob` becomes one task that runs `dataset.run_job` — the very function the local pool runs —
on some worker, so the bytes written are those of a local run. Outcomes come back as they finish and
are recorded (and the manifest saved) one by one, so an interrupted run resumes where it stopped.

Workers read the sources and write the outputs at the same paths as the client: they must share
its filesystem (one machine, or a shared mount such as NFS/Lustre on HPC). Each output is written to
a temporary name and renamed, so a killed worker leaves no partial file under a final name; the
scheduler re-runs its tasks on another worker (`distributed.scheduler.allowed-failures`), and a
task that kills workers too often fails the run naming its file. Progress advances by each file's
source bytes when it finishes, and the report carries per-worker throughput.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labship.compress.errors import CompressError

if TYPE_CHECKING:
    from labship.compress.dataset import FileJob, JobOutcome
    from labship.compress.report import ProgressHook

LOCAL = "local"
CONNECT_TIMEOUT_S = 10  # a scheduler on the same network answers in milliseconds; 10 s covers a busy one


@dataclass(frozen=True)
class ClusterOutcome:
    """A job's outcome, with where and how fast it ran."""

    outcome: JobOutcome
    worker: str
    seconds: float
    csv_bytes: int


def _cluster_job(job: FileJob) -> ClusterOutcome:
    """Worker-side entry point: the local run's job function, timed and labelled with the worker."""
    from distributed import get_worker

    from labship.compress.dataset import run_job

    started = time.perf_counter()
    outcome = run_job(job)
    size = outcome.result.csv_bytes if outcome.result is not None else 0
    return ClusterOutcome(outcome, get_worker().address, time.perf_counter() - started, size)


def check_address(address: str) -> str:
    """A scheduler address as Dask takes it (`tcp://host:port`, `tls://…`, `inproc://…`), or `local`."""
    if address == LOCAL or ("://" in address and not address.startswith("-")):
        return address
    raise CompressError(
        f"--cluster {address!r}: give a Dask scheduler address such as tcp://scheduler:8786, or 'local' "
        "for this machine's process pool"
    )


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as error:
        raise CompressError(
            "--cluster needs Dask's distributed scheduler client: pip install 'labship[cluster]'"
        ) from error
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise CompressError(
            f"cluster {address}: cannot reach the Dask scheduler ({error}); check the address and that "
            "the scheduler is running"
        ) from error


def run_on_cluster(
    jobs: list[FileJob],
    *,
    address: str,
    progress: ProgressHook,
    record: Callable[[JobOutcome], None],
) -> dict[str, dict[str, float]]:
    """Run `jobs` on the scheduler at `address`; record each outcome; return per-worker totals."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    workers: dict[str, dict[str, float]] = {}
    run_id = uuid.uuid4().hex[:8]
    with _connect(address) as client:
        futures = {
            client.submit(_cluster_job, job, key=f"labship-compress-{run_id}-{index}", pure=False): job
            for index, job in enumerate(jobs)
        }
        for future in as_completed(futures, loop=client.loop):
            job = futures[future]
            try:
                done: ClusterOutcome = future.result()
            except KilledWorker as error:
                raise CompressError(
                    f"{job.source}: the cluster lost every worker that tried to convert this file "
                    f"({error}); re-run to resume (converted files are kept)"
                ) from error
            totals = workers.setdefault(done.worker, {"files": 0, "csv_bytes": 0, "seconds": 0.0})
            totals["files"] += 1
            totals["csv_bytes"] += done.csv_bytes
            totals["seconds"] += done.seconds
            record(done.outcome)
            progress.advance(job.source.stat().st_size)
    return workers
