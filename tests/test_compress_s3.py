"""`invoke compress` reading and writing object storage (a real moto S3 server on 127.0.0.1), on a real
Dask LocalCluster (2 worker processes): the Parquet bytes of a local run, the incremental manifest on
S3, a killed worker, bad input, endpoint and credentials from the DVC remote, secrets never shown."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labship.compress import CompressError, Settings, command, compress_dataset
from labship.compress.endpoints import location
from labship.compress.manifest import MANIFEST
from labship.compress.storage import ObjectPath
from tests.data_servers import MotoServer, invoke, moto_with_lab_user, start_moto, stop
from tests.test_cluster import KillOneWorker, tree, write_sensors

distributed = pytest.importorskip("distributed")

FILES = 6
ROWS = 2_000
KEY_ID = "AKIALABSHIPTEST0001"
SECRET = "labship-test-secret/0123456789+abcdefghij"  # moto takes any pair unless told to check


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    try:
        server.client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="module")
def experiment(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment whose DVC remote is the moto bucket, as `invoke data.remote` writes it."""
    root = tmp_path_factory.mktemp("experiment")
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(
        f"[core]\n    remote = s3\n['remote \"s3\"']\n    url = s3://{moto.bucket}/dvc\n"
        f"    endpointurl = {moto.endpoint}\n"
    )
    (root / ".dvc" / "config.local").write_text(
        f"['remote \"s3\"']\n    access_key_id = {KEY_ID}\n    secret_access_key = {SECRET}\n"
    )
    return root


@pytest.fixture(scope="module")
def sensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sensors(tmp_path_factory.mktemp("sensors") / "raw", rows=ROWS)


@pytest.fixture(scope="module")
def local_output(sensors: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    target = tmp_path_factory.mktemp("local") / "out"
    compress_dataset("sensors", sensors, target, Settings(), jobs=1)
    return tree(target)


def at(url: str, experiment: Path) -> ObjectPath:
    """The place `invoke compress --source/--target URL` means in this experiment."""
    place = location(url, base=experiment, root=experiment)
    assert isinstance(place, ObjectPath)
    return place


def upload(moto: MotoServer, directory: Path, prefix: str) -> None:
    client = moto.client()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=moto.bucket,
                Key=f"{prefix}/{path.relative_to(directory).as_posix()}",
                Body=path.read_bytes(),
            )


def download(moto: MotoServer, prefix: str) -> dict[str, bytes]:
    """Every object under `prefix/` by relative key (pyarrow's empty `dir/` markers left out)."""
    client = moto.client()
    found = {}
    for key in moto.objects(f"{prefix}/"):
        if not key.endswith("/"):
            found[key[len(prefix) + 1 :]] = client.get_object(Bucket=moto.bucket, Key=key)["Body"].read()
    return found


def same_as_local(outputs: dict[str, bytes], local: dict[str, bytes]) -> None:
    """Byte-identical Parquet, and a manifest that differs from the local one only in the times."""
    assert {k: v for k, v in outputs.items() if k != MANIFEST} == {
        k: v for k, v in local.items() if k != MANIFEST
    }
    remote, here = json.loads(outputs[MANIFEST]), json.loads(local[MANIFEST])
    for entry in [*remote["files"].values(), *here["files"].values()]:
        del entry["mtime_ns"]
    assert remote == here


def temporaries(moto: MotoServer, prefix: str) -> list[str]:
    return [key for key in moto.objects(f"{prefix}/") if ".labship-tmp" in key]


def test_s3_to_s3_on_the_cluster_writes_the_bytes_of_a_local_run(
    moto: MotoServer, experiment: Path, dask_cluster: object, sensors: Path, local_output: dict[str, bytes]
) -> None:
    upload(moto, sensors, "same/raw")
    report = compress_dataset(
        "sensors",
        at(f"s3://{moto.bucket}/same/raw", experiment),
        at(f"s3://{moto.bucket}/same/out", experiment),
        Settings(),
        cluster=dask_cluster.scheduler_address,  # type: ignore[attr-defined]
    )
    assert report.converted == FILES and report.rows == FILES * ROWS
    same_as_local(download(moto, "same/out"), local_output)
    assert len(report.workers) == 2  # both workers converted, each with its throughput
    assert sum(worker["csv_bytes"] for worker in report.workers.values()) == report.csv_bytes
    assert temporaries(moto, "same/out") == []


