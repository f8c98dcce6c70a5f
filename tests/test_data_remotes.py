"""`invoke data.*` against real servers on 127.0.0.1: Debian's sshd with a throwaway key and moto's
S3 server, each started and stopped here. Round trips to a fresh clone, a server killed mid-push
(a byte-counting relay pulls the plug at a fixed point), a killed pull, refused credentials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labship import data
from tests.conftest import require
from tests.data_servers import (
    VENV_BIN,
    MotoServer,
    Relay,
    SshServer,
    data_files,
    env,
    invoke,
    kill_hard,
    make_sshd,
    moto_with_lab_user,
    remote_objects,
    run,
    sshd_available,
    start_moto,
    stop,
    tree_digest,
)

SECRET = "moto-Secret-7f3a9c1e55b2"
KEY_ID = "AKIAMOTOTESTKEY00001"
DATA = ("data/processed/pems", "data/raw/pems")
# botocore retries a dead endpoint for ~20 s by default; the outcome is the same with fewer retries
FEW_RETRIES = {"AWS_MAX_ATTEMPTS": "2"}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    server.client().create_bucket(Bucket=server.bucket)
    yield server
    stop(server.process)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    require(sshd_available(), "openssh-server is not installed (apt-get install -y openssh-server)")
    server = make_sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def use_s3(repo: Path, moto: MotoServer, prefix: str, port: int | None = None, secret: str = SECRET) -> str:
    result = invoke(
        repo, "data.remote",
        "--url", f"s3://{moto.bucket}/{prefix}",
        "--endpoint-url", f"http://127.0.0.1:{port or moto.port}",
        "--access-key-id", KEY_ID, extra_env={"LABSHIP_SECRET_ACCESS_KEY": secret},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def use_ssh(repo: Path, sshd: SshServer, port: int | None = None, key: Path | None = None) -> str:
    result = invoke(repo, "data.remote", "--url", sshd.url(port), "--keyfile", str(key or sshd.key))
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def clone(experiment: Path, tmp_path: Path) -> Path:
    run(experiment, "git", "add", "-A")
    run(experiment, "git", "commit", "-q", "-m", "remote")
    target = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(experiment), str(target))
    return target


def assert_same_data(one: Path, other: Path) -> None:
    for path in DATA:
        assert tree_digest(one / path) and tree_digest(one / path) == tree_digest(other / path)


def test_s3_round_trip_with_credentials_only_in_config_local(
    experiment: Path, moto: MotoServer, tmp_path: Path
) -> None:
    outputs = [use_s3(experiment, moto, "round-trip")]
    pushed = invoke(experiment, "data.push")
    outputs.append(pushed.stdout + pushed.stderr)
    assert pushed.returncode == 0, pushed.stderr
    files = data_files(experiment)
    assert len(moto.objects("round-trip/files/md5/")) == files + 2  # and the 2 directory manifests
    assert f"pushed {files} files" in pushed.stdout and "'s3' (s3://dvc-remote/round-trip)" in pushed.stdout
    assert invoke(experiment, "data.status").returncode == 0

    fresh = clone(experiment, tmp_path)
    assert SECRET not in (fresh / ".dvc" / "config").read_text()
    assert not (fresh / ".dvc" / "config.local").exists()
    denied = invoke(fresh, "data.pull")  # no credentials yet: the clone has none of ours
    outputs.append(denied.stdout + denied.stderr)
    assert denied.returncode == 4 and "no credentials for remote 's3'" in denied.stderr
    assert "aws sso login" in denied.stderr and "--secret-access-key-stdin" in denied.stderr
    outputs.append(use_s3(fresh, moto, "round-trip"))
    pulled = invoke(fresh, "data.pull")
    outputs.append(pulled.stdout + pulled.stderr)
    assert pulled.returncode == 0, pulled.stderr
    assert f"fetched {files} files" in pulled.stdout
    assert_same_data(experiment, fresh)
    committed = run(experiment, "git", "grep", "-I", "-l", "-e", SECRET, "-e", KEY_ID, check=False)
    assert committed.stdout == ""
    assert not any(SECRET in text or KEY_ID in text for text in outputs)


def test_ssh_round_trip(experiment: Path, sshd: SshServer, tmp_path: Path) -> None:
    use_ssh(experiment, sshd)
    pushed = invoke(experiment, "data.push")
    assert pushed.returncode == 0, pushed.stderr
    files = data_files(experiment)
    assert len(remote_objects(sshd.storage)) == files + 2 and f"pushed {files} files" in pushed.stdout
    fresh = clone(experiment, tmp_path)
    use_ssh(fresh, sshd)  # the key is per user: config.local of the clone
    pulled = invoke(fresh, "data.pull", "--target", "data/processed/pems")
    assert pulled.returncode == 0, pulled.stderr
    assert f"fetched {data_files(experiment, 'data/processed/pems')} files" in pulled.stdout
    assert not (fresh / "data" / "raw" / "pems").exists()
    assert invoke(fresh, "data.pull").returncode == 0
    assert_same_data(experiment, fresh)


def test_sshd_killed_mid_push_then_rerun_sends_only_the_rest(
    experiment: Path, sshd: SshServer, tmp_path: Path
) -> None:
    relay = Relay(sshd.port, on_limit=sshd.stop, upstream_limit=200_000)
    use_ssh(experiment, sshd, port=relay.port)
    failed = invoke(experiment, "data.push", "--jobs", "2")
    assert relay.tripped.is_set()
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert (
        "remote 'ssh'" in failed.stderr and "does not answer" in failed.stderr and "re-run" in failed.stderr
    )
    survived = remote_objects(sshd.storage)
    assert 0 < len(survived) < data_files(experiment)
    # a directory's manifest goes last: any manifest on the remote has all its files there
    cache = experiment / ".dvc" / "cache" / "files" / "md5"
    for manifest in (name for name in survived if name.endswith(".dir")):
        entries = json.loads((cache / manifest[:2] / manifest[2:]).read_text())
        assert {entry["md5"] for entry in entries} <= survived

    sshd.start()
    use_ssh(experiment, sshd)
    resumed = invoke(experiment, "data.push")
    assert resumed.returncode == 0, resumed.stderr
    complete = remote_objects(sshd.storage)
    assert len(complete) == data_files(experiment) + 2 and survived <= complete
    missing_files = sum(not name.endswith(".dir") for name in complete - survived)
    assert f"pushed {missing_files} files" in resumed.stdout
    # nothing lost: the remote holds every object the repository records (pull is tested below)
    assert complete == set(data.tracked_objects(experiment).values())


def test_pull_killed_midway_completes_on_rerun(experiment: Path, sshd: SshServer, tmp_path: Path) -> None:
    use_ssh(experiment, sshd)
    assert invoke(experiment, "data.push").returncode == 0
    fresh = clone(experiment, tmp_path)

    puller: list[subprocess.Popen[bytes]] = []
    relay = Relay(
        sshd.port, on_limit=lambda: os.killpg(puller[0].pid, signal.SIGKILL), downstream_limit=200_000
    )
    use_ssh(fresh, sshd, port=relay.port)
    command = [str(VENV_BIN / "invoke"), "data.pull", "--jobs", "2"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    puller.append(subprocess.Popen(command, cwd=fresh, env=env(), start_new_session=True, **quiet))
    assert puller[0].wait(120) == -signal.SIGKILL
    assert relay.tripped.is_set()
    relay.close()

    use_ssh(fresh, sshd)
    pulled = invoke(fresh, "data.pull")
    assert pulled.returncode == 0, pulled.stderr
    assert_same_data(experiment, fresh)


def test_s3_server_killed_mid_push_is_reported(experiment: Path) -> None:
    server = start_moto()
    try:
        server.client().create_bucket(Bucket=server.bucket)
        relay = Relay(server.port, on_limit=lambda: kill_hard(server.process), upstream_limit=150_000)
        use_s3(experiment, server, "killed", port=relay.port)
        failed = invoke(experiment, "data.push", "--jobs", "2", extra_env=FEW_RETRIES)
    finally:
        stop(server.process)
    assert relay.tripped.is_set()
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "remote 's3' (s3://dvc-remote/killed)" in failed.stderr and "does not answer" in failed.stderr
    assert SECRET not in failed.stdout + failed.stderr
    # the local cache is intact: status still knows what is to be pushed (and says the remote is down)
    down = invoke(experiment, "data.status", extra_env=FEW_RETRIES)
    assert down.returncode == 3 and "does not answer" in down.stderr


def test_wrong_credentials_are_reported(experiment: Path, sshd: SshServer) -> None:
    use_ssh(experiment, sshd, key=sshd.other_key)
    refused = invoke(experiment, "data.push")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "remote 'ssh'" in refused.stderr and "refused the credentials" in refused.stderr
    assert "--keyfile" in refused.stderr
    assert remote_objects(sshd.storage) == set()


def test_wrong_s3_secret_is_reported(experiment: Path) -> None:
    with moto_with_lab_user() as (server, key):
        result = invoke(
            experiment, "data.remote", "--url", f"s3://{server.bucket}/auth",
            "--endpoint-url", server.endpoint,
            "--access-key-id", key["AccessKeyId"], "--secret-access-key", "not-" + key["SecretAccessKey"],
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        refused = invoke(experiment, "data.push")
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "remote 's3'" in refused.stderr and "refused the credentials" in refused.stderr
        assert key["SecretAccessKey"] not in refused.stdout + refused.stderr

        invoke(
            experiment, "data.remote", "--url", f"s3://{server.bucket}/auth",
            "--access-key-id", key["AccessKeyId"], "--secret-access-key", key["SecretAccessKey"],
        )  # fmt: skip
        accepted = invoke(experiment, "data.push")
        assert accepted.returncode == 0, accepted.stderr
        assert f"pushed {data_files(experiment)} files" in accepted.stdout


def test_scaffolded_experiment_compress_push_clone_pull(tmp_path: Path) -> None:
    """The demo path: copier template -> dvc repro (invoke compress) -> push -> fresh clone -> pull."""
    from tests.scaffold import scaffold

    experiment = scaffold(tmp_path / "exp", {"dvc_remote_url": "../shared-storage"})
    data.repro(experiment)
    dag = run(experiment, "dvc", "dag", "--md").stdout
    assert "data/raw/pems.dvc" in dag and "compress" in dag
    run(experiment, "git", "add", "dvc.lock", "data/processed/.gitignore")
    run(experiment, "git", "commit", "-q", "-m", "compress the sample data")
    assert run(experiment, "git", "status", "--porcelain").stdout == ""

    pushed = invoke(experiment, "data.push")
    assert pushed.returncode == 0, pushed.stderr
    files = data_files(experiment)
    assert f"pushed {files} files" in pushed.stdout and str(tmp_path / "shared-storage") in pushed.stdout
    assert len(remote_objects(tmp_path / "shared-storage")) == files + 2

    fresh = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(experiment), str(fresh))
    pulled = invoke(fresh, "data.pull")
    assert pulled.returncode == 0, pulled.stderr
    assert_same_data(experiment, fresh)
    assert invoke(fresh, "data.status").returncode == 0
    assert "didn't change, skipping" in data.repro(fresh).output  # lineage intact: nothing to redo
