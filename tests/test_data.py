"""`invoke data.*` and labship.data on a local directory remote: round trip to a fresh clone,
summaries that match what reached the remote, transfers limited to changed files, lineage with
`dvc repro`, remote configuration with credentials kept out of committed files and output."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from labship import data
from labship.config import load_config
from labship.sample import write_traffic_csv
from tests.data_servers import data_files, invoke, remote_objects, run, tree_digest

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def object_bytes(remote: Path, objects: set[str]) -> int:
    return sum((remote / "files" / "md5" / name[:2] / name[2:]).stat().st_size for name in objects)


def test_push_status_pull_round_trip_to_a_fresh_clone(experiment: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    before = invoke(experiment, "data.status")
    assert before.returncode == 1, before.stdout + before.stderr
    assert "only local" in before.stdout and "invoke data.push" in before.stdout

    pushed = invoke(experiment, "data.push")
    assert pushed.returncode == 0, pushed.stderr
    objects = remote_objects(remote)
    # raw CSV + Parquet + 2 directory manifests; the summary counts what reached the remote
    files = data_files(experiment)
    assert len(objects) == files + 2
    assert f"pushed {files} files" in pushed.stdout
    size = data.format_bytes(object_bytes(remote, objects))
    assert f"({size})" in pushed.stdout and "24.5 Mbit/s" in pushed.stdout

    after = invoke(experiment, "data.status")
    assert after.returncode == 0 and "in sync" in after.stdout, after.stdout + after.stderr
    again = invoke(experiment, "data.push")
    assert again.returncode == 0 and "nothing to transfer" in again.stdout

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(experiment), str(clone))
    assert not (clone / "data" / "processed" / "pems").exists()
    stale = invoke(clone, "data.status")
    assert stale.returncode == 1 and "only on remote" in stale.stdout
    pulled = invoke(clone, "data.pull")
    assert pulled.returncode == 0, pulled.stderr
    assert f"fetched {files} files" in pulled.stdout
    for path in ("data/processed/pems", "data/raw/pems"):
        assert tree_digest(clone / path) == tree_digest(experiment / path)
    assert invoke(clone, "data.status").returncode == 0


def test_changing_one_csv_uploads_only_its_files(experiment: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    assert invoke(experiment, "data.push").returncode == 0
    first = remote_objects(remote)
    before = {path: tree_digest(experiment / path) for path in ("data/raw/pems", "data/processed/pems")}

    changed = sorted((experiment / "data" / "raw" / "pems").glob("*.csv"))[2]
    changed.chmod(0o644)
    replacement = write_traffic_csv(tmp_path / "other", files=3, rows_per_file=400, seed=7)[2]
    shutil.copy(replacement, changed)
    data.track_raw(experiment, load_config(experiment).dataset("pems"))
    data.repro(experiment)
    differing = [
        f"{path}/{name}"
        for path, digests in before.items()
        for name, digest in tree_digest(experiment / path).items()
        if digests.get(name) != digest
    ]
    # the changed CSV, its Parquet file (and compress's own small manifest, if it keeps one)
    assert f"data/raw/pems/{changed.name}" in differing
    assert f"data/processed/pems/{changed.stem}.parquet" in differing
    assert all(name.endswith((".csv", ".json")) or changed.stem in name for name in differing)

    pushed = invoke(experiment, "data.push")
    assert pushed.returncode == 0, pushed.stderr
    uploaded = remote_objects(remote) - first
    # those files and the two new directory manifests: nothing else moved
    assert len(uploaded) == len(differing) + 2
    assert sum(name.endswith(".dir") for name in uploaded) == 2
    size = data.format_bytes(object_bytes(remote, uploaded))
    assert f"pushed {len(differing)} files ({size})" in pushed.stdout


def test_repro_reruns_compress_only_when_raw_data_or_dataset_settings_change(experiment: Path) -> None:
    lock = experiment / "dvc.lock"
    recorded = lock.read_text()
    assert "tool.labship.datasets.pems" in recorded and "data/raw/pems" in recorded

    pyproject = experiment / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("uplink-mbps = 24.5", "uplink-mbps = 100"))
    unrelated = data.repro(experiment)
    assert "didn't change, skipping" in unrelated.output
    assert lock.read_text() == recorded

    pyproject.write_text(pyproject.read_text().replace('"Lane 1 Flow"]', '"Lane 1 Flow", "Samples"]'))
    state = data.status(experiment)
    assert state.exit_code == 1
    assert "compress" in state.local_changes
    assert "pyproject.toml" in " ".join(state.local_changes["compress"])
    rerun = data.repro(experiment)
    assert "Running stage 'compress'" in rerun.output
    assert "Samples" in lock.read_text()

    dag = run(experiment, "dvc", "dag").stdout
    assert "data/raw/pems.dvc" in dag and "compress" in dag


def test_remote_settings_go_to_config_and_credentials_only_to_config_local(experiment: Path) -> None:
    outputs = []
    result = invoke(
        experiment,
        "data.remote",
        "--url", "s3://team-bucket/traffic",
        "--endpoint-url", "http://127.0.0.1:9",
        "--access-key-id", KEY_ID,
        "--secret-access-key", SECRET,
    )  # fmt: skip
    outputs.append(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr
    committed = (experiment / ".dvc" / "config").read_text()
    local = (experiment / ".dvc" / "config.local").read_text()
    assert "s3://team-bucket/traffic" in committed and "http://127.0.0.1:9" in committed
    assert SECRET not in committed and KEY_ID not in committed
    assert SECRET in local and KEY_ID in local
    assert (experiment / ".dvc" / "config.local").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert "(default)" in result.stdout and "****" in result.stdout

    shown = invoke(experiment, "data.remote")
    outputs.append(shown.stdout + shown.stderr)
    assert "remote 's3' (default)" in shown.stdout and "remote 'storage'" in shown.stdout
    assert "secret_access_key" in shown.stdout and ".dvc/config.local" in shown.stdout

    # another kind under the same name: the old credentials are unset first, so DVC still works
    switched = invoke(experiment, "data.remote", "--name", "s3", "--url", str(experiment.parent / "r2"))
    outputs.append(switched.stdout + switched.stderr)
    assert switched.returncode == 0, switched.stderr
    assert SECRET not in (experiment / ".dvc" / "config.local").read_text()
    assert run(experiment, "dvc", "remote", "list").returncode == 0
    pushed = invoke(experiment, "data.push")
    outputs.append(pushed.stdout + pushed.stderr)
    assert pushed.returncode == 0 and "to 's3'" in pushed.stdout

    wrong = invoke(experiment, "data.remote", "--url", "ssh://me:hunter2@host/x")
    outputs.append(wrong.stdout + wrong.stderr)
    assert wrong.returncode == 2 and "password" in wrong.stderr

    run(experiment, "git", "add", "-A")
    run(experiment, "git", "commit", "-q", "-m", "remote")
    committed_files = run(experiment, "git", "grep", "-I", "-l", "-e", SECRET, "-e", KEY_ID, check=False)
    assert committed_files.stdout == ""
    for text in outputs:
        assert SECRET not in text and KEY_ID not in text and "hunter2" not in text


def test_missing_or_broken_remote_configuration_is_explained(experiment: Path) -> None:
    run(experiment, "dvc", "remote", "default", "--unset")
    result = invoke(experiment, "data.push")
    assert result.returncode == 2
    assert "no default DVC remote" in result.stderr and "invoke data.remote --url" in result.stderr

    run(experiment, "dvc", "remote", "default", "storage")
    (experiment / ".dvc" / "config.local").write_text(
        "['remote \"gone\"']\n    secret_access_key = abc123x\n"
    )
    broken = invoke(experiment, "data.status")
    assert broken.returncode == 2
    assert "config.local" in broken.stderr and "'gone'" in broken.stderr and "abc123x" not in broken.stderr


def test_ensure_data_pulls_a_notebooks_missing_data(experiment: Path, tmp_path: Path) -> None:
    assert invoke(experiment, "data.push").returncode == 0
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(experiment), str(clone))
    config = load_config(clone)
    notebook = config.notebook("traffic")

    moved = data.ensure_data(config, notebook)
    # the Parquet files only, not the raw CSV
    assert moved is not None and moved.files == data_files(experiment, "data/processed/pems")
    assert not (clone / "data" / "raw" / "pems").exists()
    target = "data/processed/pems"
    assert tree_digest(clone / target) == tree_digest(experiment / target)
    assert data.ensure_data(config, notebook) is None  # present: no DVC call at all


def test_mask_url_and_remote_kinds() -> None:
    assert data.mask_url("ssh://me:pw@host:2222/x") == "ssh://me:****@host:2222/x"
    assert data.mask_url("s3://bucket/prefix") == "s3://bucket/prefix"
    assert [data.remote_kind(u) for u in ("/srv/dvc", "../r", "s3://b/p", "ssh://h/p")] == [
        "local",
        "local",
        "s3",
        "ssh",
    ]
    remote = data.Remote("s3", "s3://b/p", {"endpointurl": "http://x"}, {"secret_access_key": SECRET})
    assert remote.secrets() == [SECRET]
    assert all(SECRET not in value for _, value, _ in remote.settings())


def test_progress_bars_are_forwarded_when_asked(experiment: Path) -> None:
    shown = io.StringIO()
    moved = data.push(experiment, uplink_mbps=24.5, echo=shown, progress=True)
    assert moved.files == data_files(experiment)
    # DVC's own bars (forced on without a terminal) reach the echo stream, updated in place with \r
    assert "Pushing" in shown.getvalue() and "\r" in shown.getvalue()


def test_compress_run_by_hand_is_recorded_in_dvc_lock(experiment: Path) -> None:
    pyproject = experiment / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"Lane 1 Flow"]', '"Lane 1 Flow", "Samples"]'))
    config = load_config(experiment)
    assert data.stage_for_output(experiment, config.dataset("pems").target) == "compress"
    # what a user does: run the stage's command directly instead of `dvc repro`
    command = run(experiment, "dvc", "stage", "list", "--name-only").stdout.split()
    assert command == ["compress"]
    stage_cmd = (experiment / "dvc.yaml").read_text().split("cmd: ", 1)[1].splitlines()[0]
    ran = run(experiment, "sh", "-c", stage_cmd)
    assert "recorded data for stage 'compress' in dvc.lock" in ran.stdout

    assert "Samples" in (experiment / "dvc.lock").read_text()
    assert data.local_changes(experiment) == {}
    shown = io.StringIO()
    data.push(experiment, uplink_mbps=24.5, echo=shown)
    assert "warning" not in shown.getvalue()


def test_output_made_with_overrides_is_not_recorded_and_push_warns(experiment: Path) -> None:
    lock = (experiment / "dvc.lock").read_text()
    ran = run(experiment, "invoke", "compress", "--dataset", "pems", "--drop", "Samples")
    assert "recorded" not in ran.stdout
    assert (experiment / "dvc.lock").read_text() == lock
    shown = io.StringIO()
    data.push(experiment, uplink_mbps=24.5, echo=shown)
    assert "warning: the workspace differs" in shown.getvalue() and "compress" in shown.getvalue()


def test_outside_a_dvc_repository_the_message_says_dvc_init(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match=r"not a DVC repository.*dvc init") as raised:
        data.push(tmp_path, uplink_mbps=24.5)
    assert raised.value.exit_code == data.EXIT_CONFIG