def test_local_to_s3_writes_the_bytes_of_a_local_run(
    moto: MotoServer, experiment: Path, sensors: Path, local_output: dict[str, bytes]
) -> None:
    report = compress_dataset(
        "sensors", sensors, at(f"s3://{moto.bucket}/up/out", experiment), Settings(), jobs=1
    )
    assert report.converted == FILES
    same_as_local(download(moto, "up/out"), local_output)


def test_the_manifest_on_s3_skips_unchanged_objects_and_redoes_a_changed_one(
    moto: MotoServer, experiment: Path, dask_cluster: object, sensors: Path, tmp_path: Path
) -> None:
    upload(moto, sensors, "incr/raw")
    source, target = (
        at(f"s3://{moto.bucket}/incr/raw", experiment),
        at(f"s3://{moto.bucket}/incr/out", experiment),
    )
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    assert compress_dataset("sensors", source, target, Settings(), cluster=address).converted == FILES
    first = download(moto, "incr/out")

    again = compress_dataset("sensors", source, target, Settings(), cluster=address)
    assert (again.converted, again.skipped) == (0, FILES)
    assert download(moto, "incr/out") == first  # not even the manifest was rewritten

    # the same size, other content: only the listing's LastModified tells (S3 keeps seconds)
    changed = tmp_path / "raw"
    shutil.copytree(sensors, changed)
    text = (changed / "day03.csv").read_text()
    (changed / "day03.csv").write_text(text.replace("M\n", "H\n", 50))
    assert (changed / "day03.csv").stat().st_size == (sensors / "day03.csv").stat().st_size
    time.sleep(1.1)
    moto.client().put_object(
        Bucket=moto.bucket, Key="incr/raw/day03.csv", Body=(changed / "day03.csv").read_bytes()
    )

    left = "incr/out/.day00.parquet.0a1b2c3d4e5f.labship-tmp"  # as a killed run leaves it
    moto.client().put_object(Bucket=moto.bucket, Key=left, Body=b"PAR1 half a file")
    redo = compress_dataset("sensors", source, target, Settings(), cluster=address)
    assert temporaries(moto, "incr/out") == []  # removed before anything was written
    assert (redo.converted, redo.skipped) == (1, FILES - 1)
    compress_dataset("sensors", changed, tmp_path / "local", Settings(), jobs=1)
    same_as_local(download(moto, "incr/out"), tree(tmp_path / "local"))
    assert download(moto, "incr/out")["day03.parquet"] != first["day03.parquet"]

    moto.client().delete_object(Bucket=moto.bucket, Key="incr/raw/day05.csv")  # a source is gone:
    compress_dataset("sensors", source, target, Settings(), cluster=address)
    outputs = download(moto, "incr/out")  # so are its output and its manifest entry
    assert "day05.parquet" not in outputs and "day04.parquet" in outputs
    assert "day05.csv" not in json.loads(outputs[MANIFEST])["files"]


def test_a_killed_worker_leaves_no_partial_or_temporary_object(
    moto: MotoServer, experiment: Path, dask_cluster: object, sensors: Path, local_output: dict[str, bytes]
) -> None:
    upload(moto, sensors, "kill/raw")
    address = dask_cluster.scheduler_address  # type: ignore[attr-defined]
    killer = KillOneWorker(address)
    killed = killer.killed

    source, target = (
        at(f"s3://{moto.bucket}/kill/raw", experiment),
        at(f"s3://{moto.bucket}/kill/out", experiment),
    )
    try:
        compress_dataset("sensors", source, target, Settings(), cluster=address, progress=killer)
    except CompressError as error:  # allowed: the run may fail, but only naming a file
        assert f"s3://{moto.bucket}/kill/raw/day" in str(error)
    else:  # it completed: the killed attempt's temporary went with the run's end
        assert temporaries(moto, "kill/out") == []
    assert killed.is_set()
    outputs = download(moto, "kill/out")
    for name, data in outputs.items():  # whatever is under a final key is whole
        if name.endswith(".parquet"):
            assert data == local_output[name]
    compress_dataset("sensors", source, target, Settings(), cluster=address)
    same_as_local(download(moto, "kill/out"), local_output)
    assert temporaries(moto, "kill/out") == []


def test_bad_input_on_a_worker_reads_as_in_a_local_run(
    moto: MotoServer, experiment: Path, dask_cluster: object, tmp_path: Path
) -> None:
    source = write_sensors(tmp_path / "raw", files=2, rows=300)
    with (source / "day01.csv").open("a") as handle:
        handle.write("00042,2024-01-02T03:00:00,12,not-a-speed,M,extra\n")
    upload(moto, source, "bad/raw")
    messages = []
    for index, cluster in enumerate(("local", dask_cluster.scheduler_address)):  # type: ignore[attr-defined]
        with pytest.raises(CompressError) as caught:
            compress_dataset(
                "sensors",
                at(f"s3://{moto.bucket}/bad/raw", experiment),
                at(f"s3://{moto.bucket}/bad/out-{index}", experiment),
                Settings(),
                cluster=cluster,
            )
        messages.append(str(caught.value))
    assert f"s3://{moto.bucket}/bad/raw/day01.csv" in messages[0]
    assert messages[0] == messages[1]
    assert download(moto, "bad/out-1") == {}  # a failed run publishes nothing
    assert SECRET not in messages[0]


def test_endpoint_and_credentials_come_from_the_dvc_remote_or_the_environment(
    moto: MotoServer, experiment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = at(f"s3://{moto.bucket}/any/where", experiment)
    assert place.endpoint.url == moto.endpoint
    assert (place.endpoint.credentials.access_key, place.endpoint.credentials.secret_key) == (KEY_ID, SECRET)
    assert "DVC remote 's3'" in place.endpoint.origin and "DVC remote 's3'" in place.endpoint.url_origin
    # what Dask logs of a failed task, and what the report holds, never carries the secret
    assert SECRET not in repr(place) and KEY_ID not in repr(place) and SECRET not in str(place)
    assert SECRET not in repr(place.endpoint) and SECRET not in repr(place.endpoint.credentials)
    assert pickle.loads(pickle.dumps(place)) == place  # it travels to the workers whole

    monkeypatch.setenv("LABSHIP_ACCESS_KEY_ID", "explicit-id")
    monkeypatch.setenv("LABSHIP_SECRET_ACCESS_KEY", "explicit-secret")
    explicit = at(f"s3://{moto.bucket}/any/where", experiment).endpoint.credentials
    assert (explicit.access_key, explicit.secret_key) == ("explicit-id", "explicit-secret")
    monkeypatch.delenv("LABSHIP_SECRET_ACCESS_KEY")
    with pytest.raises(CompressError, match="set both LABSHIP_ACCESS_KEY_ID and LABSHIP_SECRET_ACCESS_KEY"):
        at(f"s3://{moto.bucket}/x", experiment)
    with pytest.raises(CompressError, match="must not carry credentials"):
        location(f"s3://id:{SECRET}@{moto.bucket}/x", base=experiment, root=experiment)


@pytest.mark.parametrize(
    ("source", "target", "refusal"),
    [
        ("raw", "raw/", "is the source prefix"),
        ("raw", "raw/out", "is inside the source"),
        ("a/raw", "a", "contains"),
    ],
)
def test_a_target_overlapping_the_source_prefix_is_refused(
    moto: MotoServer, experiment: Path, source: str, target: str, refusal: str
) -> None:
    with pytest.raises(CompressError, match=refusal):
        compress_dataset(
            "x",
            at(f"s3://{moto.bucket}/{source}", experiment),
            at(f"s3://{moto.bucket}/{target}", experiment),
            Settings(),
        )


def test_wrong_credentials_are_named_and_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_with_lab_user() as (server, key):  # moto checks every signature after the set-up
        write_sensors(tmp_path / "raw", files=2, rows=100)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("LABSHIP_S3_ENDPOINT_URL", server.endpoint)
        monkeypatch.setenv("LABSHIP_ACCESS_KEY_ID", key["AccessKeyId"])
        wrong = "not-" + key["SecretAccessKey"]
        monkeypatch.setenv("LABSHIP_SECRET_ACCESS_KEY", wrong)
        target = f"s3://{server.bucket}/auth/out"
        with pytest.raises(CompressError) as refused:
            command.run(
                source="raw", target=target, root=tmp_path, progress=False, report_path=tmp_path / "r.json"
            )
        message = str(refused.value)
        assert f"s3://{server.bucket}" in message and "check the credentials" in message
        assert "LABSHIP_ACCESS_KEY_ID" in message  # where they came from, so the user knows what to fix
        assert wrong not in message and wrong not in (tmp_path / "r.json").read_text()

        monkeypatch.setenv("LABSHIP_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        command.run(
            source="raw", target=target, root=tmp_path, progress=False, report_path=tmp_path / "r.json"
        )
        assert key["SecretAccessKey"] not in (tmp_path / "r.json").read_text()
        assert json.loads((tmp_path / "r.json").read_text())["datasets"][0]["target"] == target
        listed = server.client(key["AccessKeyId"], key["SecretAccessKey"]).list_objects_v2(
            Bucket=server.bucket
        )
        assert {item["Key"] for item in listed["Contents"]} >= {
            "auth/out/day00.parquet",
            "auth/out/day01.parquet",
        }


def test_partitions_rejected_rows_and_gzip_sources_on_s3_match_a_local_run(
    moto: MotoServer, experiment: Path, dask_cluster: object, tmp_path: Path
) -> None:
    source = write_sensors(tmp_path / "raw", files=3, rows=600)
    with (source / "day01.csv").open("a") as handle:
        handle.write("00042,2024-01-02T03:00:00,12,4.5,M,one field too many\n")  # set aside by `skip`
    (source / "day02.csv.gz").write_bytes(gzip.compress((source / "day02.csv").read_bytes(), mtime=0))
    (source / "day02.csv").unlink()
    settings = Settings(partition_by=("lane_type",), on_bad_rows="skip")
    compress_dataset("sensors", source, tmp_path / "local", settings, jobs=1)
    local = tree(tmp_path / "local")
    assert "_rejected/day01.csv" in local and "lane_type=M/day02.parquet" in local

    upload(moto, source, "parts/raw")
    compress_dataset(
        "sensors",
        at(f"s3://{moto.bucket}/parts/raw", experiment),
        at(f"s3://{moto.bucket}/parts/out", experiment),
        settings,
        cluster=dask_cluster.scheduler_address,  # type: ignore[attr-defined]
    )
    same_as_local(download(moto, "parts/out"), local)


def test_invoke_compress_converts_a_dataset_declared_on_s3(
    moto: MotoServer, experiment: Path, sensors: Path, local_output: dict[str, bytes]
) -> None:
    upload(moto, sensors, "task/raw")
    (experiment / "tasks.py").write_text("from labship.tasks import namespace\n\nns = namespace()\n")
    (experiment / "pyproject.toml").write_text(
        '[project]\nname = "exp"\nversion = "0.1.0"\n\n[tool.labship]\n\n'
        f'[tool.labship.datasets.sensors]\nsource = "s3://{moto.bucket}/task/raw"\n'
        f'target = "s3://{moto.bucket}/task/out"\n'
    )
    done = invoke(experiment, "compress", "--report", "report.json")
    assert done.returncode == 0, done.stdout + done.stderr
    same_as_local(download(moto, "task/out"), local_output)
    shown = done.stdout + done.stderr + (experiment / "report.json").read_text()
    assert f"s3://{moto.bucket}/task/out" in shown and SECRET not in shown and KEY_ID not in shown
